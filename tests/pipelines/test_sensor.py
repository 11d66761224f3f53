"""The raw-events sensor's decisions: what a window of new raw rows selects, what is not
built yet, when a failed run is tried again. (test_sensor_runs.py runs it end to end.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
import pytest

from pipelines.instance import RUN_MAX_RUNTIME_TAG
from pipelines.signals.health import SignalsRunHealth
from pipelines.signals.raw import RawHighWater, read_high_water, sources_landed_between
from pipelines.signals.sensors import (
    RETRY_MAX_WAIT,
    Window,
    backing_off,
    ignored_cursor,
    ignored_from_cursor,
    load_manifest,
    missing_models,
    model_relations,
    plan_run,
    retry_wait,
    start_of_window,
)
from pipelines.signals.translator import SignalsTranslator
from tests.pipelines.service_day import careem, drop_database, land, new_database, pos

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sensor_url(server_url: str) -> Iterator[str]:
    url = new_database(server_url, "ps_sensor")
    try:
        yield url
    finally:
        drop_database(server_url, url)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_manifest()


def request_of(result: dg.SensorResult | dg.SkipReason) -> dg.RunRequest:
    assert isinstance(result, dg.SensorResult), result
    (request,) = result.run_requests or []
    return request


def selected(request: dg.RunRequest) -> set[str]:
    return {key.to_user_string() for key in request.asset_selection or []}


def checked_assets(request: dg.RunRequest) -> set[str]:
    return {key.asset_key.to_user_string() for key in request.asset_check_keys or []}


def test_new_events_select_the_stored_models_they_affect_with_their_checks(
    sensor_url: str, ids: str, manifest: dict[str, Any]
) -> None:
    with psycopg.connect(sensor_url) as conn:
        before = read_high_water(conn)
        land(conn, f"co-{ids}", [pos(f"r-{ids}", 1, "table.seated", "08:00", table_id="T1")])
        window = Window(start=before, end=read_high_water(conn))
        sources = sources_landed_between(conn, window.start, window.end)
    assert sources == {"pos"}
    request = request_of(plan_run(window, sources, set(), manifest, SignalsTranslator()))
    keys = selected(request)
    assert {
        "canonical/canonical_events",
        "intermediate/int_visits",
        "marts/fct_order_pacing",
    } <= keys
    # Views compute at read time: nothing to refresh in a run.
    assert "staging/stg_pos__order_events" not in keys
    assert "marts/fct_table_occupancy" not in keys
    assert "canonical/live_events" not in keys
    # The checks of what it builds: its dbt tests, scoped to the rows the run writes,
    # and the freshness check on canonical_events.
    assert checked_assets(request) == keys
    check_names = {key.name for key in request.asset_check_keys or []}
    assert "raw_events_processed" in check_names
    assert request.run_config["ops"]["signals_dbt"]["config"]["latest_batch_checks"] is True
    assert request.run_key == window.key()


def test_a_stripe_webhook_selects_the_bills(manifest: dict[str, Any]) -> None:
    window = Window(RawHighWater(5, 5), RawHighWater(5, 6))
    request = request_of(plan_run(window, {"stripe"}, set(), manifest, SignalsTranslator()))
    assert {"canonical/canonical_events", "intermediate/int_bills"} <= selected(request)
    # Run monitoring fails an incremental run still going after 15 minutes (its process
    # is gone); a run building missing models keeps the instance's limit.
    assert request.tags[RUN_MAX_RUNTIME_TAG] == "900"


def test_nothing_new_and_everything_built_means_no_run(manifest: dict[str, Any]) -> None:
    window = Window(RawHighWater(5, 5), RawHighWater(5, 5))
    result = plan_run(window, set(), set(), manifest, SignalsTranslator())
    assert isinstance(result, dg.SkipReason)


def test_models_not_built_are_built_even_without_events(manifest: dict[str, Any]) -> None:
    stg = "model.partner_signals.stg_pos__order_events"
    window = Window(RawHighWater(), RawHighWater())
    request = request_of(plan_run(window, set(), {stg}, manifest, SignalsTranslator()))
    assert selected(request) == {"staging/stg_pos__order_events"}
    # A run building what is missing tests it whole.
    assert request.run_config["ops"]["signals_dbt"]["config"]["latest_batch_checks"] is False
    assert "not built" in (request.run_key or "")
    assert RUN_MAX_RUNTIME_TAG not in request.tags


def test_a_fresh_database_misses_every_model(sensor_url: str, manifest: dict[str, Any]) -> None:
    with psycopg.connect(sensor_url) as conn:
        assert missing_models(conn, manifest) == set(model_relations(manifest))
        conn.execute("create schema if not exists staging")
        conn.execute("create view staging.stg_pos__order_events as select 1 as one")
        missing = missing_models(conn, manifest)
        conn.rollback()
    assert "model.partner_signals.stg_pos__order_events" not in missing
    assert "model.partner_signals.canonical_events" in missing


def test_rows_from_a_source_no_model_reads_only_move_the_cursor(
    sensor_url: str, ids: str, manifest: dict[str, Any]
) -> None:
    with psycopg.connect(sensor_url) as conn:
        land(conn, f"co-{ids}", [careem(f"c-{ids}", "order.created", "08:00", "s", "o", "1")])
        before = read_high_water(conn)
        conn.execute(
            """
            insert into raw.webhook_events (source, company_id, event_id, event_type,
                received_at, headers, body)
            values ('acme', %s, 'e1', 'ping', %s, '{}', '{}')
            """,
            (f"co-{ids}", datetime.now(UTC)),
        )
        window = Window(start=before, end=read_high_water(conn))
        sources = sources_landed_between(conn, window.start, window.end)
    assert sources == {"acme"}
    result = plan_run(window, sources, set(), manifest, SignalsTranslator())
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests
    assert ignored_from_cursor(result.cursor) == window.end
    # Next time the window starts there, whatever the last successful run had seen.
    assert start_of_window(before, ignored_from_cursor(result.cursor)) == window.end


def test_the_window_starts_at_the_last_successful_run() -> None:
    processed = RawHighWater(order_events=40, webhook_events=7)
    assert start_of_window(processed, RawHighWater()) == processed
    assert start_of_window(None, RawHighWater()) == RawHighWater()
    # Rows no model reads, recorded past the processed mark in one table only.
    assert start_of_window(processed, RawHighWater(10, 9)) == RawHighWater(40, 9)


def test_a_retry_gets_a_new_run_key(manifest: dict[str, Any]) -> None:
    window = Window(RawHighWater(5, 5), RawHighWater(6, 5))
    first = request_of(plan_run(window, {"pos"}, set(), manifest, SignalsTranslator()))
    again = request_of(
        plan_run(window, {"pos"}, set(), manifest, SignalsTranslator(), failed_in_a_row=1)
    )
    assert first.run_key != again.run_key
    assert selected(first) == selected(again)


def health(failed: int, last_failure_at: datetime | None) -> SignalsRunHealth:
    return SignalsRunHealth(
        last_success_at=None,
        failed_in_a_row=failed,
        last_failure_at=last_failure_at,
        last_failure_message="relation does not exist",
        processed_high_water=None,
    )


def test_failures_back_off_from_the_second_and_up_to_ten_minutes() -> None:
    assert retry_wait(0) == timedelta(0)
    assert retry_wait(1) == timedelta(0)
    waits = [retry_wait(n) for n in range(2, 12)]
    assert waits == sorted(waits) and waits[0] > timedelta(0)
    assert waits[-1] == RETRY_MAX_WAIT

    assert backing_off(health(0, None), NOW) is None
    assert backing_off(health(1, NOW), NOW) is None
    waiting = backing_off(health(3, NOW - timedelta(seconds=10)), NOW)
    assert isinstance(waiting, dg.SkipReason)
    assert "3 signals runs failed in a row" in (waiting.skip_message or "")
    assert backing_off(health(3, NOW - RETRY_MAX_WAIT), NOW) is None


def test_cursors_round_trip_and_garbage_reads_as_nothing() -> None:
    mark = RawHighWater(order_events=12, webhook_events=7)
    assert RawHighWater.from_cursor(mark.to_cursor()) == mark
    assert RawHighWater.from_cursor("not json") == RawHighWater()
    assert RawHighWater.from_cursor(None) == RawHighWater()
    assert RawHighWater.from_metadata(mark.as_metadata()) == mark
    assert RawHighWater.from_metadata({}) is None
    assert ignored_from_cursor(ignored_cursor(mark)) == mark
    # The sensor's cursor before this version (its last request) is not taken as done.
    assert ignored_from_cursor(mark.to_cursor()) == RawHighWater()
    assert ignored_from_cursor("[1, 2]") == RawHighWater()
    assert ignored_from_cursor(None) == RawHighWater()
