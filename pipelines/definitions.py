"""The one Dagster entry point: `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

import dagster as dg

from pipelines.exports.assets import export_job, export_schedule, signal_files
from pipelines.pushes.assets import (
    deliveries_report_job,
    deliveries_report_schedule,
    no_dead_letters_waiting,
    partner_deliveries,
)
from pipelines.pushes.sensors import partner_outbox
from pipelines.resources import DatabaseResource, signals_dbt_resource
from pipelines.signals.assets import signals_dbt
from pipelines.signals.checks import raw_events_processed, signals_freshness
from pipelines.signals.jobs import freshness_job, signals_job
from pipelines.signals.schedules import freshness_every_ten_minutes, nightly_full_rebuild
from pipelines.signals.sensors import raw_events_sensor


def build_definitions(
    *, database_url: str | None = None, dbt_artifacts_dir: str | None = None
) -> dg.Definitions:
    """Definitions against the project's database, or the one given (tests, the CLI)."""
    return dg.Definitions(
        assets=[signals_dbt, signal_files, partner_deliveries],
        asset_checks=[raw_events_processed, no_dead_letters_waiting, signals_freshness],
        jobs=[signals_job, freshness_job, export_job, deliveries_report_job],
        sensors=[raw_events_sensor, partner_outbox],
        schedules=[
            nightly_full_rebuild,
            freshness_every_ten_minutes,
            export_schedule,
            deliveries_report_schedule,
        ],
        resources={
            "database": DatabaseResource(database_url=database_url),
            "dbt": signals_dbt_resource(dbt_artifacts_dir),
        },
    )


defs = build_definitions()
