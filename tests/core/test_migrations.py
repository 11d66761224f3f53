"""Database objects the migrations create, checked against a real server."""

from __future__ import annotations

import psycopg
import pytest


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2026-02-28T19:30:00+04:00", "2026-02-28 15:30:00+00"), ("2026-02-30T19:30:00Z", None)],
)
def test_try_timestamptz_survives_a_forced_parallel_plan(
    database_url: str, value: str, expected: str | None
) -> None:
    """The planner may run any parallel-safe expression in a parallel worker; one with
    an exception block then fails the whole query. Force parallel mode, as a big table
    would, and the function must still answer."""
    with psycopg.connect(database_url) as conn:
        conn.execute("set timezone = 'UTC'")
        version = conn.info.server_version
        conn.execute(
            "set debug_parallel_query = on" if version >= 160000 else "set force_parallel_mode = on"
        )
        conn.execute("set parallel_setup_cost = 0")
        conn.execute("set parallel_tuple_cost = 0")
        row = conn.execute(
            "select ops.try_timestamptz(v)::text from (values (%s)) as t(v)", (value,)
        ).fetchone()
    assert row is not None
    assert row[0] == expected
