"""The export asset: each business day's signals written per restaurant with polars, for the
days each signals run touched (the sensor below, and `materialize`), and yesterday's again
every morning."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from partner_signals.catalogue import signals as catalogue
from partner_signals.exports import export_days
from pipelines.exports.plan import (
    EXPORTS_UNTIL_TAG,
    mark_exported,
    plan_exports,
    retry_request,
    watermark_models,
)
from pipelines.resources import DatabaseResource, ExportsResource
from pipelines.runs import job_run_active
from pipelines.signals.health import job_run_health
from pipelines.signals.sensors import backing_off, load_manifest

# A business day can be ahead of the UTC date (it starts at 04:00 local, so east of
# UTC+4 after 04:00 local), hence partitions up to tomorrow.
daily = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=2)

MART_KEYS = [dg.AssetKey(["marts", s.model]) for s in catalogue.exported()]
EXPORT_JOB_NAME = "export_signal_files"


@dg.asset(
    key=dg.AssetKey(["exports", "signal_files"]),
    partitions_def=daily,
    deps=MART_KEYS,
    group_name="exports",
    kinds={"parquet", "csv", "polars"},
    description=(
        "Every signal of one business day, as Parquet and CSV per restaurant: "
        "`<exports_dir>/<restaurant_id>/<business_date>/<signal>.<parquet|csv>`. "
        "Written for the business days each signals run touched (the "
        "`exports_follow_the_data` sensor, and `partner-signals materialize`), and "
        "for yesterday every morning at 06:15 UTC. "
        'Query them with `partner-signals query "select * from time_to_pay"` (DuckDB), '
        "or fetch them from the partner API at /v1/exports."
    ),
)
def signal_files(
    context: dg.AssetExecutionContext, database: DatabaseResource, exports: ExportsResource
) -> dg.MaterializeResult:
    root = exports.root()
    days = [date.fromisoformat(key) for key in context.partition_keys]
    engine = database.engine()
    written = export_days(engine, root, days)
    until = context.run.tags.get(EXPORTS_UNTIL_TAG)
    if until:
        with engine.begin() as conn:
            mark_exported(conn, datetime.fromisoformat(until))
    restaurants = sorted({p.parent.parent.name for p in written})
    context.log.info(
        f"wrote {len(written)} files for {len(restaurants)} restaurants on "
        f"{len(days)} business days ({days[0]} .. {days[-1]})"
    )
    return dg.MaterializeResult(
        metadata={
            "files": len(written),
            "business_days": len(days),
            "restaurants": dg.MetadataValue.json(restaurants),
            "folder": dg.MetadataValue.path(str(root.resolve())),
        }
    )


export_job = dg.define_asset_job(EXPORT_JOB_NAME, selection=[signal_files.key])


@dg.schedule(
    name="export_signal_files_schedule",
    job=export_job,
    cron_schedule="15 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Writes yesterday's files again at 06:15 UTC, once the day has closed (04:00 local "
        "at the latest from UTC to UTC+4; later zones' last events reach the files through "
        "the sensor): a backstop for a day no run touched at its end."
    ),
)
def export_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    now = context.scheduled_execution_time or datetime.now(UTC)
    day = (now - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=day, partition_key=day)


def export_run_active(instance: dg.DagsterInstance) -> bool:
    return job_run_active(instance, EXPORT_JOB_NAME)


@dg.sensor(
    name="exports_follow_the_data",
    job=export_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Files follow the data: when the exported marts have processed canonical events "
        "the files do not cover yet (their watermarks are past ops.canonical_readers' "
        "`exports` position), asks for one run of exports/signal_files over the business "
        "days those events touched. The position moves when that run succeeds. A failed "
        "export run (this sensor's or the schedule's) is asked for again, over the same "
        "days, backing off like the signals sensor from the second failure in a row."
    ),
)
def exports_follow_the_data(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SkipReason | dg.RunRequest:
    if export_run_active(context.instance):
        return dg.SkipReason("an export run is queued or running")
    health = job_run_health(context.instance, EXPORT_JOB_NAME)
    waiting = backing_off(health, datetime.now(UTC), runs="export runs")
    if waiting is not None:
        return waiting
    if health.failing and health.last_failure_run_id is not None:
        failed = context.instance.get_run_by_id(health.last_failure_run_id)
        retry = retry_request(failed) if failed is not None else None
        if retry is not None:
            context.log.warning(
                f"export run {health.last_failure_run_id} failed "
                f"({health.failed_in_a_row} in a row): asking for it again"
            )
            return retry
    engine = database.engine()
    with engine.begin() as conn:
        plan = plan_exports(conn, models=watermark_models(load_manifest()), partitions=daily)
        if plan is None:
            return dg.SkipReason("the files cover every event the marts have processed")
        if not plan.partition_keys:
            # Events only on days before the first partition: nothing to write.
            mark_exported(conn, plan.until)
            return dg.SkipReason(f"no export partition for {plan.outside}")
    if plan.outside:
        context.log.warning(f"touched days without an export partition: {plan.outside}")
    return dg.RunRequest(run_key=f"exports:{plan.until.isoformat()}", tags=plan.run_tags())
