"""Who may send what: company secrets, ingest keys and restaurants, cached briefly.

Every request needs one of these; reading them per request would double the database
work, so answers (including "unknown") are kept for `ttl` seconds, at most `limit` of
them. A change to a key, an integration or a restaurant is pushed here by NOTIFY
(partner_signals.invalidation) and forgets the answers it decided at once: a revoked
key is refused within milliseconds; `ttl` bounds staleness only while the listener is
reconnecting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from partner_signals.cache import Cache
from partner_signals.control.inbound import CREDENTIALS_SQL, webhook_credentials
from partner_signals.crypto import hash_api_key
from partner_signals.invalidation import Change, ChangeListener
from partner_signals.key_usage import FLUSH_SECONDS, KeyUsage
from partner_signals.providers import Credentials


class Directory:
    def __init__(
        self,
        conninfo: str,
        master_key: bytes,
        *,
        ttl: float = 10.0,
        limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        key_usage_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=4,
            open=False,
            timeout=3.0,
            kwargs={"autocommit": True, "connect_timeout": 3},
        )
        self._key = master_key
        # No refresh ahead (as ever here): past `ttl` the requests for a key wait for
        # one read together, so even unheard, a revoked key or a disabled provider is
        # refused within `ttl`. Bounded, because the unknown keys and companies a flood
        # makes up are cached too.
        self._cache: Cache[tuple[str, ...], Any] = Cache(
            ttl=ttl, limit=limit, name="an ingest credential", clock=clock
        )
        self.listener = ChangeListener(
            conninfo, on_change=self._changed, on_connect=self.forget, name="ingest directory"
        )
        self.key_usage = KeyUsage(conninfo, "ingest_keys", interval=key_usage_seconds)

    async def start(self) -> None:
        await self.pool.open(wait=False)
        self.listener.start()
        self.key_usage.start()

    async def stop(self) -> None:
        await self.listener.stop()
        await self.key_usage.stop()
        await self._cache.close()
        await self.pool.close()

    def _changed(self, change: Change) -> None:
        row = change.row
        if change.table == "ingest_keys":
            self._cache.discard(("key", str(row.get("key_hash"))))
        elif change.table == "integrations":
            self._cache.discard(("creds", str(row.get("company_id")), str(row.get("provider"))))
        elif change.table == "restaurants":
            self._cache.discard(("restaurants", str(row.get("company_id"))))

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def credentials(self, company_id: str, provider: str) -> Credentials | None:
        """The company's credentials for an inbound provider, or None when the company
        is unknown or has not enabled that provider (for any of its restaurants)."""

        async def load() -> Credentials | None:
            return await self._load_credentials(company_id, provider)

        creds = await self._cache.get(("creds", company_id, provider), load)
        if creds is not None and creds.renew_at is not None and time.time() >= creds.renew_at:
            # A rotation's grace ended: the previous secret is refused from now on.
            self._cache.discard(("creds", company_id, provider))
            creds = await self._cache.get(("creds", company_id, provider), load)
        return creds

    async def _load_credentials(self, company_id: str, provider: str) -> Credentials | None:
        # Every enabled scope (company-wide, or per restaurant), a previous secret only
        # through its rotation's grace: partner_signals.control.inbound decides, for the
        # admin API's test too.
        async with self.pool.connection() as conn:
            cur = await conn.execute(CREDENTIALS_SQL, (company_id, provider))
            rows = await cur.fetchall()
        return webhook_credentials(self._key, company_id, provider, rows)

    async def company_for_key(self, key: str) -> str | None:
        digest = hash_api_key(key)

        async def load() -> str | None:
            row = await self._fetchone(
                "select company_id from ops.ingest_keys where key_hash = %s and revoked_at is null",
                (digest,),
            )
            return None if row is None else str(row[0])

        company: str | None = await self._cache.get(("key", digest.hex()), load)
        if company is not None:
            self.key_usage.touch(digest)
        return company

    async def restaurants(self, company_id: str) -> frozenset[str]:
        async def load() -> frozenset[str]:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select restaurant_id from ops.restaurants where company_id = %s",
                    (company_id,),
                )
                return frozenset(r[0] for r in await cur.fetchall())

        return await self._cache.get(("restaurants", company_id), load)

    def forget(self) -> None:
        """Drop every cached answer (tests and operators after a change)."""
        self._cache.clear()

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("select 1")
