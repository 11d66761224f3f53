"""The outbox sensor: new canonical events, unpaid-bill nudges and changed signals, queued
for partners. Delivery itself runs in the `deliveries run --forever` daemon."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import orjson

from partner_signals.catalogue import signals as catalogue
from partner_signals.db import get_engine
from partner_signals.pushes.outbox import (
    enqueue_new_canonical_events,
    enqueue_unpaid_bill_nudges,
)
from partner_signals.settings import Settings, get_settings
from pipelines.pushes.signals import enqueue_signal_changes
from pipelines.resources import DatabaseResource
from pipelines.signals.sensors import DBT_PACKAGE, load_manifest, stores_data
from pipelines.signals.translator import SignalsTranslator


def parse_cursor(raw: str | None) -> dict[str, str | None]:
    if not raw:
        return {"events": None, "signals_at": None}
    value: dict[str, str | None] = orjson.loads(raw)
    return value


def watched_asset_keys(manifest: Mapping[str, Any]) -> list[dg.AssetKey]:
    """The stored assets whose materialization can change a watched signal (the signal
    catalogue): each watched mart that is a table, and for a mart that is a view (it
    computes when read, so it is never materialized by a run) the nearest stored models
    it reads."""
    translator = SignalsTranslator()
    nodes: Mapping[str, Any] = manifest["nodes"]
    parents: Mapping[str, list[str]] = manifest["parent_map"]
    keys: set[dg.AssetKey] = set()
    todo = [f"model.{DBT_PACKAGE}.{s.model}" for s in catalogue.watched()]
    seen: set[str] = set()
    while todo:
        unique_id = todo.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        if stores_data(nodes[unique_id]):
            keys.add(translator.get_asset_key(nodes[unique_id]))
        else:
            todo.extend(parents.get(unique_id, []))
    return sorted(keys, key=lambda key: key.to_user_string())


def signals_changed_since(
    context: dg.SensorEvaluationContext, since: str | None, keys: list[dg.AssetKey]
) -> tuple[bool, str | None]:
    """Whether one of `keys` was materialized after `since` (an ISO time); and the
    newest time."""
    newest = since
    changed = False
    for key in keys:
        event = context.instance.get_latest_materialization_event(key)
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
    keys = watched_asset_keys(load_manifest())
    changed, newest = signals_changed_since(context, cursor["signals_at"], keys)
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
