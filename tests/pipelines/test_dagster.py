"""Materializing through Dagster (the CLI's `materialize_all`, in-process, recorded in the
PostgreSQL-backed instance) gives the same marts as a plain `dbt build`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from partner_signals.settings import Settings
from pipelines.run import materialize_all
from tests.pipelines.conftest import BuiltDay, snapshot
from tests.pipelines.service_day import drop_database, land, new_database, register


@pytest.fixture(scope="module")
def dagster_settings(
    server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    url = new_database(server_url, "ps_dagster")
    data_dir = tmp_path_factory.mktemp("dagster-data")
    try:
        yield Settings(database_url=url, data_dir=data_dir, exports_dir=data_dir / "exports")
    finally:
        drop_database(server_url, url)


def test_materialize_all_matches_dbt_build(
    built_day: BuiltDay, dagster_settings: Settings, tmp_path: Path
) -> None:
    day = built_day.day
    assert dagster_settings.database_url
    with psycopg.connect(dagster_settings.database_url) as conn:
        register(conn, day.company_id, day.restaurant_id)
        land(conn, day.company_id, day.events)

    output = tmp_path / "progress.txt"
    with output.open("w") as fh:
        ok = materialize_all(dagster_settings, console=Console(file=fh, width=120))
    assert ok, output.read_text()
    assert "checks failed" in output.read_text()

    assert snapshot(dagster_settings.database_url, day.company_id) == snapshot(
        built_day.url, day.company_id
    )
    # The run is recorded in Dagster's own tables, in the same database (one signals run,
    # then the outbox's and the touched days' export run).
    with psycopg.connect(dagster_settings.database_url) as conn:
        runs = dict(
            conn.execute("select pipeline_name, count(*) from dagster.runs group by 1").fetchall()
        )
    assert runs == {"signals_job": 1, "partner_outbox_job": 1, "export_signal_files": 1}
    assert (dagster_settings.data_dir / "dagster" / "dagster.yaml").exists()


def test_quiet_materialize_keeps_dbt_log_off_the_console(
    built_day: BuiltDay, server_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    day = built_day.day
    url = new_database(server_url, "ps_quiet")
    try:
        with psycopg.connect(url) as conn:
            register(conn, day.company_id, day.restaurant_id)
            land(conn, day.company_id, day.events)
        settings = Settings(database_url=url, data_dir=tmp_path, exports_dir=tmp_path / "exports")
        output = tmp_path / "progress.txt"
        with output.open("w") as fh:
            ok = materialize_all(settings, console=Console(file=fh, width=120), quiet=True)
        shown = output.read_text()
        assert ok, shown
        assert "checks failed" in shown
        assert "START sql" not in shown
        assert "START sql" not in capfd.readouterr().out
    finally:
        drop_database(server_url, url)
