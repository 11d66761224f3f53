"""Materialize every signals asset once, through Dagster, the way the sensor's runs do."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from rich.console import Console
from rich.table import Table

from partner_signals.db import libpq_url
from partner_signals.settings import Settings
from pipelines.instance import prepare_dagster_home
from pipelines.signals.jobs import SIGNALS_JOB_NAME, full_refresh_run_config


@dataclass
class RunSummary:
    success: bool
    materialized: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    warned_checks: list[str] = field(default_factory=list)
    passed_checks: int = 0

    @property
    def ok(self) -> bool:
        return self.success and not self.failed_checks


def summarize(result: dg.ExecuteInProcessResult) -> RunSummary:
    summary = RunSummary(success=result.success)
    for event in result.get_asset_materialization_events():
        key = event.asset_key
        if key is not None:
            summary.materialized.append(key.to_user_string())
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            summary.passed_checks += 1
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            summary.warned_checks.append(name)
        else:
            summary.failed_checks.append(name)
    return summary


def run_config(*, full_refresh: bool, log_level: str = "INFO") -> dict[str, Any]:
    config: dict[str, Any] = full_refresh_run_config() if full_refresh else {}
    config["loggers"] = {"console": {"config": {"log_level": log_level}}}
    return config


def materialize_all(
    settings: Settings,
    *,
    full_refresh: bool = False,
    console: Console | None = None,
    log_level: str = "INFO",
    quiet: bool = False,
    downstream: bool = True,
) -> bool:
    """Run the signals job in-process against `settings`' database, recorded in the
    project's Dagster instance (visible in the UI). True when the run succeeded and no
    check failed at error severity (warnings are reported, not fatal). `quiet` keeps dbt's
    log off the console unless the run fails. `downstream` (the default) then fills the
    outbox and writes the files of the days touched (`run_downstream`)."""
    console = console or Console(stderr=True)
    prepare_dagster_home(settings)
    # Imported here: loading the definitions parses the dbt project when it changed.
    from pipelines.definitions import build_definitions

    defs = build_definitions(
        database_url=libpq_url(settings),
        dbt_artifacts_dir=str((settings.data_dir / "dbt" / "target").resolve()),
        exports_dir=str(settings.exports_dir),
    )
    job = defs.resolve_job_def(SIGNALS_JOB_NAME)
    console.print(
        f"[bold]Materializing signals[/bold] ({'full rebuild' if full_refresh else 'incremental'})"
    )
    dbt_lines = io.StringIO()
    with contextlib.ExitStack() as stack:
        if quiet:
            # dagster-dbt echoes every dbt log line to stdout; kept here instead, and
            # shown only when the run fails.
            console.print("dbt build through Dagster (its log is shown if it fails) ...")
            stack.enter_context(contextlib.redirect_stdout(dbt_lines))
        instance = stack.enter_context(dg.DagsterInstance.get())
        result = job.execute_in_process(
            run_config=run_config(full_refresh=full_refresh, log_level=log_level),
            instance=instance,
            raise_on_error=False,
            tags={"partner-signals/trigger": "cli"},
        )
        after = (
            run_downstream(defs, instance, settings, log_level=log_level) if downstream else None
        )
    summary = summarize(result)
    if quiet and not summary.ok:
        console.print("\n".join(dbt_lines.getvalue().splitlines()[-40:]), markup=False)
    report(console, summary)
    if after is not None:
        report_downstream(console, after)
    return summary.ok and (after is None or after.ok)


def report(console: Console, summary: RunSummary) -> None:
    table = Table(title="signals run", show_header=False)
    table.add_row("run", "[green]succeeded[/green]" if summary.success else "[red]failed[/red]")
    table.add_row("assets materialized", str(len(summary.materialized)))
    table.add_row("checks passed", str(summary.passed_checks))
    table.add_row("checks warning", str(len(summary.warned_checks)))
    table.add_row("checks failed", str(len(summary.failed_checks)))
    console.print(table)
    for name in summary.failed_checks:
        console.print(f"[red]failed[/red] {name}")
    for name in summary.warned_checks:
        console.print(f"[yellow]warning[/yellow] {name}")


# -- after the signals: lineage, the outbox and the files of the days touched --------------


@dataclass
class DownstreamSummary:
    """What followed the signals run, each through Dagster in the same instance."""

    raw_tables_observed: int = 0
    outbox_ok: bool = True
    outbox: str = ""
    exports_ok: bool = True
    export_partitions: list[str] = field(default_factory=list)
    export_files: int = 0
    export_outside: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outbox_ok and self.exports_ok


def run_downstream(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    settings: Settings,
    *,
    log_level: str = "INFO",
) -> DownstreamSummary:
    """After the signals run: record an observation of each raw table, materialize the
    outbox (new canonical events, changed signals, nudges), then the export partitions of
    the business days the run touched (those the files lack, up to where the exported
    marts stand), so `deliveries run` has every due push and `/v1/exports` every file.
    Also after a failed signals run: both read only what was built (the outbox's and the
    files' positions, the marts' watermarks), and serve's sensors do the same."""
    from pipelines.exports.assets import EXPORT_JOB_NAME, daily
    from pipelines.exports.plan import mark_exported, plan_exports, watermark_models
    from pipelines.pushes.assets import OUTBOX_JOB_NAME, OUTBOX_KEY
    from pipelines.resources import DatabaseResource
    from pipelines.signals.sensors import load_manifest
    from pipelines.signals.sources import raw_table_states

    summary = DownstreamSummary()
    database = DatabaseResource(database_url=libpq_url(settings))
    with database.connect() as conn:
        states = raw_table_states(conn)
    for state in states:
        instance.report_runless_asset_event(state.observation())
    summary.raw_tables_observed = len(states)

    config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    tags = {"partner-signals/trigger": "cli"}
    filled = defs.resolve_job_def(OUTBOX_JOB_NAME).execute_in_process(
        run_config=config, instance=instance, raise_on_error=False, tags=tags
    )
    summary.outbox_ok = filled.success
    for event in filled.get_asset_materialization_events():
        if event.asset_key == OUTBOX_KEY and event.materialization is not None:
            metadata = {k: v.value for k, v in event.materialization.metadata.items()}
            summary.outbox = outbox_line(metadata)

    with database.engine().begin() as conn:
        plan = plan_exports(conn, models=watermark_models(load_manifest()), partitions=daily)
        if plan is not None and not plan.partition_keys:
            mark_exported(conn, plan.until)
    if plan is None:
        return summary
    summary.export_outside = [day.isoformat() for day in plan.outside]
    if plan.partition_keys:
        written = defs.resolve_job_def(EXPORT_JOB_NAME).execute_in_process(
            run_config=config,
            instance=instance,
            raise_on_error=False,
            tags={**tags, **plan.run_tags()},
        )
        summary.exports_ok = written.success
        for event in written.get_asset_materialization_events():
            if event.partition is not None:
                summary.export_partitions.append(event.partition)
            if event.materialization is not None:
                files = event.materialization.metadata.get("files")
                if files is not None and isinstance(files.value, int):
                    summary.export_files = max(summary.export_files, files.value)
    return summary


