"""CLI commands of the partner side: DuckDB over the exported files (partner keys: cli/keys.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.output import Json, print_json
from cli.registry import fail

console = Console(stderr=True)
out = Console()


def query(
    sql: Annotated[str, typer.Argument(help="DuckDB SQL; signals are views by name")],
    as_json: Json = False,
) -> None:
    """Run DuckDB SQL over the exported Parquet files (order_velocity, time_to_pay, ...)."""
    from partner_signals.exports import query_exports
    from partner_signals.settings import get_settings

    try:
        columns, rows = query_exports(Path(get_settings().exports_dir), sql)
    except Exception as exc:  # DuckDB's errors are the user's SQL errors
        raise fail(exc) from None
    if as_json:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)
