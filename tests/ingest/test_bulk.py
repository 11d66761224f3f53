"""Bulk backfill (`ingest_file`): the same validation and duplicate rule as POST /events,
every line accounted for, and the duplicate rule holding against concurrent writers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa

from ingest.bulk import BulkResult, chunk_ranges, count_lines, ingest_file
from partner_signals.pos import InvalidPosEvent, parse_pos_event
from partner_signals.registry import add_restaurant

# Small chunks, so a few hundred lines make several chunks and both workers get some.
SMALL_CHUNKS = 4096


@pytest.fixture
def company(engine: sa.Engine, ids: str) -> tuple[str, str]:
    company_id, restaurant_id = f"bulk-co-{ids}", f"bulk-r-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company_id, restaurant_id=restaurant_id, timezone="UTC")
    return company_id, restaurant_id


def event(restaurant_id: str, event_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "event_id": event_id,
        "type": "order.item_fired",
        "occurred_at": "2026-11-23T19:04:05+04:00",
        "restaurant_id": restaurant_id,
        "order_id": "o-1",
        "table_id": "t-4",
        "data": {"line_id": "l-1", "item_id": "burger", "quantity": 1, "note": "tab\there"},
    }
    body.update(overrides)
    return body


def write(path: Path, lines: list[bytes], *, end: bytes = b"\n") -> Path:
    path.write_bytes(b"\n".join(lines) + end)
    return path


def stored(engine: sa.Engine, company_id: str) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select event_id, body from raw.order_events where company_id = :c"),
            {"c": company_id},
        ).all()
    assert len(rows) == len({r[0] for r in rows}), "an event id stored twice"
    return {r[0]: r[1] for r in rows}


def rejected_paths(engine: sa.Engine, company_id: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.text(
                    "select path from raw.rejected_requests where company_id = :c and source = 'pos'"
                ),
                {"c": company_id},
            ).scalars()
        )


def run(path: Path, url: str, company_id: str, **kwargs: Any) -> tuple[BulkResult, int]:
    progress: list[int] = []
    result = ingest_file(
        path, conninfo=url, company_id=company_id, on_progress=progress.append, **kwargs
    )
    assert result.lines == result.accepted + result.duplicates + len(result.rejected)
    return result, sum(progress)


@pytest.mark.parametrize("workers", [0, 2])
def test_every_line_is_accounted_for(
    workers: int, database_url: str, engine: sa.Engine, company: tuple[str, str], tmp_path: Path
) -> None:
    company_id, restaurant = company
    events = [event(restaurant, f"e{i}") for i in range(300)]
    lines = [orjson.dumps(e) for e in events]
    lines[7] = b'{"event_id": "broken"'
    lines[150] = orjson.dumps(event("someone-elses", "e150"))
    lines[200] = b"   "  # blank: not a line to account for, but counted by the progress bar
    lines.append(lines[3])  # duplicate of an earlier chunk
    lines.append(lines[299])  # duplicate within the last chunk
    lines.append(lines[5] + b"\r")  # a CRLF line end; a duplicate
    path = write(tmp_path / "events.ndjson", lines, end=b"")  # no line end after the last
    result, progressed = run(
        path, database_url, company_id, workers=workers, chunk_bytes=SMALL_CHUNKS
    )
    assert progressed == count_lines(path) == len(lines)
    assert result.lines == len(lines) - 1
    with pytest.raises(InvalidPosEvent) as broken:
        parse_pos_event(lines[7])
    assert result.rejected == [
        (8, str(broken.value)),
        (151, "not a restaurant of this company: 'someone-elses'"),
    ]
    assert (result.accepted, result.duplicates) == (297, 3)
    assert sum(result.paths.values()) > 2  # several chunks
    landed = stored(engine, company_id)
    assert set(landed) == {f"e{i}" for i in range(300)} - {"e7", "e150", "e200"}
    assert orjson.loads(landed["e9"]) == events[9]  # verbatim, escapes survive COPY
    assert rejected_paths(engine, company_id) == ["file:events.ndjson:151", "file:events.ndjson:8"]

    again, _ = run(path, database_url, company_id, workers=workers, chunk_bytes=SMALL_CHUNKS)
    assert (again.accepted, again.duplicates, len(again.rejected)) == (0, 300, 2)
    assert stored(engine, company_id) == landed
    # Each worker's first COPY failed; after that its chunks went through ON CONFLICT.
    assert again.paths.get("copy", 0) == 0


def test_rejections_match_post_events(
    database_url: str, company: tuple[str, str], tmp_path: Path
) -> None:
    company_id, restaurant = company
    bad = [
        b"[1, 2]",
        b"not json",
        orjson.dumps(event(restaurant, "x1", occurred_at="2026-11-23T19:04:05")),
        orjson.dumps(event(restaurant, "x2", order_id=None)),
        orjson.dumps(event(restaurant, "x3", data={"covers": 1e400})),
        b'{"event_id": "x4", "n": 1e400}',
        orjson.dumps(event(restaurant, "")),
    ]
    path = write(
        tmp_path / "bad.ndjson", [*bad, orjson.dumps(event(restaurant, "x5", note="\x00"))]
    )
    result, _ = run(path, database_url, company_id, workers=0)
    expected = []
    for number, line in enumerate(bad, 1):
        with pytest.raises(InvalidPosEvent) as exc:
            parse_pos_event(line)
        expected.append((number, str(exc.value)))
    expected.append((len(bad) + 1, "JSON strings must not contain \\u0000"))
    assert result.rejected == expected
    assert result.accepted == 0


def test_events_already_stored_are_duplicates(
    database_url: str, engine: sa.Engine, company: tuple[str, str], tmp_path: Path
) -> None:
    company_id, restaurant = company
    # Some events came in through POST /events before the backfill, with other bodies.
    with psycopg.connect(database_url) as conn:
        insert_like_http(conn, company_id, restaurant, ["e40", "e41", "e250"])
    lines = [orjson.dumps(event(restaurant, f"e{i}")) for i in range(300)]
    path = write(tmp_path / "events.ndjson", lines)
    result, _ = run(path, database_url, company_id, workers=0, chunk_bytes=SMALL_CHUNKS)
    assert (result.accepted, result.duplicates) == (297, 3)
    landed = stored(engine, company_id)
    assert len(landed) == 300
    assert orjson.loads(landed["e41"])["type"] == "table.seated"  # the first one stays
    # The chunk holding e40 failed its COPY and went through ON CONFLICT, and so did the
    # next, which had no duplicate: the chunks after it were COPYed straight away again.
    assert result.paths["on conflict"] >= 2
    assert result.paths["copy"] >= 2


def test_the_same_events_in_chunks_landed_at_the_same_time(
    database_url: str, engine: sa.Engine, company: tuple[str, str], tmp_path: Path
) -> None:
    """Neighbouring chunks hold the same event ids in opposite orders, so the two workers
    wait for each other's rows (and may deadlock): each event is still stored once."""
    company_id, restaurant = company
    lines: list[bytes] = []
    for block in range(3):
        ids = [f"b{block}-{i}" for i in range(16)]
        lines += [orjson.dumps(event(restaurant, i)) for i in ids]
        lines += [orjson.dumps(event(restaurant, i, type="order.item_ready")) for i in ids[::-1]]
    path = write(tmp_path / "events.ndjson", lines)
    result, _ = run(path, database_url, company_id, workers=2, chunk_bytes=SMALL_CHUNKS)
    assert (result.accepted, result.duplicates) == (48, 48)
    assert len(stored(engine, company_id)) == 48


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_an_event_being_inserted_concurrently(
    outcome: str,
    database_url: str,
    engine: sa.Engine,
    company: tuple[str, str],
    tmp_path: Path,
) -> None:
    """An HTTP ingest transaction holds e5 uncommitted: the backfill waits for it, then
    counts e5 a duplicate if it committed, or lands it if it rolled back."""
    company_id, restaurant = company
    lines = [orjson.dumps(event(restaurant, f"e{i}")) for i in range(20)]
    path = write(tmp_path / "events.ndjson", lines)
    with psycopg.connect(database_url) as http:
        insert_like_http(http, company_id, restaurant, ["e5"])  # not committed yet
        with background(run, path, database_url, company_id, workers=2) as done:
            wait_for_lock_waiters(database_url, 1)
            assert not done.is_set()  # the backfill waits for the HTTP transaction
            if outcome == "commit":
                http.commit()
            else:
                http.rollback()
    result, _ = done.value
    landed = stored(engine, company_id)
    assert len(landed) == 20
    if outcome == "commit":
        assert (result.accepted, result.duplicates) == (19, 1)
        assert orjson.loads(landed["e5"])["type"] == "table.seated"
    else:
        assert (result.accepted, result.duplicates) == (20, 0)
        assert orjson.loads(landed["e5"])["type"] == "order.item_fired"