def outbox_line(metadata: dict[str, Any]) -> str:
    signals = metadata.get("signal_values_queued")
    return (
        f"{metadata.get('event_messages_queued', 0)} event messages, "
        f"{'no' if signals is None else signals} signal values, "
        f"{metadata.get('nudges_queued', 0)} nudges queued; "
        f"{metadata.get('pending_in_outbox', 0)} pending"
    )


def describe_days(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]} ({len(keys)})"


def report_downstream(console: Console, summary: DownstreamSummary) -> None:
    table = Table(title="after the signals", show_header=False)
    table.add_row("raw tables observed", str(summary.raw_tables_observed))
    table.add_row(
        "outbox",
        summary.outbox if summary.outbox_ok else "[red]failed[/red]",
    )
    partitions = summary.export_partitions
    files = (
        "none: no new events since the files were written"
        if not partitions and summary.exports_ok
        else f"{summary.export_files} files, business days {describe_days(partitions)}"
        if partitions
        else ""
    )
    table.add_row("exports", files if summary.exports_ok else "[red]failed[/red]")
    console.print(table)
    if summary.export_outside:
        console.print(
            f"[yellow]days touched before the first export partition:[/yellow] "
            f"{', '.join(summary.export_outside)}"
        )


if __name__ == "__main__":  # pragma: no cover - convenience entry
    from partner_signals.settings import get_settings

    sys.exit(0 if materialize_all(get_settings()) else 1)
