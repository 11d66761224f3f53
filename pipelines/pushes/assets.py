"""The deliveries domain: the outbox as an asset (what partners are to be sent), and what
they received (per-adapter counts, with a check that warns while dead letters wait)."""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from partner_signals.catalogue import signals as catalogue
from partner_signals.pushes.replay import adapter_counts
from pipelines.pushes.fill import fill_outbox
from pipelines.resources import DatabaseResource
from pipelines.signals.checks import CANONICAL_EVENTS_KEY

OUTBOX_KEY = dg.AssetKey(["ops", "outbox"])
DELIVERIES_KEY = dg.AssetKey(["ops", "partner_deliveries"])
# The marts of the signals watched for changes (the signal catalogue).
WATCHED_MART_KEYS = [dg.AssetKey(["marts", s.model]) for s in catalogue.watched()]
OUTBOX_JOB_NAME = "partner_outbox_job"


class OutboxConfig(dg.Config):
    recheck_signals: bool = Field(
        default=True,
        description=(
            "Compare the watched signals' recent values with what each partner was last "
            "sent. The sensor turns it off when only canonical events are new."
        ),
    )


@dg.asset(
    key=OUTBOX_KEY,
    group_name="deliveries",
    deps=[CANONICAL_EVENTS_KEY, *WATCHED_MART_KEYS],
    kinds={"postgres"},
    description=(
        "ops.outbox: what each enabled partner adapter is to be sent. A materialization "
        "queues the canonical events loaded since the last one (its position is kept in "
        "ops.canonical_readers), the watched signal values that changed, and nudges for "
        "bills left unpaid. `partner-signals deliveries run` (under serve: `--forever`) "
        "sends them, signed, with retries and dead letters."
    ),
)
def outbox(database: DatabaseResource, config: OutboxConfig) -> dg.MaterializeResult:
    filled = fill_outbox(
        database.engine(),
        now=datetime.now(UTC),
        recheck_signals=config.recheck_signals,
    )
    return dg.MaterializeResult(metadata=filled.as_metadata())


outbox_job = dg.define_asset_job(
    OUTBOX_JOB_NAME,
    selection=[OUTBOX_KEY],
    description="Fill ops.outbox from new canonical events, changed signals and unpaid bills.",
)


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
    deps=[OUTBOX_KEY],
    description=(
        "Pushes to partners by adapter: delivered, failed, retried, pending and dead-lettered "
        "counts from ops.delivery_attempts and ops.outbox. Replay dead letters with "
        "`partner-signals deliveries replay`."
    ),
)
def partner_deliveries(database: DatabaseResource) -> dg.MaterializeResult:
    with database.engine().connect() as conn:
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
    with database.engine().connect() as conn:
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
