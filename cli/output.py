"""What every control-plane command shares: one transaction as the CLI's actor, a refusal as
one `error:` line, and listings as a table or, with `--json`, as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
import sqlalchemy as sa
import typer
from rich.table import Table

from cli.registry import fail, out
from partner_signals.control.actor import Actor
from partner_signals.control.errors import ControlError

T = TypeVar("T")
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


@contextmanager
def control() -> Iterator[tuple[sa.Connection, Actor]]:
    """One transaction as the command line's actor; a refusal becomes one error line."""
    from partner_signals.db import get_engine

    try:
        with get_engine().begin() as conn:
            yield conn, Actor.cli()
    except ControlError as exc:
        raise fail(str(exc)) from None


def emit(rows: Sequence[Any], columns: Sequence[str], *, as_json: bool) -> None:
    """Dataclass rows as a table, or as a JSON array with every field."""
    if as_json:
        out.print_json(orjson.dumps([dataclasses.asdict(r) for r in rows], default=str).decode())
        return
    table = Table(*columns, box=None)
    for row in rows:
        table.add_row(*(cell(getattr(row, c)) for c in columns))
    out.print(table)


def print_json(value: Any) -> None:
    """`value` as JSON on standard output (datetimes as ISO 8601, dataclasses as objects,
    anything else orjson does not know as its text), for `--json`."""
    typer.echo(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode())


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    return str(value)


def call(fn: Callable[[sa.Connection, Actor], T]) -> T:
    with control() as (conn, actor):
        return fn(conn, actor)
