"""One stale-while-revalidate cache for answers read from the database on hot paths."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
log = logging.getLogger(__name__)


class Cache(Generic[K, V]):
    """Each value is trusted for `ttl` seconds from when its load started (so a change
    in the database, a revoked key say, shows within `ttl`). From `refresh_ahead` x
    `ttl` on, a reader still gets the value at once while one load runs in the
    background; past `ttl`, it still does for `max_stale` more seconds, and after that
    a reader waits for a fresh value or its error rather than being served an old one
    indefinitely (the database is down, say). Concurrent readers of a missing or
    expired key share one load; a reader that goes away does not cancel it.

    A hit costs a dict lookup, a clock read and a comparison: no await, no task. At
    most `limit` keys are kept (the oldest loaded goes first), so floods of made-up
    keys cannot grow memory. `ttl` <= 0 keeps nothing: concurrent readers still share
    one load.
    """

    def __init__(
        self,
        *,
        ttl: float,
        refresh_ahead: float = 1.0,
        max_stale: float = 0.0,
        limit: int = 10_000,
        name: str = "a cached value",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < refresh_ahead <= 1.0:
            raise ValueError("refresh_ahead is a fraction of ttl in (0, 1]")
        if max_stale < 0 or limit < 1:
            raise ValueError("max_stale must be >= 0 and limit >= 1")
        self.ttl = ttl
        self.limit = limit
        self.name = name
        self._refresh_after = ttl * refresh_ahead
        self._usable_for = ttl + max_stale
        self._clock = clock
        # key -> (refresh from, usable until, value): the thresholds are worked out once
        # a load, so a hit only compares.
        self._entries: dict[K, tuple[float, float, V]] = {}
        self._pending: dict[K, asyncio.Task[V]] = {}
        # Bumped by discard and clear: a load started before keeps its answer to itself.
        # One counter for every key: a discard also stops other keys' loads under way
        # from being stored (their next reader loads again), which changes are rare
        # enough to afford.
        self._generation = 0
        self._loads: set[asyncio.Task[V]] = set()

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._entries.get(key)
        if hit is not None:
            now = self._clock()
            if now < hit[0]:
                return hit[2]
            if now < hit[1]:
                if key not in self._pending:
                    self._start(key, load).add_done_callback(self._log_failure)
                return hit[2]
        pending = self._pending.get(key)
        if pending is None:
            pending = self._start(key, load)
            # Its readers get the error; if they all went away, nobody is told twice.
            pending.add_done_callback(_retrieve)
        value: V = await asyncio.shield(pending)
        return value

    def peek(self, key: K) -> V | None:
        """The value held for `key` however old, without loading (tests, diagnostics)."""
        hit = self._entries.get(key)
        return None if hit is None else hit[2]

    def __len__(self) -> int:
        return len(self._entries)

    def discard(self, key: K) -> None:
        """Forget `key`: the next reader loads it afresh, even if a load is under way."""
        self._generation += 1
        self._entries.pop(key, None)
        self._pending.pop(key, None)

    def clear(self) -> None:
        """Forget every value; loads under way answer their readers but store nothing."""
        self._generation += 1
        self._entries.clear()
        self._pending.clear()

    async def close(self) -> None:
        """Cancel loads under way (one left running would find its pool closed and log a
        failure at every shutdown) and wait for them to end."""
        tasks = list(self._loads)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, key: K, load: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        task = asyncio.get_running_loop().create_task(self._load(key, load, self._generation))
        self._pending[key] = task
        # Every load, also those discard or clear let go of, so close() cancels them all.
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)
        return task

    async def _load(self, key: K, load: Callable[[], Awaitable[V]], generation: int) -> V:
        started = self._clock()
        try:
            value = await load()
        finally:
            if self._pending.get(key) is asyncio.current_task():
                self._pending.pop(key)
        if self.ttl > 0 and generation == self._generation:
            entries = self._entries
            # Re-inserted at the end: the dict's order is the order of loads.
            entries.pop(key, None)
            if len(entries) >= self.limit:
                del entries[next(iter(entries))]
            entries[key] = (started + self._refresh_after, started + self._usable_for, value)
        return value

    def _log_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("refreshing %s failed: %s", self.name, task.exception())


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
