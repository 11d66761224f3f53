"""What the partner API holds while it runs: a read-only pool, the caches, the limiter.

Keys and restaurants are cached for KEY_TTL_SECONDS, at most CACHE_LIMIT of each; a
change to either is pushed by NOTIFY (partner_signals.invalidation) and forgets the
cached answer at once, so a revoked key is refused within milliseconds on every worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.numeric import FloatLoader
from psycopg_pool import AsyncConnectionPool

from partner_signals.cache import Cache
from partner_signals.crypto import hash_api_key
from partner_signals.invalidation import Change, ChangeListener
from partner_signals.key_usage import KeyUsage
from partner_signals.ratelimit import RateLimiter
from partner_signals.settings import Settings

READER_ROLE = "partner_signals_reader"
MAX_STALE_SECONDS = 30.0
# Unheard (the listener reconnecting), a revoked key or a restaurant moved out of reach
# stops being served within this.
KEY_TTL_SECONDS = 10.0
# Made-up keys are cached as "unknown" too: this bounds what a flood of them holds.
CACHE_LIMIT = 10_000

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


@dataclass
class ApiState:
    settings: Settings
    pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]]
    limiter: RateLimiter
    keys: Cache[bytes, Principal | None]
    companies: Cache[str, str | None]
    snapshots: Cache[tuple[Any, ...], Any]
    listener: ChangeListener = field(init=False)
    # When each key was last used, written in batches (the pool cannot write).
    usage: KeyUsage = field(init=False)

    def snapshot(
        self, key: tuple[Any, ...], compute: Callable[[], Awaitable[T]]
    ) -> Coroutine[Any, Any, T]:
        """One restaurant's signals, computed at most once per `api_snapshot_seconds`
        however many partners ask. Concurrent askers share one computation; once a
        snapshot is older than that, readers still get it at once while one refresh
        runs in the background. "Now" is then at most the interval plus one computation
        old, and a partner never waits behind another's refresh. Past MAX_STALE_SECONDS
        more (the database is down, say) a reader waits for a fresh answer, or its
        error, rather than being served old signals indefinitely. (The cache's own
        coroutine, handed back rather than awaited here: no second frame per read.)"""
        return self.snapshots.get(key, compute)

    async def open(self) -> None:
        await self.pool.open(wait=False)
        self.listener.start()
        self.usage.start()

    async def close(self) -> None:
        """Stop background refreshes, then the pool (a refresh left running would find
        the pool closed and log a failure at every shutdown)."""
        await self.listener.stop()
        await self.usage.stop()
        for cache in (self.snapshots, self.keys, self.companies):
            await cache.close()
        await self.pool.close()

    def forget(self) -> None:
        """Drop every cached key and restaurant (on each (re)connect of the listener)."""
        self.keys.clear()
        self.companies.clear()

    def _changed(self, change: Change) -> None:
        row = change.row
        if change.table == "partner_keys":
            self.keys.discard(bytes.fromhex(str(row.get("key_hash"))))
        elif change.table == "restaurants":
            self.companies.discard(str(row.get("restaurant_id")))

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
        state = cls(
            settings=settings,
            pool=pool,
            limiter=limiter,
            # A steady partner never waits on the database for its key: past half the
            # TTL, one refresh runs in the background while the cached answer is served.
            keys=Cache(
                ttl=KEY_TTL_SECONDS, refresh_ahead=0.5, limit=CACHE_LIMIT, name="a cached key"
            ),
            companies=Cache(
                ttl=KEY_TTL_SECONDS,
                refresh_ahead=0.5,
                limit=CACHE_LIMIT,
                name="a cached restaurant",
            ),
            snapshots=Cache(
                ttl=settings.api_snapshot_seconds,
                max_stale=MAX_STALE_SECONDS,
                name="a signals snapshot",
            ),
        )
        state.listener = ChangeListener(
            conninfo, on_change=state._changed, on_connect=state.forget, name="partner API keys"
        )
        state.usage = KeyUsage(conninfo, "partner_keys", interval=settings.key_usage_seconds)
        return state

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

        principal = await self.keys.get(digest, load)
        if principal is not None:
            self.usage.touch(digest)
        return principal

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