def test_a_deadlock_with_another_writer_is_retried(
    database_url: str, engine: sa.Engine, company: tuple[str, str], tmp_path: Path
) -> None:
    """The backfill inserts e1 then waits for e2, held by another transaction, which then
    waits for e1: PostgreSQL aborts one of them, and the backfill's chunk lands anyway."""
    company_id, restaurant = company
    lines = [orjson.dumps(event(restaurant, f"e{i}")) for i in (1, 2, 3)]
    path = write(tmp_path / "events.ndjson", lines)
    with psycopg.connect(database_url) as other:
        insert_like_http(other, company_id, restaurant, ["e2"])
        with background(run, path, database_url, company_id, workers=0) as done:
            wait_for_lock_waiters(database_url, 1)
            try:
                insert_like_http(other, company_id, restaurant, ["e1"])  # closes the cycle
                other.commit()
                other_won = True
            except psycopg.errors.DeadlockDetected:
                other.rollback()
                other_won = False
    result, _ = done.value
    landed = stored(engine, company_id)
    assert set(landed) == {"e1", "e2", "e3"}
    if other_won:  # the backfill was the one aborted, and landed what was left
        assert (result.accepted, result.duplicates) == (1, 2)
    else:
        assert (result.accepted, result.duplicates) == (3, 0)


