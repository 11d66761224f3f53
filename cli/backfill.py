"""`partner-signals ingest FILE`: backfill POS events from NDJSON. Kept apart from the other
commands so that it starts without importing them (see `cli.entry`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.console import console, fail, out


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


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
