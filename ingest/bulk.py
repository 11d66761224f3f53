"""Bulk backfill of POS events from an NDJSON file, through the same validation as
`POST /events`, landed with binary COPY and the same duplicate rule."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from partner_signals.pos import InvalidPosEvent, parse_pos_event

CHUNK_LINES = 50_000
# One thread parses while WRITERS connections COPY and insert the previous chunks.
WRITERS = 1
FILE_HEADERS = '{"x-ingested-from": "file"}'
Row = tuple[str, str, str, str, datetime, datetime, str, str]


@dataclass
class BulkResult:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def ingest_file(
    path: Path,
    *,
    conninfo: str,
    company_id: str,
    on_progress: Callable[[int], None] | None = None,
) -> BulkResult:
    """Land every valid event of `path` for `company_id`; invalid lines are kept in
    raw.rejected_requests and listed in the result. Parsing runs while the previous
    chunk is being written, so the database and Python work at the same time."""
    result = BulkResult()
    received_at = datetime.now(UTC)
    chunks: queue.Queue[list[Row] | None] = queue.Queue(maxsize=2 * WRITERS)
    failure: list[BaseException] = []
    lock = threading.Lock()

    with psycopg.connect(conninfo) as conn:
        restaurants = {
            r[0]
            for r in conn.execute(
                "select restaurant_id from ops.restaurants where company_id = %s", (company_id,)
            )
        }
    if not restaurants:
        raise ValueError(f"company {company_id!r} has no restaurants")

    def writer() -> None:
        try:
            with psycopg.connect(conninfo) as wconn:
                while (rows := chunks.get()) is not None:
                    new = _land_chunk(wconn, rows)
                    with lock:
                        result.accepted += new
                        result.duplicates += len(rows) - new
                        if on_progress:
                            on_progress(len(rows))
        except BaseException as exc:
            failure.append(exc)
            while chunks.get() is not None:  # unblock the producer
                pass

    threads = [
        threading.Thread(target=writer, name=f"bulk-writer-{i}", daemon=True)
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    try:
        rows: list[Row] = []
        for number, line in _lines(path):
            result.lines += 1
            try:
                if b"\\u0000" in line:
                    raise InvalidPosEvent("JSON strings must not contain \\u0000")
                event = parse_pos_event(line)
                if event.restaurant_id not in restaurants:
                    raise InvalidPosEvent(
                        f"not a restaurant of this company: {event.restaurant_id!r}"
                    )
            except InvalidPosEvent as exc:
                result.rejected.append((number, str(exc)))
                continue
            rows.append(
                (
                    company_id,
                    event.restaurant_id,
                    event.event_id,
                    event.type,
                    event.occurred_at,
                    received_at,
                    FILE_HEADERS,
                    line.decode(),
                )
            )
            if len(rows) >= CHUNK_LINES:
                chunks.put(rows)
                rows = []
            if failure:
                break
        if rows:
            chunks.put(rows)
    finally:
        for _ in threads:
            chunks.put(None)
        for thread in threads:
            thread.join()
    if failure:
        raise failure[0]
    if result.rejected:
        _record_rejections(conninfo, company_id, path, result.rejected)
    return result


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if line:
                yield number, line


def _land_chunk(conn: psycopg.Connection[Any], rows: list[Row]) -> int:
    with conn.transaction():
        conn.execute(
            "create temp table if not exists bulk_order_events "
            "(company_id text, restaurant_id text, event_id text, event_type text, "
            "occurred_at timestamptz, received_at timestamptz, headers text, body text) "
            "on commit delete rows"
        )
        # Binary COPY: values go as they are, no text escaping done in Python.
        with conn.cursor().copy("copy bulk_order_events from stdin (format binary)") as copy:
            copy.set_types(
                ["text", "text", "text", "text", "timestamptz", "timestamptz", "text", "text"]
            )
            for row in rows:
                copy.write_row(row)
        cur = conn.execute(
            "insert into raw.order_events (company_id, restaurant_id, event_id, event_type, "
            "occurred_at, received_at, headers, body) "
            "select company_id, restaurant_id, event_id, event_type, occurred_at, received_at, "
            "headers::jsonb, body from bulk_order_events "
            "on conflict on constraint order_events_dedup do nothing"
        )
        return cur.rowcount


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
    with path.open("rb") as fh:
        return sum(1 for _ in fh)
