"""Freshness: signals fail their checks when they stop keeping up with landed events."""
# Dagster reads these annotations at definition time, so no postponed annotations here.

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg

from partner_signals.catalogue import signals as catalogue
from partner_signals.observability import FRESHNESS_GOAL_SECONDS, SignalLag, signal_lags
from pipelines.resources import DatabaseResource
from pipelines.signals.health import processed_high_water
from pipelines.signals.raw import RawHighWater, stale_raw_rows

CANONICAL_EVENTS_KEY = dg.AssetKey(["canonical", "canonical_events"])
# Events landed longer ago than this and not yet in canonical_events make the signals stale.
STALE_AFTER = timedelta(minutes=15)


@dg.asset_check(
    asset=CANONICAL_EVENTS_KEY,
    name="raw_events_processed",
    description=(
        "Fails when raw events received more than 15 minutes ago are not yet in "
        "canonical_events (and so not in any signal): the sensor or the runs are behind."
    ),
    blocking=False,
)
def raw_events_processed(
    context: dg.AssetCheckExecutionContext, database: DatabaseResource
) -> dg.AssetCheckResult:
    # What the last successful run processed (or this run, when the check runs in it).
    processed = (
        processed_high_water(context.instance, counting_run_id=context.run.run_id) or RawHighWater()
    )
    with database.connect() as conn:
        waiting, oldest_age = stale_raw_rows(
            conn, processed, older_than_seconds=STALE_AFTER.total_seconds()
        )
    return dg.AssetCheckResult(
        passed=waiting == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "stale_raw_events": waiting,
            "oldest_waiting_seconds": oldest_age or 0.0,
            **processed.as_metadata(),
        },
        description=None if waiting == 0 else f"{waiting} raw events waiting over 15 minutes",
    )


SIGNAL_LAG_CHECK = "signal_lag_within_goal"


def mart_key(signal: catalogue.Signal) -> dg.AssetKey:
    return dg.AssetKey(signal.relation.split("."))


def lag_result(lag: SignalLag, *, goal_seconds: float) -> dg.AssetCheckResult:
    """Pass while the mart is at most `goal_seconds` behind the oldest event waiting for it."""
    passed = lag.seconds <= goal_seconds
    metadata: dict[str, dg.RawMetadataValue] = {
        "lag_seconds": round(lag.seconds, 1),
        "goal_seconds": goal_seconds,
        "waiting_since": lag.waiting_since.isoformat() if lag.waiting_since else "nothing waiting",
        "processed_through": (
            lag.processed_through.isoformat() if lag.processed_through else "never built"
        ),
        "incremental_models": ", ".join(lag.models),
    }
    return dg.AssetCheckResult(
        asset_key=mart_key(catalogue.get(lag.signal)),
        check_name=SIGNAL_LAG_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=None
        if passed
        else (
            f"{lag.signal} is {lag.seconds:.0f} s behind the oldest event waiting for it "
            f"(goal {goal_seconds:.0f} s): the sensor's runs are failing or too slow"
        ),
    )


@dg.multi_asset_check(
    name="signals_freshness",
    specs=[
        dg.AssetCheckSpec(
            SIGNAL_LAG_CHECK,
            asset=mart_key(signal),
            description=(
                f"Fails when {signal.name} is more than {FRESHNESS_GOAL_SECONDS:.0f} s behind "
                "the oldest landed event it does not reflect yet (the event -> mart goal). "
                "No events waiting is no lag, so a closed restaurant stays green overnight."
            ),
            blocking=False,
        )
        for signal in catalogue.signals()
    ],
)
def signals_freshness(database: DatabaseResource) -> Iterator[dg.AssetCheckResult]:
    with database.connect(autocommit=True, options="-c statement_timeout=30000") as conn:
        lags = signal_lags(conn)
    for lag in lags:
        yield lag_result(lag, goal_seconds=FRESHNESS_GOAL_SECONDS)
