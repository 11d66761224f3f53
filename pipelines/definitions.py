"""The one Dagster entry point: `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

import dagster as dg

from pipelines.resources import DatabaseResource, signals_dbt_resource
from pipelines.signals.assets import signals_dbt
from pipelines.signals.checks import raw_events_processed
from pipelines.signals.jobs import freshness_job, signals_job
from pipelines.signals.schedules import freshness_every_ten_minutes, nightly_full_rebuild
from pipelines.signals.sensors import raw_events_sensor


def build_definitions(
    *, database_url: str | None = None, dbt_artifacts_dir: str | None = None
) -> dg.Definitions:
    """Definitions against the project's database, or the one given (tests, the CLI)."""
    return dg.Definitions(
        assets=[signals_dbt],
        asset_checks=[raw_events_processed],
        jobs=[signals_job, freshness_job],
        sensors=[raw_events_sensor],
        schedules=[nightly_full_rebuild, freshness_every_ten_minutes],
        resources={
            "database": DatabaseResource(database_url=database_url),
            "dbt": signals_dbt_resource(dbt_artifacts_dir),
        },
    )


defs = build_definitions()
