"""Bulk backfill of POS events from an NDJSON file, through the same validation as
`POST /events`, landed with binary COPY and the same duplicate rule."""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.context import BaseContext
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors
from psycopg.adapt import Dumper
from psycopg.pq import Format

from partner_signals.pos import InvalidPosEvent, TimeWindow, parse_pos_event

# A chunk is one worker task and one transaction: ~20,000 events of ~210 bytes. Small
# enough that the last chunk does not leave a core idle for long, large enough that a
# commit (one WAL flush) per chunk costs nothing.
CHUNK_BYTES = 4 << 20
# Worker processes, each parsing a chunk and COPYing it on its own connection: while one
# parses (Python, its own GIL), the other's backend inserts.
WORKERS = 2
# A chunk that lost a deadlock with a concurrent writer is simply landed again.
DEADLOCK_RETRIES = 5
FILE_HEADERS = '{"x-ingested-from": "file"}'
COLUMNS = "company_id, restaurant_id, event_id, event_type, occurred_at, received_at, headers, body"
COPY_TYPES = ["text", "text", "text", "text", "timestamptz", "timestamptz", "jsonb", "text"]
# jsonb's binary wire format: a version byte, then the JSON text. Every row carries the
# same headers, so they are encoded once instead of once a row.
HEADERS_JSONB = b"\x01" + FILE_HEADERS.encode()
Row = tuple[str, str, str, str, datetime, datetime, bytes, str]


@dataclass
class BulkResult:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    # How many chunks each landing path took ("copy", "on conflict", "empty").
    paths: dict[str, int] = field(default_factory=dict)


@dataclass
class ChunkOutcome:
    seen: int  # physical lines, blank ones included (what the progress bar counts)
    lines: int
    accepted: int
    duplicates: int
    rejected: list[tuple[int, str]]
    path: str


def ingest_file(
    path: Path,
    *,
    conninfo: str,
    company_id: str,
    on_progress: Callable[[int], None] | None = None,
    workers: int = WORKERS,
    chunk_bytes: int = CHUNK_BYTES,
) -> BulkResult:
    """Land every valid event of `path` for `company_id`; invalid lines are kept in
    raw.rejected_requests and listed in the result. `on_progress` gets the number of
    lines (blank ones included) of each chunk once it is committed.

    The file is cut into chunks at line ends; `workers` processes each validate a chunk
    and land it in one transaction on their own connection (`workers=0` does it all in
    this process). Each chunk is committed before it is counted, so an interrupted run
    leaves whole chunks, and running the file again lands only what is missing. Of two
    lines with the same event id in one chunk the first is kept; in chunks written at
    the same time, the one committed first (as with two racing HTTP requests)."""
    result = BulkResult()
    received_at = datetime.now(UTC)
    with psycopg.connect(conninfo) as conn:
        restaurants = frozenset(
            r[0]
            for r in conn.execute(
                "select restaurant_id from ops.restaurants where company_id = %s", (company_id,)
            )
        )
    if not restaurants:
        raise ValueError(f"company {company_id!r} has no restaurants")

    def take(outcome: ChunkOutcome) -> None:
        result.lines += outcome.lines
        result.accepted += outcome.accepted
        result.duplicates += outcome.duplicates
        result.rejected.extend(outcome.rejected)
        result.paths[outcome.path] = result.paths.get(outcome.path, 0) + 1
        if on_progress:
            on_progress(outcome.seen)

    setup = (conninfo, company_id, restaurants, received_at)
    name = str(path)
    if workers < 1:
        lander = ChunkLander(*setup)
        try:
            for offset, size, first in chunk_ranges(path, chunk_bytes):
                take(lander.land_range(name, offset, size, first))
        finally:
            lander.close()
    else:
        with ProcessPoolExecutor(
            workers, mp_context=_mp_context(), initializer=_start_worker, initargs=setup
        ) as pool:
            pending: set[Future[ChunkOutcome]] = set()
            try:
                for offset, size, first in chunk_ranges(path, chunk_bytes):
                    pending.add(pool.submit(_land_range, name, offset, size, first))
                    # Two chunks a worker: one being landed, the next ready to start.
                    if len(pending) >= 2 * workers:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            take(future.result())
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        take(future.result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    result.rejected.sort()
    if result.rejected:
        _record_rejections(conninfo, company_id, path, result.rejected)
    return result


def chunk_ranges(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, int, int]]:
    """(offset, size, number of its first line) of consecutive chunks that end at a line
    end (or the end of the file)."""
    with path.open("rb") as fh:
        offset, first = 0, 1
        while block := fh.read(chunk_bytes):
            if not block.endswith(b"\n"):
                block += fh.readline()  # finish the last line, however long
            yield offset, len(block), first
            offset += len(block)
            first += block.count(b"\n")


