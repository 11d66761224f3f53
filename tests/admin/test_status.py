"""The health summary over real HTTP and from the CLI: inbound freshness from events that
arrived through ingest, push backlog, scope by token, and failing checks and runs read
from a real Dagster instance's storage."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from partner_signals.control import health, keys
from partner_signals.control.actor import Actor
from partner_signals.registry import enable_integration
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer

runner = CliRunner()


def _pos_event(ingest_url: str, tokens: Tokens, engine: sa.Engine) -> None:
    """One POS event through the real ingest API, with a key made by the keys service."""
    with engine.begin() as conn:
        _, secret = keys.create_ingest_key(conn, Actor.cli(), tokens.company_id)
    event = {
        "event_id": f"health-{tokens.company_id}",
        "type": "table.seated",
        "occurred_at": datetime.now(UTC).isoformat(),
        "restaurant_id": tokens.restaurant_id,
        "table_id": "t-1",
        "data": {"covers": 2},
    }
    response = httpx.post(
        f"{ingest_url}/events",
        content=orjson.dumps(event),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 202), response.text


def _company(body: dict[str, Any], company_id: str) -> dict[str, Any]:
    (found,) = [c for c in body["companies"] if c["company_id"] == company_id]
    return found


def test_a_pos_event_through_ingest_makes_the_company_fresh(
    admin: httpx.Client, ingest_url: str, tokens: Tokens, engine: sa.Engine
) -> None:
    before = time.time()
    _pos_event(ingest_url, tokens, engine)
    response = admin.get(
        f"/admin/v1/companies/{tokens.company_id}/status", headers=bearer(tokens.company_viewer)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["company_id"] for c in body["companies"]] == [tokens.company_id]
    company = body["companies"][0]
    assert company["verdict"] == "ok" and company["reasons"] == []
    (pos,) = [s for s in company["inbound"] if s["source"] == "pos"]
    assert pos["enabled"] is True
    assert datetime.fromisoformat(pos["last_received_at"]).timestamp() >= before - 1
    assert pos["seconds_since"] < 60
    # what every company shares is in each answer
    assert {lag["signal"] for lag in body["signal_lags"]} >= {"order_velocity", "time_to_pay"}
    assert body["verdict"] in ("ok", "attention")
    assert set(body) >= {"failing_checks", "failing_runs", "reasons", "at"}


def test_a_silent_source_and_dead_letters_need_attention(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine, settings: Settings, ids: str
) -> None:
    c = tokens.company_id
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    with engine.begin() as conn:
        integration = enable_integration(
            conn,
            key=settings.master_key(),
            company_id=c,
            provider="stripe",
            secrets={"webhook_secrets": [f"whsec_{ids}"]},
        )
        integration_id = conn.execute(
            sa.text(
                "select integration_id from ops.integrations "
                "where company_id = :c and provider = 'stripe'"
            ),
            {"c": integration.company_id},
        ).scalar_one()
        # Landed five hours ago (the raw tables take inserts only: this is how it lands).
        conn.execute(
            sa.text(
                """
                insert into raw.webhook_events (source, company_id, event_id, event_type,
                    received_at, headers, body)
                values ('stripe', :c, :e, 'payment_intent.succeeded', :at, '{}', '{}')
                """
            ),
            {"c": c, "e": f"evt_{ids}", "at": long_ago},
        )
        delivery = conn.execute(
            sa.text(
                """
                insert into ops.outbox (integration_id, adapter, company_id, idempotency_key,
                    event_id, event_type, payload, status)
                values (:i, 'webhook', :c, :k, :k, 'bill.requested', '{}', 'dead')
                returning delivery_id
                """
            ),
            {"i": integration_id, "c": c, "k": f"dl-{ids}"},
        ).scalar_one()
        conn.execute(
            sa.text(
                "insert into ops.dead_letters (delivery_id, fault, reason) "
                "values (:d, 'partner', 'HTTP 500')"
            ),
            {"d": delivery},
        )
    body = admin.get(f"/admin/v1/companies/{c}/status", headers=bearer(tokens.viewer)).json()
    company = _company(body, c)
    assert company["verdict"] == "attention"
    (stripe,) = [s for s in company["inbound"] if s["source"] == "stripe"]
    assert stripe["enabled"] and stripe["seconds_since"] > 4 * 3600
    assert any(r.startswith("no stripe event for 5 h") for r in company["reasons"]), company
    assert company["pushes"] == [
        {
            "adapter": "webhook",
            "pending": 0,
            "oldest_pending_at": None,
            "oldest_pending_seconds": None,
            "dead_letters_waiting": 1,
        }
    ]
    assert "1 dead letter(s) of webhook waiting for replay" in company["reasons"]
    assert body["verdict"] == "attention"
    assert f"{c}: 1 dead letter(s) of webhook waiting for replay" in body["reasons"]
    # the secret of the integration is in no answer
    assert f"whsec_{ids}" not in str(body)


def test_a_company_bound_token_sees_only_its_company(admin: httpx.Client, tokens: Tokens) -> None:
    everyone = admin.get("/admin/v1/status", headers=bearer(tokens.viewer)).json()
    seen = {c["company_id"] for c in everyone["companies"]}
    assert {tokens.company_id, tokens.other_company_id} <= seen
    bound = admin.get("/admin/v1/status", headers=bearer(tokens.company_viewer)).json()
    assert [c["company_id"] for c in bound["companies"]] == [tokens.company_id]
    assert not any(tokens.other_company_id in r for r in bound["reasons"])
    other = f"/admin/v1/companies/{tokens.other_company_id}/status"
    assert_problem(admin.get(other, headers=bearer(tokens.company_viewer)), 404, "not_found")
    assert_problem(
        admin.get("/admin/v1/companies/no-such-company/status", headers=bearer(tokens.viewer)),
        404,
        "not_found",
    )
    assert_problem(admin.get("/admin/v1/status"), 401, "unauthenticated")


def test_status_from_the_cli_as_json_for_one_company(
    cli_env: None, ingest_url: str, tokens: Tokens, engine: sa.Engine
) -> None:
    _pos_event(ingest_url, tokens, engine)
    result = runner.invoke(app, ["status", "--company", tokens.company_id, "--json"])
    assert result.exit_code in (0, 1), result.output
    body = orjson.loads(result.stdout)
    assert [c["company_id"] for c in body["companies"]] == [tokens.company_id]
    assert result.exit_code == (0 if body["verdict"] == "ok" else 1)
    assert [s["source"] for s in body["companies"][0]["inbound"]] == ["pos"]
    unknown = runner.invoke(app, ["status", "--company", "no-such-company", "--json"])
    assert unknown.exit_code == 1 and unknown.output.startswith("error: no company")


def test_status_from_the_cli_keeps_its_sections_and_adds_the_companies(
    cli_env: None, ingest_url: str, tokens: Tokens, engine: sa.Engine
) -> None:
    _pos_event(ingest_url, tokens, engine)
    result = runner.invoke(app, ["status", "--company", tokens.company_id])
    assert result.exit_code in (0, 1), result.output
    for line in ("signals runs", "last successful run", "export runs", "companies"):
        assert line in result.output
    assert f"✓ {tokens.company_id}" in result.output
    assert "pos" in result.output and "last event" in result.output
    assert tokens.other_company_id not in result.output


# --- failing checks and runs, from a real Dagster instance ---------------------------


@dg.asset(name="health_probe")
def _probe() -> int:
    if os.environ.get("HEALTH_PROBE_FAILS"):
        raise RuntimeError("the probe was told to fail")
    return 1


@dg.asset_check(asset="health_probe", name="probe_within_goal", blocking=False)
def _probe_check() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not os.environ.get("HEALTH_CHECK_FAILS"),
        severity=dg.AssetCheckSeverity.ERROR,
        description="the probe is 90 s behind (goal 60 s)",
    )


@pytest.fixture
def dagster_db(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sa.Engine]:
    """A new migrated database with Dagster's storage in its `dagster` schema."""
    from pipelines.instance import STORAGE_URL_ENV, prepare_dagster_home
    from tests.pipelines.service_day import drop_database, new_database

    url = new_database(server_url, "ps_health")
    monkeypatch.setenv("DAGSTER_HOME", "")
    monkeypatch.setenv(STORAGE_URL_ENV, "")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        prepare_dagster_home(Settings(database_url=url, data_dir=tmp_path))
        yield engine
    finally:
        engine.dispose()
        drop_database(server_url, url)


