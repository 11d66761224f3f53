"""The one Dagster entry point: `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

import dagster as dg

from pipelines.exports.assets import (
    export_job,
    export_schedule,
    exports_follow_the_data,
    signal_files,
)
from pipelines.pushes.assets import (
    deliveries_report_job,
    deliveries_report_schedule,
    no_dead_letters_waiting,
    outbox,
    outbox_job,
    partner_deliveries,
)
from pipelines.pushes.sensors import partner_outbox
from pipelines.resources import DatabaseResource, ExportsResource, signals_dbt_resource
from pipelines.signals.assets import signals_dbt
from pipelines.signals.checks import raw_events_processed, signals_freshness
from pipelines.signals.jobs import freshness_job, signals_job
from pipelines.signals.schedules import freshness_every_ten_minutes, nightly_full_rebuild
from pipelines.signals.sensors import raw_events_sensor
from pipelines.signals.sources import SOURCE_SPECS, raw_tables_observer
from pipelines.signals.unmapped import no_unmapped_events


def build_definitions(
    *,
    database_url: str | None = None,
    dbt_artifacts_dir: str | None = None,
    exports_dir: str | None = None,
) -> dg.Definitions:
    """Definitions against the project's database, or the one given (tests, the CLI), and
    the project's exports folder, or the one given."""
    return dg.Definitions(
        assets=[
            signals_dbt,
            signal_files,
            partner_deliveries,
            # Lineage end to end: raw -> ... -> marts -> outbox / files.
            *SOURCE_SPECS,
            outbox,
        ],
        asset_checks=[
            raw_events_processed,
            no_dead_letters_waiting,
            no_unmapped_events,
            signals_freshness,
        ],
        jobs=[signals_job, freshness_job, export_job, deliveries_report_job, outbox_job],
        # Every job here is a step or two in a row (dbt, then the checks on what it
        # built), and the daemon already launches each run as its own process: the
        # default multiprocess executor added a process per step, each loading the code
        # again (20-86 s a step on a loaded 2-core box, docs/benchmarks.md, "Freshness
        # through serve").
        executor=dg.in_process_executor,
        sensors=[raw_events_sensor, partner_outbox, exports_follow_the_data, raw_tables_observer],
        schedules=[
            nightly_full_rebuild,
            freshness_every_ten_minutes,
            export_schedule,
            deliveries_report_schedule,
        ],
        resources={
            "database": DatabaseResource(database_url=database_url),
            "dbt": signals_dbt_resource(dbt_artifacts_dir),
            "exports": ExportsResource(exports_dir=exports_dir),
        },
    )


defs = build_definitions()
