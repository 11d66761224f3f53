"""Freshness: signals fail their checks when they stop keeping up with landed events."""

from datetime import timedelta

import dagster as dg

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
