"""Jobs: materialize the signals (sensor, schedule and CLI share it), and check freshness."""

from __future__ import annotations

import dagster as dg

from pipelines.signals.assets import DBT_CONCURRENCY_TAG, SIGNALS_JOB_NAME, signals_dbt
from pipelines.signals.checks import raw_events_processed, signals_freshness

__all__ = ["SIGNALS_JOB_NAME", "freshness_job", "full_refresh_run_config", "signals_job"]

signals_job = dg.define_asset_job(
    name=SIGNALS_JOB_NAME,
    selection=dg.AssetSelection.assets(signals_dbt),
    description="dbt build of the signals models with their tests as checks.",
    tags={DBT_CONCURRENCY_TAG: "build"},
)

freshness_job = dg.define_asset_job(
    name="signals_freshness_job",
    selection=dg.AssetSelection.checks(raw_events_processed, signals_freshness),
    description=(
        "Checks that landed raw events reach canonical_events within 15 minutes, and each "
        "signal's mart stays within the 60 s freshness goal of the events waiting for it."
    ),
)


def full_refresh_run_config() -> dict[str, object]:
    return {"ops": {"signals_dbt": {"config": {"full_refresh": True}}}}
