"""The outbox sensor only decides when: canonical events or marts materialized, or the
nudge timer due. What to queue is the outbox asset's work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines.pushes.sensors import (
    NUDGE_EVERY,
    OUTBOX_OP,
    OutboxCursor,
    parse_cursor,
    partner_outbox,
    plan_outbox_run,
)
from pipelines.signals.checks import CANONICAL_EVENTS_KEY

NOW = datetime(2026, 3, 14, 19, 0, tzinfo=UTC)


def recheck(request: dg.RunRequest | None) -> bool:
    assert request is not None
    return bool(request.run_config["ops"][OUTBOX_OP]["config"]["recheck_signals"])


def test_first_tick_asks_for_a_run_and_records_what_it_saw() -> None:
    request, cursor, _ = plan_outbox_run(OutboxCursor(), events_at=100.0, signals_at=90.0, now=NOW)
    assert recheck(request)
    assert cursor == OutboxCursor(events_at=100.0, signals_at=90.0, asked_at=NOW.timestamp())


def test_new_canonical_events_alone_queue_events_without_rechecking_signals() -> None:
    seen = OutboxCursor(events_at=100.0, signals_at=90.0, asked_at=NOW.timestamp())
    request, cursor, reason = plan_outbox_run(
        seen, events_at=130.0, signals_at=90.0, now=NOW + timedelta(seconds=30)
    )
    assert request is not None and not recheck(request)
    assert cursor.events_at == 130.0 and cursor.signals_at == 90.0
    assert reason == "canonical events materialized"


def test_a_mart_materialized_rechecks_the_signals() -> None:
    seen = OutboxCursor(events_at=100.0, signals_at=90.0, asked_at=NOW.timestamp())
    request, cursor, _ = plan_outbox_run(
        seen, events_at=100.0, signals_at=140.0, now=NOW + timedelta(seconds=30)
    )
    assert recheck(request) and cursor.signals_at == 140.0


def test_nothing_new_waits_for_the_nudge_timer() -> None:
    seen = OutboxCursor(events_at=100.0, signals_at=90.0, asked_at=NOW.timestamp())
    request, cursor, _ = plan_outbox_run(
        seen, events_at=100.0, signals_at=90.0, now=NOW + timedelta(minutes=1)
    )
    assert request is None and cursor == seen
    later = NOW + NUDGE_EVERY
    request, cursor, reason = plan_outbox_run(seen, events_at=100.0, signals_at=90.0, now=later)
    # Nudges, and the signals again: a recheck lost with a failed run is made up for.
    assert request is not None and recheck(request)
    assert reason == "timer: unpaid bills, signals" and cursor.asked_at == later.timestamp()


def test_the_old_sensor_cursor_starts_afresh() -> None:
    # The sensor used to keep the events' position itself; it is in the database now.
    old = '{"events": "2026-03-14T19:00:00+00:00|abc", "signals_at": "2026-03-14T19:00:00"}'
    assert parse_cursor(old) == OutboxCursor()
    assert parse_cursor("not json") == OutboxCursor()
    assert parse_cursor(OutboxCursor(1.0, 2.0, 3.0).dumps()) == OutboxCursor(1.0, 2.0, 3.0)


def test_the_sensor_asks_for_a_run_after_canonical_events_are_materialized() -> None:
    with dg.instance_for_test() as instance:
        first = partner_outbox(dg.build_sensor_context(instance=instance))
        assert isinstance(first, dg.SensorResult) and first.run_requests
        cursor = first.cursor
        quiet = partner_outbox(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(quiet, dg.SkipReason)

        instance.report_runless_asset_event(dg.AssetMaterialization(CANONICAL_EVENTS_KEY))
        after = partner_outbox(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(after, dg.SensorResult)
        (request,) = after.run_requests or []
        assert not recheck(request)
        assert request.tags["partner-signals/outbox"] == "canonical events materialized"
