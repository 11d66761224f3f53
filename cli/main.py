"""The `partner-signals` command: the root of the application shell, mounting each group."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli import (
    adapters,
    control,
    errors,
    inbound,
    keys,
    messaging,
    partner,
    pipelines,
    platforms,
    pushes,
    registry,
    status,
    unmapped,
)
from cli.registry import console, fail, out

app = typer.Typer(
    help="partner-signals: restaurant dining state turned into partner signals.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar=errors.DEBUG_ENV,
            help="Show the traceback of an error (otherwise one `error:` line, exit 1)",
        ),
    ] = False,
) -> None:
    """partner-signals: restaurant dining state turned into partner signals."""
    errors.set_debug(debug)


app.add_typer(registry.db_app, name="db")
app.add_typer(registry.restaurants_app, name="restaurants")
app.add_typer(registry.integrations_app, name="integrations")


def _quiet_tools() -> None:
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


@app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON of POS events")],
    company: Annotated[str, typer.Option(help="Company the events belong to")],
) -> None:
    """Backfill POS events from an NDJSON file (same validation and dedup as POST /events)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.bulk import count_lines, ingest_file
    from partner_signals.db import libpq_url

    total = count_lines(file)
    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        # Redrawn as chunks commit rather than by rich's refresh thread: ingest_file
        # forks its workers, which is only safe while this process runs one thread.
        auto_refresh=False,
    ) as progress:
        task = progress.add_task("ingest", total=total, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            elapsed = progress.tasks[0].elapsed or 0
            if elapsed:
                progress.update(task, rate=f"{progress.tasks[0].completed / elapsed:,.0f} events/s")
            progress.refresh()

        try:
            result = ingest_file(
                file, conninfo=libpq_url(), company_id=company, on_progress=advance
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
        progress.update(task, completed=total, refresh=True)
    out.print(
        f"{result.lines} lines: {result.accepted} accepted, {result.duplicates} duplicates, "
        f"{len(result.rejected)} rejected"
    )
    for number, message in result.rejected[:20]:
        console.print(f"  line {number}: {message}")
    if result.rejected:
        raise typer.Exit(1)


@app.command("demo")
def demo(
    restaurants: Annotated[
        int | None,
        typer.Option(help="How many restaurants of the demo world (default all, in service first)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic days")] = 7,
) -> None:
    """Load synthetic service days through the real ingest path, show the signals, what is
    live now, a partner key and its API call, and pushes a local partner verified."""
    _quiet_tools()
    from cli.demo import run_demo

    raise typer.Exit(run_demo(restaurants=restaurants, seed=seed))


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    ingest_port: Annotated[int, typer.Option()] = 8000,
    api_port: Annotated[int, typer.Option()] = 8001,
    admin_port: Annotated[int, typer.Option(help="The admin API (operators)")] = 8003,
    dagster_port: Annotated[int, typer.Option()] = 3000,
    workers: Annotated[int, typer.Option(help="uvicorn workers per API")] = 2,
    dagster: Annotated[bool, typer.Option(help="Also run the Dagster UI and daemon")] = True,
) -> None:
    """Run the ingest API, the partner and admin APIs and Dagster (UI and daemon) until interrupted."""
    _quiet_tools()
    from cli.serve import run_all

    raise typer.Exit(
        run_all(
            host=host,
            ingest_port=ingest_port,
            api_port=api_port,
            admin_port=admin_port,
            dagster_port=dagster_port,
            workers=workers,
            dagster=dagster,
        )
    )


app.add_typer(pipelines.app, name="pipelines")
app.command("materialize")(pipelines.materialize_command)
app.command("status")(status.status_command)
app.command("query")(partner.query)
app.add_typer(pushes.deliveries_app, name="deliveries")
registry.integrations_app.command("test")(pushes.integrations_test)
app.command("unmapped")(unmapped.unmapped_command)
app.add_typer(control.operators_app, name="operators")
app.add_typer(control.audit_app, name="audit")
app.add_typer(control.companies_app, name="companies")
inbound.register(app)
adapters.register(app)
keys.register(app)
platforms.register(app)
messaging.register(app)


def main() -> None:
    errors.run(app)
