"""The raw-events sensor requests a run only when something new landed, for what it affects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import psycopg
import pytest

from pipelines.resources import DatabaseResource
from pipelines.signals.raw import RawHighWater
from pipelines.signals.sensors import raw_events_sensor
from tests.pipelines.service_day import careem, drop_database, land, new_database, pos, stripe


@pytest.fixture(scope="module")
def sensor_url(server_url: str) -> Iterator[str]:
    url = new_database(server_url, "ps_sensor")
    try:
        yield url
    finally:
        drop_database(server_url, url)


def evaluate(url: str, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"database": DatabaseResource(database_url=url)},
        )
        result = raw_events_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def selected(result: dg.SensorResult | dg.SkipReason) -> set[str]:
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    return {key.to_user_string() for key in request.asset_selection or []}


def test_nothing_landed_means_no_run(sensor_url: str) -> None:
    result = evaluate(sensor_url, None)
    assert isinstance(result, dg.SkipReason)


def test_new_events_request_the_models_they_affect_once(sensor_url: str, ids: str) -> None:
    with psycopg.connect(sensor_url) as conn:
        land(conn, f"co-{ids}", [pos(f"r-{ids}", 1, "table.seated", "08:00", table_id="T1")])
    first = evaluate(sensor_url, None)
    keys = selected(first)
    assert {
        "canonical/canonical_events",
        "intermediate/int_visits",
        "marts/fct_order_pacing",
    } <= keys
    # Views compute at read time: nothing to refresh in a run.
    assert "staging/stg_pos__order_events" not in keys
    assert "marts/fct_table_occupancy" not in keys
    assert "canonical/live_events" not in keys
    assert isinstance(first, dg.SensorResult) and first.cursor
    # Only the models run; the dbt tests are left to the nightly rebuild and `materialize`.
    (request,) = first.run_requests or []
    assert request.asset_check_keys == []

    # Nothing new since: no run.
    assert isinstance(evaluate(sensor_url, first.cursor), dg.SkipReason)

    # A Stripe webhook lands: Stripe's staging model and everything downstream of it.
    with psycopg.connect(sensor_url) as conn:
        land(
            conn,
            f"co-{ids}",
            [stripe(f"evt-{ids}", "payment_intent.succeeded", "09:00", f"r-{ids}", "O1", "pi", 1)],
        )
    second = evaluate(sensor_url, first.cursor)
    keys = selected(second)
    assert {"canonical/canonical_events", "intermediate/int_bills"} <= keys
    assert isinstance(second, dg.SensorResult)
    (request,) = second.run_requests or []
    assert request.run_key == second.cursor
    assert RawHighWater.from_cursor(second.cursor).is_ahead_of(
        RawHighWater.from_cursor(first.cursor)
    )


def test_rows_from_a_source_no_model_reads_only_move_the_cursor(sensor_url: str, ids: str) -> None:
    with psycopg.connect(sensor_url) as conn:
        before = RawHighWater.from_cursor(None)
        land(conn, f"co-{ids}", [careem(f"c-{ids}", "order.created", "08:00", "s", "o", "1")])
        conn.execute(
            """
            insert into raw.webhook_events (source, company_id, event_id, event_type,
                received_at, headers, body)
            values ('acme', %s, 'e1', 'ping', %s, '{}', '{}')
            """,
            (f"co-{ids}", datetime.now(UTC)),
        )
        row = conn.execute("select max(id) from raw.webhook_events").fetchone()
    assert row is not None
    # From just before the 'acme' row: only it is new.
    cursor = RawHighWater(order_events=10**9, webhook_events=int(row[0]) - 1).to_cursor()
    result = evaluate(sensor_url, cursor)
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests
    assert RawHighWater.from_cursor(result.cursor).webhook_events == row[0]
    assert before == RawHighWater()


def test_cursor_round_trip_and_garbage() -> None:
    mark = RawHighWater(order_events=12, webhook_events=7)
    assert RawHighWater.from_cursor(mark.to_cursor()) == mark
    assert RawHighWater.from_cursor("not json") == RawHighWater()
    assert RawHighWater.from_cursor(None) == RawHighWater()
    assert RawHighWater.from_metadata(mark.as_metadata()) == mark
    assert RawHighWater.from_metadata({}) is None
