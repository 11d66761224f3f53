"""`--json` on the listing and status commands: what the table shows, as JSON a script parses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from partner_signals.adapters import ADAPTERS
from partner_signals.pushes.replay import adapter_counts
from partner_signals.registry import add_restaurant, enable_integration
from partner_signals.settings import Settings, get_settings
from tests.pipelines.service_day import drop_database, new_database

runner = CliRunner()


def run_json(*args: str) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_integrations_adapters(cli_env: None) -> None:
    adapters = run_json("integrations", "adapters")
    assert isinstance(adapters, list)
    assert [a["name"] for a in adapters] == list(ADAPTERS)
    for a in adapters:
        assert a["plans"] and a["description"]
        fields = {f["field"]: f for f in a["fields"]}
        assert {s.name for s in ADAPTERS[a["name"]].fields()} == set(fields)
        assert all(isinstance(f["secret"], bool) for f in fields.values())


def test_deliveries_status(cli_env: None, engine: sa.Engine, settings: Settings, ids: str) -> None:
    company = f"json-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=f"json-r-{ids}", timezone="UTC")
        enable_integration(
            conn,
            key=settings.master_key(),
            company_id=company,
            provider="stripe",
            secrets={"webhook_secrets": [f"whsec_{ids}"]},
        )
        integration_id = conn.execute(
            sa.text(
                "select integration_id from ops.integrations "
                "where company_id = :c and provider = 'stripe'"
            ),
            {"c": company},
        ).scalar_one()
        before = {r["adapter"]: r["dead"] for r in adapter_counts(conn)}.get("webhook", 0)
        conn.execute(
            sa.text(
                """
                insert into ops.outbox (integration_id, adapter, company_id, idempotency_key,
                    event_id, event_type, payload, status)
                values (:i, 'webhook', :c, :k, :k, 'bill.requested', '{}', 'dead')
                """
            ),
            {"i": integration_id, "c": company, "k": f"json-{ids}"},
        )
    rows = run_json("deliveries", "status")
    assert isinstance(rows, list)
    (webhook,) = [r for r in rows if r["adapter"] == "webhook"]
    assert webhook["dead"] >= before + 1 and isinstance(webhook["delivered"], int)


@pytest.fixture
def unmapped_db(server_url: str, cli_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of its own with marts.unmapped_events built (one row)."""
    url = new_database(server_url, "ps_json")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            """
            create schema if not exists marts;
            create table marts.unmapped_events as select
                'acme'::text as company_id, 'stripe'::text as source,
                'charge.odd'::text as provider_event_type, 'unmapped_type'::text as reason,
                3::bigint as events, now() - interval '1 hour' as first_received_at,
                now() as last_received_at, 'raw.webhook_events'::text as raw_table,
                42::bigint as sample_raw_id, array['weird']::text[] as provider_statuses
            """
        )
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        yield url
    finally:
        get_settings.cache_clear()
        drop_database(server_url, url)


def test_unmapped(unmapped_db: str) -> None:
    (row,) = run_json("unmapped")  # type: ignore[misc]
    assert row["company_id"] == "acme" and row["events"] == 3
    assert row["provider_statuses"] == ["weird"] and row["sample_raw_id"] == 42
    assert "T" in row["last_received_at"]  # ISO 8601
    assert run_json("unmapped", "--company", "other") == []


def test_query(cli_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    day = tmp_path / "r-json" / "2026-11-24"
    day.mkdir(parents=True)
    duckdb.sql(
        "copy (select 'r-json' as restaurant_id, 7 as orders, null as note) "
        f"to '{day / 'order_velocity.parquet'}' (format parquet)"
    )
    monkeypatch.setenv("PARTNER_SIGNALS_EXPORTS_DIR", str(tmp_path))
    get_settings.cache_clear()
    rows = run_json("query", "select restaurant_id, orders, note from order_velocity")
    assert rows == [{"restaurant_id": "r-json", "orders": 7, "note": None}]
