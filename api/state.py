"""What the partner API holds while it runs: a read-only pool, the key cache, the limiter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.numeric import FloatLoader
from psycopg_pool import AsyncConnectionPool

from partner_signals.crypto import hash_api_key
from partner_signals.ratelimit import RateLimiter
from partner_signals.settings import Settings

READER_ROLE = "partner_signals_reader"
MAX_STALE_SECONDS = 30.0
# A revoked key, or a restaurant moved out of reach, stops being served within this.
KEY_TTL_SECONDS = 10.0
log = logging.getLogger(__name__)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("refreshing a signals snapshot failed: %s", task.exception())


T = TypeVar("T")


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
    # The "now" views stack a dozen views over raw tables: planning one costs 10-60 ms,
    # more than running it. Each query is prepared on its first use on this connection
    # and keeps one generic plan (restaurant_id etc. stay parameters, still pushed down).
    await conn.execute("set plan_cache_mode = force_generic_plan")
    await conn.commit()
    conn.prepare_threshold = 0


K = TypeVar("K")


@dataclass
class Lookups(Generic[K, T]):
    """Answers read from the database (a key's holder, a restaurant's company), each
    trusted for `ttl` seconds from when its query started, so a revoked key stops
    working within `ttl`. Past half that, a reader still gets the entry at once while
    one refresh runs in the background: a steady partner never waits on the database,
    and concurrent readers of a missing or expired entry share one query."""

    ttl: float
    limit: int = 10_000  # bounds memory against floods of made-up keys or ids
    _entries: dict[K, tuple[float, T]] = field(default_factory=dict)
    _pending: dict[K, asyncio.Task[T]] = field(default_factory=dict)

    async def get(self, key: K, load: Callable[[], Awaitable[T]]) -> T:
        hit = self._entries.get(key)
        if hit is not None:
            age = time.monotonic() - hit[0]
            if age < self.ttl:
                if age >= self.ttl / 2 and key not in self._pending:
                    self._start(key, load).add_done_callback(_log_lookup_failure)
                return hit[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = self._start(key, load)
            # Its readers get the error; if they all went away, nobody is told twice.
            pending.add_done_callback(_retrieve)
        value: T = await asyncio.shield(pending)
        return value

    def pending(self) -> list[asyncio.Task[T]]:
        return list(self._pending.values())

    def _start(self, key: K, load: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(self._load(key, load))
        self._pending[key] = task
        return task

    async def _load(self, key: K, load: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        try:
            value = await load()
        finally:
            self._pending.pop(key, None)
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = (started, value)
        return value


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _log_lookup_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("refreshing a cached key or restaurant failed: %s", task.exception())


@dataclass
class ApiState:
    settings: Settings
    pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]]
    limiter: RateLimiter
    keys: Lookups[bytes, Principal | None]
    companies: Lookups[str, str | None]
    _snapshots: dict[tuple[Any, ...], tuple[float, Any]] = field(default_factory=dict)
    _computing: dict[tuple[Any, ...], asyncio.Task[Any]] = field(default_factory=dict)

    async def snapshot(self, key: tuple[Any, ...], compute: Callable[[], Awaitable[T]]) -> T:
        """One restaurant's signals, computed at most once per `api_snapshot_seconds`
        however many partners ask. Concurrent askers share one computation; once a
        snapshot is older than that, readers still get it at once while one refresh
        runs in the background. "Now" is then at most the interval plus one computation
        old, and a partner never waits behind another's refresh."""
        ttl = self.settings.api_snapshot_seconds
        hit = self._snapshots.get(key)
        now = time.monotonic()
        # Past MAX_STALE_SECONDS (the database is down, say) a reader waits for a fresh
        # answer, or its error, rather than being served old signals indefinitely.
        if ttl > 0 and hit is not None and now < hit[0] + MAX_STALE_SECONDS:
            if hit[0] <= now and key not in self._computing:
                task = asyncio.get_running_loop().create_task(self._refresh(key, compute, ttl))
                task.add_done_callback(_log_failure)
                self._computing[key] = task
            value: T = hit[1]
            return value
        pending = self._computing.get(key)
        if pending is not None:
            shared: T = await asyncio.shield(pending)
            return shared
        task = asyncio.get_running_loop().create_task(self._refresh(key, compute, ttl))
        self._computing[key] = task
        result: T = await asyncio.shield(task)
        return result

    async def _refresh(
        self, key: tuple[Any, ...], compute: Callable[[], Awaitable[T]], ttl: float
    ) -> T:
        try:
            value = await compute()
            if ttl > 0:
                if len(self._snapshots) > 10_000:
                    self._snapshots.clear()
                self._snapshots[key] = (time.monotonic() + ttl, value)
            return value
        finally:
            self._computing.pop(key, None)

    async def close(self) -> None:
        """Stop background refreshes, then the pool (a refresh left running would find
        the pool closed and log a failure at every shutdown)."""
        tasks = [*self._computing.values(), *self.keys.pending(), *self.companies.pending()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pool.close()

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
        return cls(
            settings=settings,
            pool=pool,
            limiter=limiter,
            keys=Lookups(KEY_TTL_SECONDS),
            companies=Lookups(KEY_TTL_SECONDS),
        )

    async def principal(self, key: str) -> Principal | None:
        digest = hash_api_key(key)

        async def load() -> Principal | None:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select key_id, company_id, restaurant_id, scopes from ops.partner_keys "
                    "where key_hash = %s and revoked_at is null",
                    (digest,),
                )
                row = await cur.fetchone()
            if row is None:
                return None
            return Principal(
                key_id=row["key_id"],
                company_id=row["company_id"],
                restaurant_id=row["restaurant_id"],
                scopes=frozenset(row["scopes"]),
            )

        return await self.keys.get(digest, load)

    async def restaurant_company(self, restaurant_id: str) -> str | None:
        # Cached like keys (a restaurant never changes company; an unknown id is
        # re-read after the TTL), so a signals read costs no round trip.
        async def load() -> str | None:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "select company_id from ops.restaurants where restaurant_id = %s",
                    (restaurant_id,),
                )
                row = await cur.fetchone()
            return None if row is None else str(row["company_id"])

        return await self.companies.get(restaurant_id, load)
