"""Bulk backfill of POS events from an NDJSON file, through the same validation as
`POST /events`, landed with COPY and the same duplicate rule."""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from partner_signals.pos import InvalidPosEvent, parse_pos_event

CHUNK_LINES = 50_000
FILE_HEADERS = '{"x-ingested-from": "file"}'


@dataclass
class BulkResult:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _copy_escape(value: str) -> str:
    # COPY text format: backslash, tab, newline and carriage return must be escaped.
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


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
    received_at = datetime.now(UTC).isoformat()
    chunks: queue.Queue[tuple[bytes, int] | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

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
                while (item := chunks.get()) is not None:
                    data, count = item
                    new = _land_chunk(wconn, data)
                    result.accepted += new
                    result.duplicates += count - new
                    if on_progress:
                        on_progress(count)
        except BaseException as exc:
            failure.append(exc)
            while chunks.get() is not None:  # unblock the producer
                pass

    thread = threading.Thread(target=writer, name="bulk-writer", daemon=True)
    thread.start()
    try:
        buf = io.StringIO()
        count = 0
        for number, line in _lines(path):
            result.lines += 1
            try:
                event = parse_pos_event(line)
                if event.restaurant_id not in restaurants:
                    raise InvalidPosEvent(
                        f"not a restaurant of this company: {event.restaurant_id!r}"
                    )
                if b"\\u0000" in line:
                    raise InvalidPosEvent("JSON strings must not contain \\u0000")
            except InvalidPosEvent as exc:
                result.rejected.append((number, str(exc)))
                continue
            buf.write(
                f"{company_id}\t{_copy_escape(event.restaurant_id)}\t{_copy_escape(event.event_id)}\t"
                f"{_copy_escape(event.type)}\t{event.occurred_at.isoformat()}\t{received_at}\t"
                f"{FILE_HEADERS}\t{_copy_escape(line.decode())}\n"
            )
            count += 1
            if count >= CHUNK_LINES:
                chunks.put((buf.getvalue().encode(), count))
                buf = io.StringIO()
                count = 0
            if failure:
                break
        if count:
            chunks.put((buf.getvalue().encode(), count))
    finally:
        chunks.put(None)
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


def _land_chunk(conn: psycopg.Connection, data: bytes) -> int:
    with conn.transaction():
        conn.execute(
            "create temp table if not exists bulk_order_events "
            "(company_id text, restaurant_id text, event_id text, event_type text, "
            "occurred_at timestamptz, received_at timestamptz, headers jsonb, body text) "
            "on commit delete rows"
        )
        with conn.cursor().copy(
            "copy bulk_order_events (company_id, restaurant_id, event_id, event_type, "
            "occurred_at, received_at, headers, body) from stdin"
        ) as copy:
            copy.write(data)
        cur = conn.execute(
            "insert into raw.order_events (company_id, restaurant_id, event_id, event_type, "
            "occurred_at, received_at, headers, body) "
            "select company_id, restaurant_id, event_id, event_type, occurred_at, received_at, "
            "headers, body from bulk_order_events "
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
                    f"invalid_event: {msg}"[:1000],
                    FILE_HEADERS,
                )
                for number, msg in rejected
            ],
        )


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)
