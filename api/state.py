"""What the partner API holds while it runs: a read-only pool, the key cache, the limiter."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.numeric import FloatLoader
from psycopg_pool import AsyncConnectionPool

from partner_signals.crypto import hash_api_key
from partner_signals.ratelimit import RateLimiter
from partner_signals.settings import Settings

READER_ROLE = "partner_signals_reader"


@dataclass(frozen=True)
class Principal:
    """The holder of one partner key."""

    key_id: int
    company_id: str
    restaurant_id: str | None
    scopes: frozenset[str]


async def _as_reader(conn: AsyncConnection[Any]) -> None:
    # Partners get numbers as JSON numbers, not Decimal strings.
    conn.adapters.register_loader("numeric", FloatLoader)
    # Every connection reads through a role that cannot write, whoever logged in.
    await conn.execute(f"set role {READER_ROLE}")
    await conn.execute("set default_transaction_read_only = on")
    await conn.commit()


@dataclass
class ApiState:
    settings: Settings
    pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]]
    limiter: RateLimiter
    key_ttl: float = 10.0
    _keys: dict[bytes, tuple[float, Principal | None]] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, conninfo: str) -> ApiState:
        pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
            conninfo,
            min_size=2,
            max_size=8,
            open=False,
            timeout=5.0,
            configure=_as_reader,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 3},
        )
        limiter = RateLimiter(settings.api_rate_per_second, settings.api_rate_burst)
        return cls(settings=settings, pool=pool, limiter=limiter)

    async def principal(self, key: str) -> Principal | None:
        digest = hash_api_key(key)
        hit = self._keys.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select key_id, company_id, restaurant_id, scopes from ops.partner_keys "
                "where key_hash = %s and revoked_at is null",
                (digest,),
            )
            row = await cur.fetchone()
        principal = (
            None
            if row is None
            else Principal(
                key_id=row["key_id"],
                company_id=row["company_id"],
                restaurant_id=row["restaurant_id"],
                scopes=frozenset(row["scopes"]),
            )
        )
        if len(self._keys) > 10_000:  # bound memory against key-guessing floods
            self._keys.clear()
        self._keys[digest] = (now + self.key_ttl, principal)
        return principal

    async def restaurant_company(self, restaurant_id: str) -> str | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select company_id from ops.restaurants where restaurant_id = %s", (restaurant_id,)
            )
            row = await cur.fetchone()
        return None if row is None else str(row["company_id"])
