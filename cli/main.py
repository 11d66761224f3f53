"""The `partner-signals` command: the root of the application shell, mounting each group."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli import (
    adapters,
    backfill,
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


backfill.register(app)


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
