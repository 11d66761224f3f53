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
) -> bool:
    """Run the signals job in-process against `settings`' database, recorded in the
    project's Dagster instance (visible in the UI). True when the run succeeded and no
    check failed at error severity (warnings are reported, not fatal). `quiet` keeps dbt's
    log off the console unless the run fails."""
    console = console or Console(stderr=True)
    prepare_dagster_home(settings)
    # Imported here: loading the definitions parses the dbt project when it changed.
    from pipelines.definitions import build_definitions

    defs = build_definitions(
        database_url=libpq_url(settings),
        dbt_artifacts_dir=str((settings.data_dir / "dbt" / "target").resolve()),
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
    summary = summarize(result)
    if quiet and not summary.ok:
        console.print("\n".join(dbt_lines.getvalue().splitlines()[-40:]), markup=False)
    report(console, summary)
    return summary.ok


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


if __name__ == "__main__":  # pragma: no cover - convenience entry
    from partner_signals.settings import get_settings

    sys.exit(0 if materialize_all(get_settings()) else 1)
