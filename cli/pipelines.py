"""`partner-signals pipelines ...`: materialize the signals, open the Dagster UI, run dbt."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from partner_signals.db import libpq_url
from partner_signals.settings import get_settings

app = typer.Typer(help="Signals pipelines: dbt models materialized through Dagster.")

REPO_ROOT = Path(__file__).resolve().parent.parent


@app.command("materialize")
def materialize_command(
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild every model from raw.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only the summary.")] = False,
) -> None:
    """Materialize every signals asset once through Dagster; exit 1 if a check fails."""
    from pipelines.run import materialize_all

    ok = materialize_all(
        get_settings(), full_refresh=full_refresh, log_level="WARNING" if quiet else "INFO"
    )
    raise typer.Exit(0 if ok else 1)


@app.command("dev")
def dev_command(
    port: Annotated[int, typer.Option(help="Dagster UI port.")] = 3000,
    host: Annotated[str, typer.Option(help="Dagster UI host.")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI and daemon (sensors, schedules) on the project's storage."""
    from pipelines.instance import prepare_dagster_home

    prepare_dagster_home(get_settings())
    dagster = Path(sys.executable).with_name("dagster")
    args = [str(dagster), "dev", "-w", str(REPO_ROOT / "workspace.yaml")]
    args += ["--host", host, "--port", str(port)]
    # Become `dagster dev` (our venv's, fixed arguments), so Ctrl-C and signals reach it.
    os.chdir(REPO_ROOT)
    os.execve(str(dagster), args, os.environ.copy())  # noqa: S606


@app.command("dbt", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt_command(ctx: typer.Context) -> None:
    """Run a dbt command against the project's database, e.g. `dbt -- docs generate`."""
    from pipelines.resources import DatabaseResource, signals_dbt_resource

    settings = get_settings()
    database = DatabaseResource(database_url=libpq_url(settings))
    dbt = signals_dbt_resource(str((settings.data_dir / "dbt" / "target").resolve()))
    invocation = dbt.invoke(list(ctx.args) or ["build"], database=database, raise_on_error=False)
    for line in invocation.stream_raw_events():
        typer.echo(str(line))
    raise typer.Exit(0 if invocation.is_successful() else 1)
