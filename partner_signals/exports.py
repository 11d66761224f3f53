"""Exported signal files: Parquet and CSV per restaurant and business day, and DuckDB over them.

Layout: <exports_dir>/<restaurant_id>/<business_date>/<signal>.<parquet|csv>
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from partner_signals.catalogue import dbt_vars
from partner_signals.catalogue import signals as catalogue

# Which mart each exported signal comes from, and its business-day column: the signal
# catalogue's exported signals (each mart's yml says whether it is exported).
EXPORTED_SIGNALS: dict[str, tuple[str, str]] = {
    s.name: (s.relation, s.export_day_column)
    for s in catalogue.exported()
    if s.export_day_column is not None
}
FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    name: str  # relative to the exports dir, with forward slashes
    restaurant_id: str
    business_date: str
    signal: str
    format: str


def list_exports(root: Path) -> Iterator[ExportedFile]:
    if not root.is_dir():
        return
    for path in sorted(root.glob("*/*/*.*")):
        signal, _, fmt = path.name.partition(".")
        if fmt not in FORMATS or signal not in EXPORTED_SIGNALS:
            continue
        restaurant_id, business_date = path.parent.parent.name, path.parent.name
        yield ExportedFile(
            path=path,
            name=f"{restaurant_id}/{business_date}/{path.name}",
            restaurant_id=restaurant_id,
            business_date=business_date,
            signal=signal,
            format=fmt,
        )


def export_day(engine: sa.Engine, root: Path, business_date: date) -> list[Path]:
    """Write every signal of `business_date` for every restaurant that has rows. Files are
    written aside and renamed into place, so a reader never sees half a file."""
    # polars is imported here, not at the top: every Dagster run process and code server
    # loads this module with the definitions, and most runs write no file (0.5 s a load).
    import polars as pl

    written: list[Path] = []
    with engine.connect() as conn:
        for signal, (table, day_column) in EXPORTED_SIGNALS.items():
            frame = pl.read_database(
                f"select * from {table} where {day_column} = :day order by 1, 2",
                conn,
                execute_options={"parameters": {"day": business_date}},
            )
            if frame.is_empty():
                continue
            for (restaurant_id,), part in frame.group_by(["restaurant_id"], maintain_order=True):
                folder = root / str(restaurant_id) / business_date.isoformat()
                folder.mkdir(parents=True, exist_ok=True)
                for fmt in FORMATS:
                    target = folder / f"{signal}.{fmt}"
                    tmp = target.with_suffix(f".{fmt}.tmp")
                    if fmt == "parquet":
                        part.write_parquet(tmp)
                    else:
                        part.write_csv(tmp)
                    tmp.replace(target)
                    written.append(target)
    return written


def export_days(engine: sa.Engine, root: Path, days: Iterable[date]) -> list[Path]:
    return [path for day in days for path in export_day(engine, root, day)]


def touched_business_days(
    conn: sa.Connection,
    *,
    since: datetime | None,
    until: datetime,
    table: str = "canonical.canonical_events",
) -> list[date]:
    """The business days whose signal rows can have changed with the canonical events
    loaded in (since, until]: per restaurant, in its time zone, from the day of its
    earliest such event less the incremental margin to the day of its latest plus the
    margin. The margin is the one the incremental models recompute from
    (`incremental_margin_hours`): a visit seated before midnight and cleared after
    changes the earlier day's row."""
    variables = dbt_vars()
    rows = conn.execute(
        sa.text(
            f"""
            with loaded as (
                select restaurant_id, min(occurred_at) as first_at, max(occurred_at) as last_at
                from {table}
                where (cast(:since as timestamptz) is null or loaded_at > :since)
                    and loaded_at <= :until
                group by restaurant_id
            ),
            spans as (
                select
                    ((loaded.first_at - make_interval(hours => :margin))
                        at time zone coalesce(restaurants.timezone, 'UTC')
                        - make_interval(hours => :day_start))::date as first_day,
                    ((loaded.last_at + make_interval(hours => :margin))
                        at time zone coalesce(restaurants.timezone, 'UTC')
                        - make_interval(hours => :day_start))::date as last_day
                from loaded
                left join ops.restaurants as restaurants using (restaurant_id)
            )
            select distinct day::date
            from spans, generate_series(first_day, last_day, interval '1 day') as day
            order by 1
            """
        ),
        {
            "since": since,
            "until": until,
            "margin": int(variables["incremental_margin_hours"]),
            "day_start": int(variables["business_day_start_hours"]),
        },
    )
    return [row[0] for row in rows]


def query_exports(root: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run DuckDB SQL over the exported Parquet files: each signal is a view of that
    name (order_velocity, time_to_pay, ...) across every restaurant and day."""
    import duckdb

    conn = duckdb.connect()
    try:
        for signal in EXPORTED_SIGNALS:
            files = sorted(str(p) for p in root.glob(f"*/*/{signal}.parquet"))
            if files:
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                conn.execute(
                    f"create view {signal} as "
                    f"select * from read_parquet([{listing}], union_by_name = true)"
                )
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    finally:
        conn.close()
