"""The incremental protocol: every model that uses it links its page and records its
watermark; an intermediate is not built while its table of before 0007 is in canonical."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
import pytest

from pipelines.project import ensure_manifest
from pipelines.resources import DatabaseResource, signals_dbt_resource
from tests.pipelines.service_day import drop_database, new_database

PAGE_HEADING = "## The incremental protocol"


def models_using(manifest: dict[str, Any], macro: str) -> set[str]:
    unique_id = f"macro.partner_signals.{macro}"
    return {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and unique_id in node["depends_on"]["macros"]
    }


def test_every_model_using_the_protocol_references_its_page() -> None:
    manifest = orjson.loads(ensure_manifest().read_bytes())
    users = models_using(manifest, "incremental_scope") | models_using(
        manifest, "order_models_scope"
    )
    assert {"int_visits", "int_scope_orders", "fct_order_velocity"} <= users
    descriptions = {
        node["name"]: node["description"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    assert {name for name in users if PAGE_HEADING not in descriptions[name]} == set()


def test_every_scoped_model_records_its_watermark() -> None:
    """Without record_watermark a model has no watermark, and every run recomputes it whole."""
    manifest = orjson.loads(ensure_manifest().read_bytes())
    assert models_using(manifest, "incremental_scope") <= models_using(manifest, "record_watermark")


def test_an_intermediate_is_not_built_beside_its_table_of_before_0007(
    server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = new_database(server_url, "ps_unmigrated")
    try:
        # A database at 0006 that has been built: its intermediates are in canonical.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create table canonical.int_visits (visit_id text)")
        dbt = signals_dbt_resource(str(tmp_path_factory.mktemp("dbt-unmigrated")))
        invocation = dbt.invoke(
            ["run", "--select", "int_visits"],
            database=DatabaseResource(database_url=url),
            raise_on_error=False,
        )
        invocation.wait()
        assert not invocation.is_successful()
        results = invocation.get_artifact("run_results.json")["results"]
        (model,) = [r for r in results if r["unique_id"] == "model.partner_signals.int_visits"]
        assert model["status"] == "error"
        assert "partner-signals db upgrade" in model["message"]
        with psycopg.connect(url) as conn:
            assert conn.execute("select to_regclass('intermediate.int_visits')").fetchone() == (
                None,
            )
    finally:
        drop_database(server_url, url)
