"""The outbox sensor: new canonical events, unpaid-bill nudges and changed signals, queued
for partners. Delivery itself runs in the `deliveries run --forever` daemon."""

from datetime import UTC, datetime

import dagster as dg
import orjson

from partner_signals.db import get_engine
from partner_signals.pushes.outbox import (
    enqueue_new_canonical_events,
    enqueue_unpaid_bill_nudges,
)
from partner_signals.settings import Settings, get_settings
from pipelines.pushes.signals import enqueue_signal_changes
from pipelines.resources import DatabaseResource


def parse_cursor(raw: str | None) -> dict[str, str | None]:
    if not raw:
        return {"events": None, "signals_at": None}
    value: dict[str, str | None] = orjson.loads(raw)
    return value


def signals_changed_since(
    context: dg.SensorEvaluationContext, since: str | None
) -> tuple[bool, str | None]:
    """Whether a mart was materialized after `since` (an ISO time); and the newest time."""
    newest = since
    changed = False
    for key in ("fct_order_velocity", "fct_item_prep_times", "fct_order_pacing"):
        event = context.instance.get_latest_materialization_event(dg.AssetKey(["marts", key]))
        if event is None:
            continue
        at = datetime.fromtimestamp(event.timestamp, UTC).isoformat()
        if since is None or at > since:
            changed = True
        if newest is None or at > newest:
            newest = at
    return changed, newest


@dg.sensor(
    name="partner_outbox",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Moves new canonical events and changed signal values into ops.outbox for every "
        "enabled partner adapter, and queues nudges for bills left unpaid. The delivery "
        "daemon (`partner-signals deliveries run --forever`, started by serve) sends them."
    ),
)
def partner_outbox(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SkipReason:
    cursor = parse_cursor(context.cursor)
    engine = get_engine(Settings(database_url=database.url(), data_dir=get_settings().data_dir))
    cursor["events"] = enqueue_new_canonical_events(engine, cursor["events"])
    with engine.begin() as conn:
        nudges = enqueue_unpaid_bill_nudges(conn, now=datetime.now(UTC))
    changed, newest = signals_changed_since(context, cursor["signals_at"])
    signals = 0
    if changed:
        with engine.begin() as conn:
            signals = enqueue_signal_changes(conn)
        cursor["signals_at"] = newest
    context.update_cursor(orjson.dumps(cursor).decode())
    return dg.SkipReason(
        f"outbox: events up to {cursor['events'] or 'none yet'}, {nudges} nudges, "
        f"{signals} signal values queued"
    )
