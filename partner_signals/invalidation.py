"""Changes to keys, integrations and restaurants, pushed to every worker's caches at once.

A trigger on ops.ingest_keys, ops.partner_keys, ops.integrations and ops.restaurants
(migration 0010) sends one NOTIFY per changed row on CHANNEL when its transaction
commits, whoever made the change (the CLI, SQL by hand). Each ingest and partner API
worker LISTENs on its own connection and forgets the cached answers the row decided,
so a revoked key is refused within milliseconds instead of at the end of the caches'
TTL. A notification can be lost only with the connection: on every (re)connect the
worker forgets everything it cached, and while it is disconnected the TTL still bounds
how long an answer is trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

CHANNEL = "partner_signals_cache"
# What each listener's connection shows in pg_stat_activity, with its worker's pid.
APPLICATION_NAME = "partner-signals cache listener"
# A listener that hears nothing for this long checks that its connection still answers
# (a peer that vanished without closing the socket would otherwise go unnoticed).
HEARTBEAT_SECONDS = 5.0
RETRY_SECONDS = 1.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One changed row: its table and the columns caches are keyed by, as text (a
    bytea as lowercase hex without the `\\x`)."""

    table: str
    row: dict[str, str | None]

    @classmethod
    def parse(cls, payload: str) -> Change:
        message = json.loads(payload)
        row = {
            name: None if value is None else str(value).removeprefix("\\x")
            for name, value in dict(message.get("row") or {}).items()
        }
        return cls(table=str(message["table"]), row=row)


class ChangeListener:
    """LISTENs on CHANNEL for the life of a worker; `on_change` gets each change and
    `on_connect` runs on every (re)connect, once LISTEN is in place, to forget what may
    have changed unheard. Both run on the event loop and must not block."""

    def __init__(
        self,
        conninfo: str,
        *,
        on_change: Callable[[Change], None],
        on_connect: Callable[[], None],
        name: str = "cache invalidation",
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._conninfo = conninfo
        self._on_change = on_change
        self._on_connect = on_connect
        self._name = name
        self._heartbeat = heartbeat_seconds
        self._retry = retry_seconds
        self._task: asyncio.Task[None] | None = None
        # Set while LISTEN is in place (tests wait on it; so could a readiness probe).
        self.listening = asyncio.Event()
        self.connects = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except Exception as exc:
                log.warning("%s: listener lost its connection (%s); reconnecting", self._name, exc)
            self.listening.clear()
            await asyncio.sleep(self._retry)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=3,
            application_name=f"{APPLICATION_NAME} {os.getpid()}",
        )
        async with conn:
            await conn.execute(f"listen {CHANNEL}")
            self.connects += 1
            self._on_connect()
            self.listening.set()
            while True:
                async for notice in conn.notifies(timeout=self._heartbeat):
                    self._handle(notice.payload)
                # Quiet for a heartbeat: a dead connection raises here.
                await asyncio.wait_for(conn.execute("select 1"), self._heartbeat)

    def _handle(self, payload: str) -> None:
        try:
            change = Change.parse(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("%s: ignored a malformed notification", self._name)
            return
        try:
            self._on_change(change)
        except Exception:
            log.exception("%s: handling %s failed; forgetting everything", self._name, change)
            self._on_connect()
