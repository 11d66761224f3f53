"""Group commit: concurrent requests share one INSERT and one COMMIT, each answered
only after the commit that holds its rows.

One commit per request caps a server at a few thousand requests a second; sharing
commits keeps every acknowledgement durable while raising the ceiling severalfold.

Backpressure, honestly: the queue of rows waiting for a commit is bounded, and a request
that cannot be committed soon is refused at once instead of queued. `WriterUnavailable`
(answered 503) always means "nothing of this request was committed": a request is
refused only before its commit started (queue full, database slow, or no commit started
within `timeout`: it is withdrawn from the queue), or when its commit failed for sure
(PostgreSQL reported the error, `statement_timeout` included, or the connection broke
and the rows are verifiably absent). Once a commit started, its requests wait for its
outcome.
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
from psycopg.adapt import Dumper

log = logging.getLogger(__name__)


class WriterUnavailable(Exception):
    """Nothing of this request was committed, and nothing of it will be (answer 503)."""


class CommitUnknown(WriterUnavailable):
    """The one exception to "503 means not committed": a commit's connection broke and
    ingest stopped before the database could be asked whether it landed. Under uvicorn
    it does not happen (shutdown waits for requests in flight, and they wait for the
    answer); the request may have committed, and a resend is answered `duplicate`."""


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


@dataclass(slots=True, eq=False)
class _Pending:
    webhooks: list[WebhookRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    future: asyncio.Future[list[bool]] | None = None
    rows: int = 0
    # The rows as JSON arrays (webhooks, orders, rejected), encoded once per request;
    # a batch's document is their concatenation.
    encoded: tuple[bytes, bytes, bytes] = (b"[]", b"[]", b"[]")
    # Taken into a batch: from then on the request waits for that commit's outcome.
    started: bool = False


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


ENCODE_ROWS = 500
UNKNOWN = object()


class GroupCommitWriter:
    """Collects rows from concurrent requests; a few connections take turns committing
    everything pending. `land()` resolves to one flag per row: True if new, False if a
    duplicate, only once the transaction holding it has committed; or raises
    WriterUnavailable, and then nothing of the request was committed (see the module).

    `max_queued_rows` bounds the rows waiting for a commit; `timeout` is how long a
    request waits for its commit to start (and how long every connection may be busy
    with one commit before new requests are refused at once); `statement_timeout` is
    PostgreSQL's own limit on one commit, which it rolls back when exceeded."""

    def __init__(
        self,
        conninfo: str,
        *,
        connections: int = 2,
        max_rows: int = 2000,
        max_queued_rows: int = 50_000,
        timeout: float = 2.0,
        statement_timeout: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.connections = connections
        self.max_rows = max_rows
        self.max_queued_rows = max_queued_rows
        self.timeout = timeout
        self.statement_timeout = statement_timeout
        self._queue: list[_Pending] = []
        self._queued_rows = 0
        # connection index -> when its current batch was taken (monotonic)
        self._busy_since: dict[int, float] = {}
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
        self._queued_rows = 0

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def stalled_for(self) -> float:
        """How long every connection has been busy with one batch (0: one is free or
        got its batch less than `timeout` ago)."""
        if len(self._busy_since) < self.connections:
            return 0.0
        busy = time.monotonic() - max(self._busy_since.values())
        return busy if busy >= self.timeout else 0.0

    async def land(
        self,
        *,
        webhooks: list[WebhookRow] | None = None,
        orders: list[OrderRow] | None = None,
        rejected: list[RejectedRow] | None = None,
        orders_json: bytes | None = None,
    ) -> list[bool]:
        """Queue rows and wait for their commit. Flags follow webhooks then orders.
        `orders_json` is `encode_rows(orders)` when the caller made it already (off the
        event loop, for a large batch)."""
        if self._closing:
            raise WriterUnavailable("ingest is shutting down")
        item = _Pending(webhooks or [], orders or [], rejected or [])
        item.rows = len(item.webhooks) + len(item.orders) + len(item.rejected)
        item.encoded = (
            encode_rows(item.webhooks),
            encode_rows(item.orders) if orders_json is None else orders_json,
            encode_rows(item.rejected),
        )
        # Refused at once rather than queued: a request alone may exceed the bound.
        if self._queue and self._queued_rows + item.rows > self.max_queued_rows:
            metrics_refused("queue_full")
            raise WriterUnavailable(f"{self._queued_rows} rows already wait for a commit")
        stalled = self.stalled_for()
        if stalled:
            metrics_refused("database_slow")
            raise WriterUnavailable(f"every commit connection busy for {stalled:.1f} s")
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        item.future = future
        self._queue.append(item)
        self._queued_rows += item.rows
        self._wakeup.set()
        try:
            # asyncio.timeout adds no task per request, unlike wait_for; shield keeps
            # the future alive for the wait below when the timeout fires.
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            if not item.started:
                self._withdraw(item)
                metrics_refused("not_started")
                raise WriterUnavailable(
                    f"no commit started within {self.timeout:g} s; withdrawn"
                ) from None
        # Its commit is under way: the answer is that commit's outcome, whatever it takes
        # (PostgreSQL's statement_timeout bounds it).
        return await future

    def _withdraw(self, item: _Pending) -> None:
        self._queue.remove(item)
        self._queued_rows -= item.rows
        if not self._queue:
            self._wakeup.clear()

    def _take(self) -> list[_Pending]:
        """Everything waiting, up to max_rows (at least one request)."""
        count = cut = 0
        for cut, item in enumerate(self._queue, 1):  # noqa: B007
            count += item.rows
            if count >= self.max_rows:
                break
        taken = self._queue[:cut]
        del self._queue[:cut]
        for item in taken:
            item.started = True
            self._queued_rows -= item.rows
        if not self._queue:
            self._wakeup.clear()
        return taken

    async def _connect(self, index: int) -> psycopg.AsyncConnection[Any]:
        # Autocommit: the one statement of a batch is its own transaction. PostgreSQL
        # rolls a batch back past statement_timeout (a lock held for ever, say), which
        # turns a hung commit into a certain "not committed".
        return await psycopg.AsyncConnection.connect(
            self.conninfo,
            autocommit=True,
            connect_timeout=3,
            application_name=f"ingest-writer-{index}",
            options=f"-c statement_timeout={int(self.statement_timeout * 1000)}",
        )

    async def _run(self, index: int) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        backoff = 0.05
        while not self._closing:
            await self._wakeup.wait()
            batch = self._take()
            if not batch:
                continue
            self._busy_since[index] = time.monotonic()
            try:
                conn, backoff = await self._land_batch(index, conn, batch, backoff)
            finally:
                del self._busy_since[index]
        if conn is not None:
            await conn.close()

    async def _land_batch(
        self,
        index: int,
        conn: psycopg.AsyncConnection[Any] | None,
        batch: list[_Pending],
        backoff: float,
    ) -> tuple[psycopg.AsyncConnection[Any] | None, float]:
        """Commit one batch and answer its requests; (the connection to keep, backoff)."""
        try:
            if conn is None or conn.closed:
                conn = await self._connect(index)
        except Exception as exc:
            # Nothing was sent: certainly not committed.
            fail(batch, WriterUnavailable(str(exc)))
            # Let the next batch try again soon, without spinning on a dead server.
            await asyncio.sleep(backoff)
            return None, min(backoff * 2, 1.0)
        pid = conn.info.backend_pid
        try:
            results = await self._commit(conn, batch)
        except psycopg.DataError as exc:
            # One request's content poisons the shared transaction: commit each request
            # on its own, so only the bad one fails and everyone else is answered.
            await self._commit_one_by_one(conn, batch, exc)
            return conn, 0.05
        except Exception as exc:
            log.warning("ingest batch of %d requests not committed: %s", len(batch), exc)
            if not conn.broken and not conn.closed:
                # PostgreSQL reported the error and rolled the statement back.
                fail(batch, WriterUnavailable(str(exc)))
                return conn, 0.05
            with contextlib.suppress(Exception):
                await conn.close()
            # The connection broke mid-commit: it may have committed. Ask the database.
            settled = await self._settle_in_doubt(index, pid, batch)
            if isinstance(settled, list):
                answer_batch(batch, settled)
            elif settled is UNKNOWN:
                fail(batch, CommitUnknown(f"{exc}; ingest stopped before it could tell"))
            else:
                fail(batch, WriterUnavailable(f"{exc}; verified not committed"))
            await asyncio.sleep(backoff)
            return None, min(backoff * 2, 1.0)
        answer_batch(batch, results)
        return conn, 0.05

    async def _settle_in_doubt(
        self, index: int, pid: int, batch: list[_Pending]
    ) -> list[list[bool]] | object | None:
        """After a connection broke mid-commit: end its backend if it still runs, then
        look for the batch's rows by key and `received_at`. The flags if the batch was
        committed, None if not, UNKNOWN if ingest stopped first. Asks until the database
        answers: the waiting requests are answered the truth."""
        backoff = 0.1
        while not self._closing:
            try:
                async with await self._connect(index) as conn:
                    while True:
                        cur = await conn.execute(
                            "select pg_terminate_backend(pid) from pg_stat_activity where pid = %s",
                            (pid,),
                        )
                        if not await cur.fetchall():
                            break
                        await asyncio.sleep(0.05)
                    return await self._find_committed(conn, batch)
            except Exception as exc:
                log.warning("cannot yet tell whether a broken commit landed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        return UNKNOWN

    async def _find_committed(
        self, conn: psycopg.AsyncConnection[Any], batch: list[_Pending]
    ) -> list[list[bool]] | None:
        webhooks = [r for item in batch for r in item.webhooks]
        orders = [r for item in batch for r in item.orders]
        if not webhooks and not orders:
            return None  # only refusal records: nobody needs to know
        cur = await conn.execute(
            "select 'w', source, company_id, event_id from raw.webhook_events w "
            "join json_to_recordset(%(w)s::json) as r(source text, company_id text, "
            "event_id text, received_at timestamptz) using (source, company_id, event_id, "
            "received_at) "
            "union all "
            "select 'o', source, company_id, event_id from raw.order_events o "
            "join json_to_recordset(%(o)s::json) as r(source text, company_id text, "
            "event_id text, received_at timestamptz) using (source, company_id, event_id, "
            "received_at)",
            {"w": orjson.dumps(webhooks).decode(), "o": orjson.dumps(orders).decode()},
        )
        landed = await cur.fetchall()
        # One statement is one transaction: all of the batch committed, or none of it.
        return flags_for(batch, landed) if landed else None

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
        rows = sum(item.rows for item in batch)
        started = time.perf_counter()
        cur = await conn.execute(
            LAND_BATCH,
            {
                "webhooks": JsonText(concat_arrays([item.encoded[0] for item in batch])),
                "orders": JsonText(concat_arrays([item.encoded[1] for item in batch])),
                "rejected": JsonText(concat_arrays([item.encoded[2] for item in batch])),
            },
        )
        landed = await cur.fetchall()
        self.batches += 1
        self.rows += rows
        observe_batch(rows, time.perf_counter() - started)
        return flags_for(batch, landed)


def encode_rows(rows: list[Any]) -> bytes:
    """Rows as one JSON array, the form `land(orders_json=...)` takes. Encoded 500 rows
    at a time: one orjson call holds the GIL throughout (10,000 rows: about 60 ms)."""
    if len(rows) <= ENCODE_ROWS:
        return orjson.dumps(rows)
    return concat_arrays(
        [orjson.dumps(rows[i : i + ENCODE_ROWS]) for i in range(0, len(rows), ENCODE_ROWS)]
    )


def concat_arrays(arrays: list[bytes]) -> bytes:
    """One JSON array holding the elements of several (a copy, not a re-encoding)."""
    full = [a for a in arrays if a != b"[]"]
    if len(full) <= 1:
        return full[0] if full else b"[]"  # no copy of a large request's megabytes
    return b"[" + b",".join([a[1:-1] for a in full]) + b"]"


@dataclass(slots=True, frozen=True)
class JsonText:
    """A JSON document already encoded as UTF-8, sent to PostgreSQL as is."""

    data: bytes


class _JsonTextDumper(Dumper):
    oid = psycopg.postgres.types["json"].oid

    def dump(self, obj: Any) -> bytes:
        data: bytes = obj.data
        return data


psycopg.adapters.register_dumper(JsonText, _JsonTextDumper)


def flags_for(batch: list[_Pending], landed: list[tuple[Any, ...]]) -> list[list[bool]]:
    """Per request, per row: True if this row was inserted (its key is among `landed`)."""
    if len(landed) == sum(len(item.webhooks) + len(item.orders) for item in batch):
        # Every row was new (the common case): no need to match keys.
        return [[True] * (len(item.webhooks) + len(item.orders)) for item in batch]
    new_webhooks = {(r[1], r[2], r[3]) for r in landed if r[0] == "w"}
    new_orders = {(r[1], r[2], r[3]) for r in landed if r[0] == "o"}
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


def fail(batch: list[_Pending], exc: Exception) -> None:
    for item in batch:
        if item.future and not item.future.done():
            item.future.set_exception(exc)


def answer_batch(batch: list[_Pending], results: list[list[bool]]) -> None:
    for item, flags in zip(batch, results, strict=True):
        if item.future and not item.future.done():
            item.future.set_result(flags)


def metrics_refused(reason: str) -> None:
    from ingest.metrics import BACKPRESSURE

    BACKPRESSURE.labels(reason).inc()


def observe_batch(rows: int, seconds: float) -> None:
    from ingest.metrics import COMMIT_ROWS, COMMIT_SECONDS

    COMMIT_ROWS.observe(rows)
    COMMIT_SECONDS.observe(seconds)
