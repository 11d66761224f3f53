"""The outbox sensor: asks for a materialization of the outbox asset when canonical events
or a watched signal's marts were materialized, and on a timer for unpaid-bill nudges. The
asset does the queueing; delivery runs in the `deliveries run --forever` daemon."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import orjson

from partner_signals.catalogue import signals as catalogue
from pipelines.pushes.assets import OUTBOX_JOB_NAME, outbox, outbox_job
from pipelines.runs import job_run_active
from pipelines.signals.checks import CANONICAL_EVENTS_KEY
from pipelines.signals.sensors import DBT_PACKAGE, load_manifest, stores_data
from pipelines.signals.translator import SignalsTranslator

# The outbox asset's op, as run config names it (from its key: ops__outbox).
OUTBOX_OP = outbox.op.name
# Bills left unpaid (and signal values) are looked for at least this often, even when no
# run brings events.
NUDGE_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class OutboxCursor:
    """What the sensor has asked for: the newest materialization (epoch seconds) of
    canonical_events and of the watched signals' stored models it has seen, and when it
    last asked for a run. Losing it costs one extra run: what was queued is kept in the
    database (ops.canonical_readers, ops.adapter_sync_state, idempotency keys)."""

    events_at: float | None = None
    signals_at: float | None = None
    asked_at: float | None = None

    def dumps(self) -> str:
        return orjson.dumps(self.__dict__).decode()


def parse_cursor(raw: str | None) -> OutboxCursor:
    if not raw:
        return OutboxCursor()
    try:
        data = orjson.loads(raw)
        return OutboxCursor(
            events_at=_number(data.get("events_at")),
            signals_at=_number(data.get("signals_at")),
            asked_at=_number(data.get("asked_at")),
        )
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        # The old sensor's cursor ({"events": "<loaded_at>|<id>", "signals_at": ISO}):
        # its event position now lives in the database; start again.
        return OutboxCursor()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


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


def newest_materialization(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> float | None:
    """The newest materialization time (epoch seconds) among `keys`."""
    times = [
        event.timestamp
        for key in keys
        if (event := instance.get_latest_materialization_event(key)) is not None
    ]
    return max(times, default=None)


def plan_outbox_run(
    cursor: OutboxCursor,
    *,
    events_at: float | None,
    signals_at: float | None,
    now: datetime,
    nudge_every: timedelta = NUDGE_EVERY,
) -> tuple[dg.RunRequest | None, OutboxCursor, str]:
    """Whether to ask for an outbox run, given the newest materializations upstream and
    the time: (the request or None, the next cursor, why)."""
    new_events = events_at is not None and (
        cursor.events_at is None or events_at > cursor.events_at
    )
    new_signals = signals_at is not None and (
        cursor.signals_at is None or signals_at > cursor.signals_at
    )
    due = (
        cursor.asked_at is None or now.timestamp() - cursor.asked_at >= nudge_every.total_seconds()
    )
    if not (new_events or new_signals or due):
        return None, cursor, "no new canonical events or marts, and nudges were looked for"
    following = replace(
        cursor,
        events_at=events_at if new_events else cursor.events_at,
        signals_at=signals_at if new_signals else cursor.signals_at,
        asked_at=now.timestamp(),
    )
    reason = (
        "canonical events and marts materialized"
        if new_events and new_signals
        else "canonical events materialized"
        if new_events
        else "marts materialized"
        if new_signals
        else "timer: unpaid bills, signals"
    )
    request = dg.RunRequest(
        # The timer's runs recheck the signals too: a recheck lost with a failed run (the
        # cursor moves on request) is made up within NUDGE_EVERY.
        run_config={
            "ops": {OUTBOX_OP: {"config": {"recheck_signals": new_signals or not new_events}}}
        },
        tags={"partner-signals/outbox": reason},
    )
    return request, following, reason


def outbox_run_active(instance: dg.DagsterInstance) -> bool:
    """An outbox run not finished yet will read everything loaded so far."""
    return job_run_active(instance, OUTBOX_JOB_NAME)


@dg.sensor(
    name="partner_outbox",
    job=outbox_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Asks for a materialization of ops/outbox when canonical events or a watched "
        "signal's marts were materialized, and every 5 minutes for unpaid-bill nudges. "
        "The delivery daemon (`partner-signals deliveries run --forever`, started by "
        "serve) sends what the outbox holds."
    ),
)
def partner_outbox(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    if outbox_run_active(context.instance):
        return dg.SkipReason("an outbox run is queued or running")
    cursor = parse_cursor(context.cursor)
    request, following, reason = plan_outbox_run(
        cursor,
        events_at=newest_materialization(context.instance, [CANONICAL_EVENTS_KEY]),
        signals_at=newest_materialization(context.instance, watched_asset_keys(load_manifest())),
        now=datetime.now(UTC),
    )
    if request is None:
        return dg.SkipReason(reason)
    return dg.SensorResult(run_requests=[request], cursor=following.dumps())