class ChunkLander:
    """One connection's worth of landing: validate a chunk, then insert it."""

    def __init__(
        self, conninfo: str, company_id: str, restaurants: frozenset[str], received_at: datetime
    ) -> None:
        self.company_id = company_id
        self.restaurants = restaurants
        self.received_at = received_at
        self.window = TimeWindow.around(received_at)
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.conn.adapters.register_dumper(None, _EncodedJsonb)
        # COPY straight into the table until a chunk meets an event id that is already
        # there (see land).
        self.optimistic = True

    def close(self) -> None:
        self.conn.close()

    def land_range(self, path: str, offset: int, size: int, first: int) -> ChunkOutcome:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(size)
        rows, outcome = self.parse(data, first)
        outcome.accepted, outcome.path = self.land(rows)
        outcome.duplicates += len(rows) - outcome.accepted
        return outcome

    def parse(self, data: bytes, first: int) -> tuple[list[Row], ChunkOutcome]:
        """The chunk's valid events, first of each event id; the rest counted or listed."""
        company_id, received_at, restaurants = self.company_id, self.received_at, self.restaurants
        by_id: dict[str, Row] = {}
        rejected: list[tuple[int, str]] = []
        lines = repeats = 0
        for index, raw in enumerate(data.split(b"\n")):
            line = raw.strip()
            if not line:
                continue
            lines += 1
            try:
                if b"\\u0000" in line:
                    raise InvalidPosEvent("JSON strings must not contain \\u0000")
                event = parse_pos_event(line, self.window)
                if event.restaurant_id not in restaurants:
                    raise InvalidPosEvent(
                        f"not a restaurant of this company: {event.restaurant_id!r}"
                    )
            except InvalidPosEvent as exc:
                rejected.append((first + index, str(exc)))
                continue
            if event.event_id in by_id:
                repeats += 1
                continue
            by_id[event.event_id] = (
                company_id,
                event.restaurant_id,
                event.event_id,
                event.type,
                event.occurred_at,
                received_at,
                HEADERS_JSONB,
                line.decode(),
            )
        seen = data.count(b"\n") + (not data.endswith(b"\n"))
        outcome = ChunkOutcome(seen, lines, 0, repeats, rejected, "")
        return list(by_id.values()), outcome

    def land(self, rows: list[Row]) -> tuple[int, str]:
        """Insert the rows whose event id is not stored yet; (how many, which path).

        COPY into raw.order_events is the cheap path (PostgreSQL inserts in batches) but
        has no ON CONFLICT: one stored event id fails the whole COPY. The chunk then goes
        through a temporary table and INSERT ... ON CONFLICT DO NOTHING, which also waits
        for rows other writers (the HTTP ingest, another chunk) are still inserting, and
        so do the next chunks until one of them has no duplicate."""
        if not rows:
            return 0, "empty"
        if self.optimistic:
            if self._copy_direct(rows):
                return len(rows), "copy"
            self.optimistic = False
        inserted = self._insert_on_conflict(rows)
        self.optimistic = inserted == len(rows)
        return inserted, "on conflict"

    def _copy_direct(self, rows: list[Row]) -> bool:
        """COPY the rows in one transaction; False (rolled back) when an event id was
        already there, or when waiting for one lost a deadlock."""
        try:
            with (
                self.conn.transaction(),
                self.conn.cursor() as cur,
                cur.copy(f"copy raw.order_events ({COLUMNS}) from stdin (format binary)") as copy,
            ):
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        except (errors.UniqueViolation, errors.DeadlockDetected):
            return False
        return True

    def _insert_on_conflict(self, rows: list[Row]) -> int:
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                with self.conn.transaction(), self.conn.cursor() as cur:
                    cur.execute(
                        "create temp table if not exists bulk_order_events "
                        "(company_id text, restaurant_id text, event_id text, event_type text, "
                        "occurred_at timestamptz, received_at timestamptz, headers jsonb, "
                        "body text) on commit delete rows"
                    )
                    with cur.copy(
                        f"copy bulk_order_events ({COLUMNS}) from stdin (format binary)"
                    ) as copy:
                        copy.set_types(COPY_TYPES)
                        for row in rows:
                            copy.write_row(row)
                    cur.execute(
                        f"insert into raw.order_events ({COLUMNS}) "
                        f"select {COLUMNS} from bulk_order_events "
                        "on conflict on constraint order_events_dedup do nothing"
                    )
                    return cur.rowcount
            except errors.DeadlockDetected:
                if attempt == DEADLOCK_RETRIES:
                    raise
        raise AssertionError("unreachable")


class _EncodedJsonb(Dumper):
    """Passes an already encoded binary jsonb value through (see HEADERS_JSONB)."""

    format = Format.BINARY
    oid = psycopg.postgres.types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)


# One lander per worker process, made by the pool's initializer.
_lander: ChunkLander | None = None


def _start_worker(
    conninfo: str, company_id: str, restaurants: frozenset[str], received_at: datetime
) -> None:
    global _lander
    # Everything inherited from the parent (a whole CLI's imports) stays alive for the
    # worker's life: out of the collector's way, collections only walk this chunk's objects.
    gc.freeze()
    _lander = ChunkLander(conninfo, company_id, restaurants, received_at)
    Finalize(_lander, _lander.close, exitpriority=10)


def _land_range(path: str, offset: int, size: int, first: int) -> ChunkOutcome:
    assert _lander is not None
    return _lander.land_range(path, offset, size, first)


def _mp_context() -> BaseContext:
    # fork is the cheapest start (workers inherit the imported modules), but forking a
    # process that runs other threads can copy a lock some thread holds.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _record_rejections(
    conninfo: str, company_id: str, path: Path, rejected: list[tuple[int, str]]
) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.executemany(
            "insert into raw.rejected_requests (received_at, source, company_id, path, "
            "status_code, reason, headers, body_excerpt, body_bytes) "
            "values (%s, 'pos', %s, %s, 400, %s, %s::jsonb, '', 0)",
            [
                (
                    now,
                    company_id,
                    f"file:{path.name}:{number}"[:512],
                    f"invalid_event: {msg}"[:1000].replace("\x00", "\ufffd"),
                    FILE_HEADERS,
                )
                for number, msg in rejected
            ],
        )


def count_lines(path: Path) -> int:
    """Lines as iterating the file counts them: a last line without a line end counts."""
    count, last = 0, b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")
