"""What partners received: per-adapter delivery counts as an asset the UI shows, with a
check that warns while dead letters wait for replay."""

import dagster as dg

from partner_signals.db import get_engine
from partner_signals.pushes.replay import adapter_counts
from partner_signals.settings import Settings, get_settings
from pipelines.resources import DatabaseResource

DELIVERIES_KEY = dg.AssetKey(["ops", "partner_deliveries"])


def counts_markdown(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "No deliveries yet."
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@dg.asset(
    key=DELIVERIES_KEY,
    group_name="deliveries",
    description=(
        "Pushes to partners by adapter: delivered, failed, retried, pending and dead-lettered "
        "counts from ops.delivery_attempts and ops.outbox. Replay dead letters with "
        "`partner-signals deliveries replay`."
    ),
)
def partner_deliveries(database: DatabaseResource) -> dg.MaterializeResult:
    engine = get_engine(Settings(database_url=database.url(), data_dir=get_settings().data_dir))
    with engine.connect() as conn:
        rows = adapter_counts(conn)
    metadata: dict[str, dg.RawMetadataValue] = {
        "by_adapter": dg.MetadataValue.md(counts_markdown(rows))
    }
    for row in rows:
        for column, value in row.items():
            if column != "adapter" and isinstance(value, int):
                metadata[f"{row['adapter']}_{column}"] = value
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=DELIVERIES_KEY, description="Warns while dead letters wait for replay.")
def no_dead_letters_waiting(database: DatabaseResource) -> dg.AssetCheckResult:
    engine = get_engine(Settings(database_url=database.url(), data_dir=get_settings().data_dir))
    with engine.connect() as conn:
        rows = adapter_counts(conn)
    dead = sum(int(r.get("dead") or 0) for r in rows)
    return dg.AssetCheckResult(
        passed=dead == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"dead_letters": dead},
    )


deliveries_report_job = dg.define_asset_job("deliveries_report", selection=[DELIVERIES_KEY])
deliveries_report_schedule = dg.ScheduleDefinition(
    job=deliveries_report_job,
    cron_schedule="*/15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
