"""Group commit: concurrent requests share one INSERT and one COMMIT, each answered
only after the commit that holds its rows.

One commit per request caps a server at a few thousand requests a second; sharing
commits keeps every acknowledgement durable while raising the ceiling severalfold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg

log = logging.getLogger(__name__)


class WriterUnavailable(Exception):
    """The database did not take the batch; nothing in it was committed (answer 503)."""


class UnstorableRows(Exception):
    """PostgreSQL refuses these rows' content itself; resending cannot help (answer 400)."""


@dataclass(slots=True)
class WebhookRow:
    source: str
    company_id: str
    event_id: str
    event_type: str
    received_at: datetime
    headers: str  # JSON text
    body: str


@dataclass(slots=True)
class OrderRow:
    company_id: str
    restaurant_id: str
    event_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    headers: str
    body: str
    source: str = "pos"


@dataclass(slots=True)
class RejectedRow:
    received_at: datetime
    source: str
    company_id: str | None
    path: str
    status_code: int
    reason: str
    headers: str
    body_excerpt: str
    body_bytes: int


@dataclass(slots=True)
class _Pending:
    webhooks: list[WebhookRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    future: asyncio.Future[list[bool]] | None = None


# One statement per batch: one round trip and one commit, whatever mix of rows it holds.
# Rows travel as one JSON document (orjson, in C) rather than as typed arrays, which
# psycopg would build value by value in Python.
LAND_BATCH = """
with webhooks as (
    insert into raw.webhook_events
        (source, company_id, event_id, event_type, received_at, headers, body)
    select source, company_id, event_id, event_type, received_at, headers::jsonb, body
    from json_to_recordset(%(webhooks)s::json) as r(
        source text, company_id text, event_id text, event_type text,
        received_at timestamptz, headers text, body text
    )
    on conflict on constraint webhook_events_dedup do nothing
    returning 'w' as kind, source, company_id, event_id
),
orders as (
    insert into raw.order_events
        (source, company_id, restaurant_id, event_id, event_type, occurred_at,
         received_at, headers, body)
    select source, company_id, restaurant_id, event_id, event_type, occurred_at,
        received_at, headers::jsonb, body
    from json_to_recordset(%(orders)s::json) as r(
        source text, company_id text, restaurant_id text, event_id text, event_type text,
        occurred_at timestamptz, received_at timestamptz, headers text, body text
    )
    on conflict on constraint order_events_dedup do nothing
    returning 'o' as kind, source, company_id, event_id
),
rejected as (
    insert into raw.rejected_requests
        (received_at, source, company_id, path, status_code, reason, headers,
         body_excerpt, body_bytes)
    select received_at, source, company_id, path, status_code, reason, headers::jsonb,
        body_excerpt, body_bytes
    from json_to_recordset(%(rejected)s::json) as r(
        received_at timestamptz, source text, company_id text, path text,
        status_code integer, reason text, headers text, body_excerpt text,
        body_bytes integer
    )
)
select * from webhooks union all select * from orders
"""


class GroupCommitWriter:
    """Collects rows from concurrent requests; a few connections take turns committing
    everything pending. `land()` resolves to one flag per row: True if new, False if a
    duplicate, only once the transaction holding it has committed."""

    def __init__(
        self, conninfo: str, *, connections: int = 2, max_rows: int = 2000, timeout: float = 5.0
    ) -> None:
        self.conninfo = conninfo
        self.connections = connections
        self.max_rows = max_rows
        self.timeout = timeout
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.batches = 0
        self.rows = 0

    async def start(self) -> None:
        self._closing = False
        self._tasks = [asyncio.create_task(self._run(i)) for i in range(self.connections)]

    async def stop(self) -> None:
        self._closing = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for item in self._queue:
            if item.future and not item.future.done():
                item.future.set_exception(WriterUnavailable("ingest is shutting down"))
        self._queue.clear()

    async def land(
        self,
        *,
        webhooks: list[WebhookRow] | None = None,
        orders: list[OrderRow] | None = None,
        rejected: list[RejectedRow] | None = None,
    ) -> list[bool]:
        """Queue rows and wait for their commit. Flags follow webhooks then orders."""
        if self._closing:
            raise WriterUnavailable("ingest is shutting down")
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(webhooks or [], orders or [], rejected or [], future))
        self._wakeup.set()
        try:
            # asyncio.timeout adds no task per request, unlike wait_for.
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError as exc:
            # The commit may still happen; the sender retries and gets "duplicate".
            raise WriterUnavailable("database did not commit in time") from exc

    def _take(self) -> list[_Pending]:
        """Everything waiting, up to max_rows (at least one request)."""
        count = cut = 0
        for cut, item in enumerate(self._queue, 1):  # noqa: B007
            count += len(item.webhooks) + len(item.orders) + len(item.rejected)
            if count >= self.max_rows:
                break
        taken = self._queue[:cut]
        del self._queue[:cut]
        if not self._queue:
            self._wakeup.clear()
        return taken

    async def _run(self, index: int) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        backoff = 0.05
        while not self._closing:
            await self._wakeup.wait()
            batch = self._take()
            if not batch:
                continue
            try:
                if conn is None or conn.closed:
                    # Autocommit: the one statement of a batch is its own transaction.
                    conn = await psycopg.AsyncConnection.connect(
                        self.conninfo,
                        autocommit=True,
                        connect_timeout=3,
                        application_name=f"ingest-writer-{index}",
                    )
                results = await self._commit(conn, batch)
                backoff = 0.05
            except psycopg.DataError as exc:
                # One request's content poisons the shared transaction: commit each request
                # on its own, so only the bad one fails and everyone else is answered.
                await self._commit_one_by_one(conn, batch, exc)  # type: ignore[arg-type]
                continue
            except Exception as exc:
                log.warning("ingest batch of %d requests not committed: %s", len(batch), exc)
                for item in batch:
                    if item.future and not item.future.done():
                        item.future.set_exception(WriterUnavailable(str(exc)))
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                conn = None
                # Let the next batch try again soon, without spinning on a dead server.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            for item, flags in zip(batch, results, strict=True):
                if item.future and not item.future.done():
                    item.future.set_result(flags)
        if conn is not None:
            await conn.close()

    async def _commit_one_by_one(
        self, conn: psycopg.AsyncConnection[Any], batch: list[_Pending], first: Exception
    ) -> None:
        log.warning(
            "a batch of %d requests was refused (%s); committing one by one", len(batch), first
        )
        for item in batch:
            try:
                (flags,) = await self._commit(conn, [item])
            except psycopg.DataError as exc:
                if item.future and not item.future.done():
                    item.future.set_exception(UnstorableRows(str(exc).splitlines()[0]))
            except Exception as exc:
                if item.future and not item.future.done():
                    item.future.set_exception(WriterUnavailable(str(exc)))
            else:
                if item.future and not item.future.done():
                    item.future.set_result(flags)

    async def _commit(
        self, conn: psycopg.AsyncConnection[Any], batch: list[_Pending]
    ) -> list[list[bool]]:
        webhooks = [r for item in batch for r in item.webhooks]
        orders = [r for item in batch for r in item.orders]
        rejected = [r for item in batch for r in item.rejected]
        started = time.perf_counter()
        cur = await conn.execute(
            LAND_BATCH,
            {
                "webhooks": orjson.dumps(webhooks).decode(),
                "orders": orjson.dumps(orders).decode(),
                "rejected": orjson.dumps(rejected).decode(),
            },
        )
        landed = await cur.fetchall()
        new_webhooks = {(r[1], r[2], r[3]) for r in landed if r[0] == "w"}
        new_orders = {(r[1], r[2], r[3]) for r in landed if r[0] == "o"}
        self.batches += 1
        self.rows += len(webhooks) + len(orders) + len(rejected)
        observe_batch(len(webhooks) + len(orders) + len(rejected), time.perf_counter() - started)
        # A key inserted once answers "new" to its first sender only; the same key
        # sent twice in one batch is a duplicate for the second.
        results: list[list[bool]] = []
        for item in batch:
            flags = []
            for w in item.webhooks:
                key = (w.source, w.company_id, w.event_id)
                flags.append(key in new_webhooks)
                new_webhooks.discard(key)
            for o in item.orders:
                key = (o.source, o.company_id, o.event_id)
                flags.append(key in new_orders)
                new_orders.discard(key)
            results.append(flags)
        return results


def observe_batch(rows: int, seconds: float) -> None:
    from ingest.metrics import COMMIT_ROWS, COMMIT_SECONDS

    COMMIT_ROWS.observe(rows)
    COMMIT_SECONDS.observe(seconds)
