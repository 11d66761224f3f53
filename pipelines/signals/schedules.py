"""Schedules: the nightly full rebuild, and the freshness checks every ten minutes."""

from __future__ import annotations

import dagster as dg

from pipelines.signals.jobs import freshness_job, full_refresh_run_config, signals_job

nightly_full_rebuild = dg.ScheduleDefinition(
    name="nightly_full_rebuild",
    job=signals_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    run_config=full_refresh_run_config(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuilds every model from raw (dbt build --full-refresh) at 03:30 UTC.",
)

freshness_every_ten_minutes = dg.ScheduleDefinition(
    name="signals_freshness_schedule",
    job=freshness_job,
    # Each tick launches a run (a code load: seconds of CPU), so the checks are the UI's
    # view; the Prometheus alert on the lag gauge (every scrape) is the fast path.
    cron_schedule="*/10 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Fails raw_events_processed when landed events wait over 15 minutes, and each "
        "signal's signal_lag_within_goal when its mart is over 60 s behind waiting events."
    ),
)
