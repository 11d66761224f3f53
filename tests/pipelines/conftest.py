"""Fixtures for the signals pipelines: the scripted service day built once by dbt."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from partner_signals.catalogue import signals as catalogue
from pipelines.resources import DatabaseResource, signals_dbt_resource
from tests.pipelines.service_day import (
    Day,
    drop_database,
    land,
    new_database,
    register,
    service_day,
)

MARTS = [s.model for s in catalogue.signals()]
# Columns that run with the clock while a bill is open or a table occupied.
RUNNING_CLOCKS = {
    "fct_time_to_pay": ("time_to_pay_seconds", "status = 'open'"),
    "fct_table_occupancy": ("occupancy_seconds", "status = 'occupied'"),
}
# Landing bookkeeping, different by design when events arrive (or are loaded) differently.
LANDING_COLUMNS = {"raw_id", "received_at", "loaded_at"}


def run_dbt(url: str, args: list[str], artifacts_dir: Path) -> None:
    """dbt against `url`, the way the Dagster asset starts it; fails the test on error."""
    dbt = signals_dbt_resource(str(artifacts_dir))
    invocation = dbt.invoke(args, database=DatabaseResource(database_url=url), raise_on_error=False)
    invocation.wait()
    if not invocation.is_successful():
        log = "\n".join(str(line) for line in invocation.stream_raw_events())
        pytest.fail(f"dbt {' '.join(args)} failed:\n{log[-6000:]}")


def snapshot(url: str, company_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """A company's rows in every mart and canonical_events, sorted, with the clocks that
    run with now() masked."""
    tables = [("marts", name) for name in MARTS] + [("canonical", "canonical_events")]
    result: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(url) as conn:
        for schema, name in tables:
            columns = [
                row[0]
                for row in conn.execute(
                    """
                    select column_name from information_schema.columns
                    where table_schema = %s and table_name = %s order by ordinal_position
                    """,
                    (schema, name),
                )
                if row[0] not in LANDING_COLUMNS
            ]
            exprs = []
            for column in columns:
                clock = RUNNING_CLOCKS.get(name)
                if clock and clock[0] == column:
                    exprs.append(f"case when {clock[1]} then null else {column} end")
                elif column == "data":
                    exprs.append("data::text")
                else:
                    exprs.append(column)
            order = ", ".join(str(i + 1) for i in range(len(exprs)))
            sql = (
                f"select {', '.join(exprs)} from {schema}.{name} "
                f"where company_id = %s order by {order}"
            )
            result[name] = [tuple(row) for row in conn.execute(sql, (company_id,))]
    return result


@dataclass(frozen=True)
class BuiltDay:
    url: str
    day: Day


@pytest.fixture(scope="session")
def scripted_day_ids() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"co-{suffix}", f"dxb-{suffix}"


@pytest.fixture(scope="session")
def built_day(
    server_url: str,
    scripted_day_ids: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BuiltDay]:
    """The service day landed in order into a database of its own, then one `dbt build`
    (a clean slate: other suites' rows in the shared database cannot fail its tests)."""
    company_id, restaurant_id = scripted_day_ids
    day = service_day(company_id, restaurant_id)
    url = new_database(server_url, "ps_inorder")
    try:
        with psycopg.connect(url) as conn:
            register(conn, company_id, restaurant_id)
            land(conn, company_id, sorted(day.events, key=lambda e: e.occurred_at))
        run_dbt(url, ["build"], tmp_path_factory.mktemp("dbt-inorder"))
        yield BuiltDay(url=url, day=day)
    finally:
        drop_database(server_url, url)
