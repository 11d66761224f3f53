"""Arrival order does not matter: shuffled, late and re-delivered events across several
incremental runs give the same marts as the day landed in order and built once."""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg
import pytest

from tests.pipelines.conftest import BuiltDay, run_dbt, snapshot
from tests.pipelines.service_day import drop_database, land, new_database, register


@pytest.mark.parametrize(
    "later_runs",
    [
        pytest.param(["run"], id="whole-project"),
        # The order models without int_scope_orders (a stale one, from the first run):
        # they find their orders themselves.
        pytest.param(["run", "--exclude", "int_scope_orders"], id="order-scope-not-staged"),
    ],
)
def test_shuffled_late_and_duplicated_events_give_the_in_order_marts(
    built_day: BuiltDay,
    server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    later_runs: list[str],
) -> None:
    shuffled_url = new_database(server_url, "ps_shuffled")
    try:
        check_shuffled_arrival(built_day, shuffled_url, tmp_path_factory, later_runs)
    finally:
        drop_database(server_url, shuffled_url)


def check_shuffled_arrival(
    built_day: BuiltDay,
    shuffled_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    later_runs: list[str],
) -> None:
    day = built_day.day
    rng = random.Random(20260314)
    events = list(day.events)
    rng.shuffle(events)
    # Three deliveries with a run after each. The last batch comes an hour late and holds
    # the earliest events of the day (seatings, first orders); every batch re-sends a few
    # events from before, which landing refuses as duplicates.
    by_time = sorted(events, key=lambda e: e.occurred_at)
    late = set(id(e) for e in by_time[:8])
    on_time = [e for e in events if id(e) not in late]
    batches = [on_time[: len(on_time) // 2], on_time[len(on_time) // 2 :], by_time[:8]]
    artifacts = tmp_path_factory.mktemp("dbt-shuffled")
    with psycopg.connect(shuffled_url) as conn:
        register(conn, day.company_id, day.restaurant_id)
    landed = 0
    for number, batch in enumerate(batches):
        resend = rng.sample(events, 5) if number else []
        arriving = [e.received(e.occurred_at + timedelta(hours=number)) for e in batch + resend]
        with psycopg.connect(shuffled_url) as conn:
            landed += land(conn, day.company_id, arriving)
        run_dbt(shuffled_url, later_runs if number else ["run"], artifacts)
    assert landed == len(day.events)

    expected = snapshot(built_day.url, day.company_id)
    got = snapshot(shuffled_url, day.company_id)
    assert {name: len(table) for name, table in got.items()} == {
        name: len(table) for name, table in expected.items()
    }
    for name in expected:
        assert got[name] == expected[name], name