def _materialize(monkeypatch: pytest.MonkeyPatch, *, check_fails: bool, run_fails: bool) -> None:
    monkeypatch.setenv("HEALTH_CHECK_FAILS", "1" if check_fails else "")
    monkeypatch.setenv("HEALTH_PROBE_FAILS", "1" if run_fails else "")
    with dg.DagsterInstance.get() as instance:
        dg.materialize([_probe, _probe_check], instance=instance, raise_on_error=False)


def test_failing_checks_and_runs_come_from_dagster(
    dagster_db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def summary() -> health.Health:
        with dagster_db.begin() as conn:
            return health.summary(conn, Actor.cli())

    _materialize(monkeypatch, check_fails=False, run_fails=False)
    assert summary().failing_checks == [] and summary().failing_runs == []
    _materialize(monkeypatch, check_fails=True, run_fails=False)
    found = summary()
    (check,) = found.failing_checks
    assert (check.asset, check.check, check.severity) == (
        "health_probe",
        "probe_within_goal",
        "ERROR",
    )
    assert check.description == "the probe is 90 s behind (goal 60 s)"
    assert check.evaluated_at is not None
    assert found.verdict == "attention"
    assert "check probe_within_goal on health_probe failed: the probe is 90 s behind " in (
        " ".join(found.reasons)
    )
    _materialize(monkeypatch, check_fails=False, run_fails=True)
    found = summary()
    (run,) = found.failing_runs
    assert run.job == "__ephemeral_asset_job__" and run.failed_at is not None
    # the check's latest evaluation is still the failed one (the failed run never checked)
    assert [c.check for c in found.failing_checks] == ["probe_within_goal"]
    _materialize(monkeypatch, check_fails=False, run_fails=False)
    found = summary()
    assert found.failing_checks == [] and found.failing_runs == []
