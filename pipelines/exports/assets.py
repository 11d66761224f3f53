"""The daily export asset: each business day's signals written per restaurant with polars."""

from datetime import date
from pathlib import Path

import dagster as dg

from partner_signals.catalogue import signals as catalogue
from partner_signals.db import get_engine
from partner_signals.exports import export_day
from partner_signals.settings import Settings, get_settings
from pipelines.resources import DatabaseResource

daily = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)

MART_KEYS = [dg.AssetKey(["marts", s.model]) for s in catalogue.exported()]


@dg.asset(
    key=dg.AssetKey(["exports", "signal_files"]),
    partitions_def=daily,
    deps=MART_KEYS,
    group_name="exports",
    kinds={"parquet", "csv", "polars"},
    description=(
        "Every signal of one business day, as Parquet and CSV per restaurant: "
        "`<exports_dir>/<restaurant_id>/<business_date>/<signal>.<parquet|csv>`. "
        'Query them with `partner-signals query "select * from time_to_pay"` (DuckDB), '
        "or fetch them from the partner API at /v1/exports."
    ),
)
def signal_files(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    settings = get_settings()
    root = Path(settings.exports_dir)
    day = date.fromisoformat(context.partition_key)
    written = export_day(
        get_engine(Settings(database_url=database.url(), data_dir=settings.data_dir)), root, day
    )
    restaurants = sorted({p.parent.parent.name for p in written})
    context.log.info(f"wrote {len(written)} files for {len(restaurants)} restaurants on {day}")
    return dg.MaterializeResult(
        metadata={
            "files": len(written),
            "restaurants": dg.MetadataValue.json(restaurants),
            "folder": dg.MetadataValue.path(str(root.resolve())),
        }
    )


export_job = dg.define_asset_job(
    "export_signal_files", selection=[signal_files.key], partitions_def=daily
)
# Each business day's files are written once the day has closed (04:00 local at the
# latest across our time zones is before 06:00 UTC); rerun a day from the UI to backfill.
export_schedule = dg.build_schedule_from_partitioned_job(
    export_job, hour_of_day=6, minute_of_hour=15, default_status=dg.DefaultScheduleStatus.RUNNING
)