def test_chunks_end_at_line_ends(tmp_path: Path) -> None:
    long_line = b"x" * 10_000
    path = write(tmp_path / "f.ndjson", [b"a" * 10, long_line, b"b", b"", b"c" * 5], end=b"")
    data = path.read_bytes()
    pieces = [(data[o : o + s], first) for o, s, first in chunk_ranges(path, chunk_bytes=8)]
    assert pieces == [(b"a" * 10 + b"\n", 1), (long_line + b"\n", 2), (b"b\n\nccccc", 3)]
    assert count_lines(path) == 5
    assert count_lines(write(tmp_path / "g.ndjson", [b"a", b"b"])) == 2


# ---------------------------------------------------------------- helpers


def insert_like_http(
    conn: psycopg.Connection[Any], company_id: str, restaurant_id: str, event_ids: list[str]
) -> None:
    """What the HTTP writer does for a batch: insert, ON CONFLICT DO NOTHING."""
    for event_id in event_ids:
        body = orjson.dumps(event(restaurant_id, event_id, type="table.seated")).decode()
        conn.execute(
            "insert into raw.order_events (company_id, restaurant_id, event_id, event_type, "
            "occurred_at, received_at, headers, body) values (%s, %s, %s, 'table.seated', "
            "now(), now(), '{}', %s) on conflict on constraint order_events_dedup do nothing",
            (company_id, restaurant_id, event_id, body),
        )


class Done(threading.Event):
    value: Any = None
    error: BaseException | None = None


class background:
    """Run fn in a thread; on exit wait for it and re-raise what it raised."""

    def __init__(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.done = Done()

        def target() -> None:
            try:
                self.done.value = fn(*args, **kwargs)
            except BaseException as exc:
                self.done.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=target, daemon=True)

    def __enter__(self) -> Done:
        self.thread.start()
        return self.done

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=60)
        assert self.done.is_set(), "the backfill did not finish"
        if self.done.error is not None:
            raise self.done.error


def wait_for_lock_waiters(url: str, count: int, timeout: float = 30.0) -> None:
    """Until `count` backends of this database wait for a row lock (a unique key held by
    an uncommitted insert)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "select count(*) from pg_stat_activity "
                "where datname = current_database() and wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0] >= count:
                return
            time.sleep(0.02)
    raise AssertionError("nothing waited for the lock")
