"""`partner-signals status`: what is failing or waiting, one section per part of the system.

A section prints its lines and says whether all is well; the command exits 1 when any
section is not. Add a part by appending a `Section` to SECTIONS. The last section is the
health summary of `partner_signals.control.health` (the admin API's GET /admin/v1/status),
per company; `--json` prints that summary alone, `--company` narrows it to one company."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console

from cli.output import Json, call
from cli.registry import fail, out
from partner_signals.settings import Settings, get_settings

if TYPE_CHECKING:
    from partner_signals.control.health import Health
    from pipelines.signals.health import RunHealth


@dataclass(frozen=True)
class Section:
    title: str
    # Prints the section's lines; False when something needs an operator (a red line).
    show: Callable[[Settings, Console], bool]


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    if seconds < 120:
        span = f"{seconds} s"
    elif seconds < 7200:
        span = f"{seconds // 60} min"
    elif seconds < 172800:
        span = f"{seconds // 3600} h"
    else:
        span = f"{seconds // 86400} days"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({span} ago)"


def signals_runs(settings: Settings, console: Console) -> bool:
    """The signals job's runs (sensor, nightly rebuild, materialize) and the raw events
    the last successful one has not processed yet."""
    import dagster as dg
    import psycopg

    from partner_signals.db import libpq_url
    from pipelines.instance import prepare_dagster_home
    from pipelines.signals.checks import STALE_AFTER
    from pipelines.signals.health import signals_run_health, signals_run_in_flight
    from pipelines.signals.raw import RawHighWater, stale_raw_rows

    prepare_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        health = signals_run_health(instance)
        in_flight = signals_run_in_flight(instance)
    console.print(f"  last successful run  {ago(health.last_success_at)}")
    if in_flight:
        console.print("  a run is queued or running now")
    if health.failing:
        console.print(
            f"  [bold red]✗ {health.failed_in_a_row} signals run"
            f"{'s' if health.failed_in_a_row > 1 else ''} failed in a row[/bold red], the last "
            f"{ago(health.last_failure_at)}: {health.last_failure_message or 'no message'}",
            highlight=False,
        )
    elif health.last_failure_at is not None:
        console.print(f"  last failure         {ago(health.last_failure_at)} (since succeeded)")
    processed = health.processed_high_water or RawHighWater()
    try:
        with psycopg.connect(libpq_url(settings)) as conn:
            waiting, oldest = stale_raw_rows(conn, processed, older_than_seconds=0)
    except psycopg.errors.UndefinedTable:
        raise fail("the raw tables are missing: run `partner-signals db upgrade` first") from None
    age = f", the oldest received {oldest:.0f} s ago" if oldest is not None else ""
    console.print(f"  raw events waiting   {waiting}{age}")
    late = oldest is not None and oldest > STALE_AFTER.total_seconds()
    if late and not health.failing:
        console.print(
            f"  [bold red]✗ raw events have waited over {STALE_AFTER.total_seconds() / 60:.0f} "
            "minutes[/bold red]: is the Dagster daemon running (`partner-signals serve`)?",
            highlight=False,
        )
    return not health.failing and not late


def export_runs(settings: Settings, console: Console) -> bool:
    """The export job's runs (sensor, schedule, materialize): red while the newest have
    failed; the exports sensor asks for each failed run again, backing off."""
    import dagster as dg

    from pipelines.exports.assets import EXPORT_JOB_NAME
    from pipelines.instance import prepare_dagster_home
    from pipelines.signals.health import job_run_health

    prepare_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        return show_export_runs(job_run_health(instance, EXPORT_JOB_NAME), console)


def show_export_runs(health: RunHealth, console: Console) -> bool:
    console.print(f"  last successful run  {ago(health.last_success_at)}")
    if health.failing:
        console.print(
            f"  [bold red]✗ {health.failed_in_a_row} export run"
            f"{'s' if health.failed_in_a_row > 1 else ''} failed in a row[/bold red] "
            f"(each is retried), the last {ago(health.last_failure_at)}: "
            f"{health.last_failure_message or 'no message'}",
            highlight=False,
        )
    elif health.last_failure_at is not None:
        console.print(f"  last failure         {ago(health.last_failure_at)} (since succeeded)")
    return not health.failing


SECTIONS: list[Section] = [
    Section("signals runs", signals_runs),
    Section("export runs", export_runs),
]


def show_health(found: Health, console: Console) -> bool:
    """Each company's verdict, its inbound sources and pushes waiting, then what all share
    (signal lag over the goal, failing checks and runs)."""
    for company in found.companies:
        mark = "✓" if company.verdict == "ok" else "[bold red]✗[/bold red]"
        console.print(f"  {mark} {company.company_id}", highlight=False)
        for source in company.inbound:
            state = "" if source.enabled else " (disabled)"
            console.print(
                f"      {source.source:<12} last event {ago(source.last_received_at)}{state}",
                highlight=False,
            )
        for push in company.pushes:
            console.print(
                f"      {push.adapter:<12} {push.pending} pending"
                + (f", oldest {ago(push.oldest_pending_at)}" if push.oldest_pending_at else "")
                + f", {push.dead_letters_waiting} dead letters",
                highlight=False,
            )
        for reason in company.reasons:
            console.print(f"      [bold red]✗ {reason}[/bold red]", highlight=False)
    theirs = {f"{c.company_id}: {r}" for c in found.companies for r in c.reasons}
    for reason in found.reasons:
        if reason not in theirs:
            console.print(f"  [bold red]✗ {reason}[/bold red]", highlight=False)
    if not found.companies:
        console.print("  no companies")
    return found.verdict == "ok"


def health_summary(company: str | None) -> Health:
    import sqlalchemy as sa

    from partner_signals.control import health

    try:
        return call(lambda c, a: health.summary(c, a, company))
    except sa.exc.ProgrammingError:
        raise fail("the database is not set up: run `partner-signals db upgrade` first") from None


def status_command(
    company: Annotated[
        str | None, typer.Option(help="Only this company in the health summary")
    ] = None,
    as_json: Json = False,
) -> None:
    """What is failing or waiting: signals runs (red when runs failed in a row or raw
    events wait over 15 minutes), export runs (red when the newest failed), then per
    company the health summary (inbound freshness per source, push backlog per adapter,
    signal lag, failing checks). Exits 1 when something needs an operator."""
    if as_json:
        found = health_summary(company)
        out.print_json(orjson.dumps(found, default=str).decode())
        raise typer.Exit(0 if found.verdict == "ok" else 1)
    settings = get_settings()
    healthy = True
    for section in SECTIONS:
        out.print(f"[bold]{section.title}[/bold]")
        healthy = section.show(settings, out) and healthy
    found = health_summary(company)
    out.print(f"[bold]companies[/bold] ({found.verdict})")
    healthy = show_health(found, out) and healthy
    raise typer.Exit(0 if healthy else 1)
