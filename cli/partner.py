"""CLI commands of the partner side: partner keys and DuckDB over the exported files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.output import Json, print_json

console = Console(stderr=True)
out = Console()
keys_app = typer.Typer(help="Partner API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    company: Annotated[str, typer.Option(help="Company the key reads")],
    scope: Annotated[
        list[str], typer.Option(help="read:workforce, read:crm, read:events, read:exports (repeat)")
    ],
    restaurant: Annotated[str | None, typer.Option(help="Limit the key to one restaurant")] = None,
    name: Annotated[str | None, typer.Option(help="A label for operators")] = None,
) -> None:
    """Create a partner API key; printed once, stored hashed."""
    from api.keys import create_partner_key
    from partner_signals.db import get_engine
    from partner_signals.registry import RegistryError

    try:
        with get_engine().begin() as conn:
            key = create_partner_key(
                conn, company_id=company, scopes=scope, restaurant_id=restaurant, name=name
            )
    except RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print("Store this key now; it cannot be shown again.")
    out.print(key)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's first 10 characters")],
) -> None:
    """Revoke a partner key by its prefix; every API worker refuses it within a second."""
    from api.keys import revoke_partner_key
    from partner_signals.db import get_engine

    with get_engine().begin() as conn:
        count = revoke_partner_key(conn, prefix=prefix)
    if not count:
        console.print(f"[red]error:[/red] no live partner key starts with {prefix!r}")
        raise typer.Exit(1)
    out.print(f"{count} key(s) revoked")


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
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)
