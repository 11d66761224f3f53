"""When each key was last used, written in batches: a worker notes the keys it served in
memory (a dict store per request) and writes them in one statement every FLUSH_SECONDS.

A write per request would double ingest's database work; this costs one short UPDATE
per worker and interval, only when a key was used. Migration 0015 keeps such an update
from firing the cache NOTIFY (it changes only last_used_at), so workers keep their
cached keys. A listing's `last_used_at` is then at most FLUSH_SECONDS behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Literal

import psycopg

FLUSH_SECONDS = 15.0
Table = Literal["partner_keys", "ingest_keys"]
log = logging.getLogger(__name__)


class KeyUsage:
    """Notes which keys (by digest) were used, and writes it to `ops.<table>`."""

    def __init__(self, conninfo: str, table: Table, *, interval: float = FLUSH_SECONDS) -> None:
        self._conninfo = conninfo
        self._table = table
        self._interval = interval
        self._used: dict[bytes, float] = {}
        self._task: asyncio.Task[None] | None = None

    def touch(self, digest: bytes) -> None:
        """The key with this digest was just used (the hot path: one dict store)."""
        self._used[digest] = time.time()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the timer and write what is noted."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("writing keys' last use to ops.%s failed: %s", self._table, exc)

    async def flush(self) -> int:
        """Write the noted uses in one statement; how many keys were noted. On failure
        the uses are kept for the next try."""
        used, self._used = self._used, {}
        if not used:
            return 0
        digests = list(used)
        moments = [datetime.fromtimestamp(used[d], UTC) for d in digests]
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=3
            )
            async with conn:
                await conn.execute(
                    f"""
                    update ops.{self._table} k set last_used_at = u.at
                    from unnest(%s::bytea[], %s::timestamptz[]) as u(key_hash, at)
                    where k.key_hash = u.key_hash
                      and (k.last_used_at is null or k.last_used_at < u.at)
                    """,
                    (digests, moments),
                )
        except Exception:
            for digest, at in used.items():
                self._used.setdefault(digest, at)
            raise
        return len(used)
