"""Jobs: materialize the signals (sensor, schedule and CLI share it), and check freshness."""

from __future__ import annotations

import dagster as dg

from pipelines.signals.assets import DBT_CONCURRENCY_TAG, SIGNALS_JOB_NAME, signals_dbt
from pipelines.signals.checks import raw_events_processed

__all__ = ["SIGNALS_JOB_NAME", "freshness_job", "full_refresh_run_config", "signals_job"]

signals_job = dg.define_asset_job(
    name=SIGNALS_JOB_NAME,
    selection=dg.AssetSelection.assets(signals_dbt),
    description="dbt build of the signals models with their tests as checks.",
    tags={DBT_CONCURRENCY_TAG: "build"},
)

freshness_job = dg.define_asset_job(
    name="signals_freshness_job",
    selection=dg.AssetSelection.checks(raw_events_processed),
    description="Checks that landed raw events reach the signals within 15 minutes.",
)


def full_refresh_run_config() -> dict[str, object]:
    return {"ops": {"signals_dbt": {"config": {"full_refresh": True}}}}
