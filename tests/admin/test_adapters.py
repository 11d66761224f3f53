"""Outbound adapters over real HTTP: plan locks, enable with the adapter's own models,
exclusions, a test against a real local partner, status from real deliveries, roles and
company scope, and secrets kept out of every answer, the audit trail and the logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from cli.main import app
from partner_signals.pushes import enqueue_events
from partner_signals.pushes.worker import WorkerOptions, deliver_due_sync
from partner_signals.registry import add_restaurant, ensure_company
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer
from tests.pushes.conftest import (  # noqa: F401 - the partners fixture
    API_KEY,
    WEBHOOK_SECRET,
    WEBHOOK_SECRET_NEXT,
    Partner,
    Tenant,
    event,
    partners,
)

runner = CliRunner()


def url(tokens: Tokens, tail: str = "") -> str:
    return f"/admin/v1/companies/{tokens.company_id}/adapters{tail}"


def second_restaurant(engine: sa.Engine, tokens: Tokens) -> str:
    other = tokens.restaurant_id + "-2"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=tokens.company_id, restaurant_id=other, timezone="UTC")
    return other


def enable_webhook(admin: httpx.Client, tokens: Tokens, target: str, **body: object) -> dict:  # type: ignore[type-arg]
    answer = admin.post(
        url(tokens, "/webhook/enable"),
        json={"config": {"url": target}, "secrets": {"secrets": [WEBHOOK_SECRET]}, **body},
        headers=bearer(tokens.operator),
    )
    assert answer.status_code == 200, answer.text
    assert WEBHOOK_SECRET not in answer.text
    result: dict = answer.json()  # type: ignore[type-arg]
    return result


def sealed(engine: sa.Engine, company_id: str) -> bytes:
    with engine.connect() as conn:
        return bytes(
            conn.execute(
                sa.text(
                    "select secret_ciphertext from ops.integrations "
                    "where company_id = :c and provider = 'webhook'"
                ),
                {"c": company_id},
            ).scalar_one()
        )


def trail(engine: sa.Engine, company_id: str) -> str:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select a::text from ops.audit_log a where company_id = :c"),
            {"c": company_id},
        ).scalars()
        return "\n".join(rows)


def test_the_list_shows_plan_locks_and_the_plan_that_unlocks(
    admin: httpx.Client, tokens: Tokens
) -> None:
    listed = admin.get(url(tokens), headers=bearer(tokens.company_viewer))
    assert listed.status_code == 200, listed.text
    by_name = {a["adapter"]: a for a in listed.json()}
    assert set(by_name) == {"webhook", "workforce", "crm", "messaging"}
    # a new company is on the standard plan: messaging needs enterprise
    assert (by_name["messaging"]["plan_locked"], by_name["messaging"]["unlocked_by"]) == (
        True,
        "enterprise",
    )
    assert by_name["webhook"]["plan_locked"] is False and by_name["webhook"]["enabled"] is False
    # a company-bound token does not see another company; unknown names are 404
    other = f"/admin/v1/companies/{tokens.other_company_id}/adapters"
    assert_problem(admin.get(other, headers=bearer(tokens.company_viewer)), 404, "not_found")
    assert_problem(
        admin.get(url(tokens, "/telex"), headers=bearer(tokens.viewer)), 404, "not_found"
    )


def test_enable_checks_role_plan_and_the_adapters_own_models(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine
) -> None:
    body = {"config": {"url": "http://127.0.0.1:9/h"}, "secrets": {"secrets": [WEBHOOK_SECRET]}}
    assert_problem(
        admin.post(url(tokens, "/webhook/enable"), json=body, headers=bearer(tokens.viewer)),
        403,
        "forbidden",
    )
    locked = admin.post(
        url(tokens, "/messaging/enable"),
        json={
            "config": {"from": "+15550001111"},
            "secrets": {"account_sid": "AC" + "0" * 32, "auth_token": "x" * 20},
        },
        headers=bearer(tokens.operator),
    )
    problem = assert_problem(locked, 403, "plan_locked")
    assert "enterprise" in str(problem["detail"]) and problem["unlocked_by"] == "enterprise"

    bad = admin.post(
        url(tokens, "/webhook/enable"),
        json={"config": {"url": "ftp://nope", "colour": "red"}, "secrets": {"secrets": ["x"]}},
        headers=bearer(tokens.operator),
    )
    errors = assert_problem(bad, 422, "validation_failed")["errors"]
    fields = {e["field"] for e in errors}  # type: ignore[attr-defined]
    assert fields == {"config.url", "config.colour", "secrets.secrets"}, errors
    missing = admin.post(
        url(tokens, "/workforce/enable"),
        json={"config": {"url": "http://127.0.0.1:9/w"}},
        headers=bearer(tokens.operator),
    )
    assert assert_problem(missing, 422, "validation_failed")["errors"] == [
        {"field": "secrets.api_key", "message": "is required"}
    ]
    short = admin.post(
        url(tokens, "/workforce/enable"),
        json={"config": {"url": "http://127.0.0.1:9/w"}, "secrets": {"api_key": "short-KEY-9"}},
        headers=bearer(tokens.operator),
    )
    assert assert_problem(short, 422, "validation_failed")["errors"][0]["field"] == (  # type: ignore[index]
        "secrets.api_key"
    )
    assert "short-KEY-9" not in short.text
    assert_problem(
        admin.post(
            f"/admin/v1/companies/{tokens.other_company_id}/adapters/webhook/enable",
            json=body,
            headers=bearer(tokens.company_admin),
        ),
        404,
        "not_found",
    )
    assert_problem(
        admin.post(
            url(tokens, "/webhook/enable"),
            json={**body, "restaurant_id": "not-ours"},
            headers=bearer(tokens.operator),
        ),
        404,
        "not_found",
    )

    done = enable_webhook(admin, tokens, "http://127.0.0.1:9/h")
    assert done["enabled"] and done["company_wide"]
    (scope,) = done["scopes"]
    assert scope["config"] == {"url": "http://127.0.0.1:9/h"}
    assert scope["secrets_set"] == ["secrets"]
    # reconfiguring without secrets keeps the stored ones
    before = sealed(engine, tokens.company_id)
    again = admin.post(
        url(tokens, "/webhook/enable"),
        json={"config": {"url": "http://127.0.0.1:9/other"}},
        headers=bearer(tokens.operator),
    )
    assert again.status_code == 200, again.text
    assert again.json()["scopes"][0]["secrets_set"] == ["secrets"]
    assert sealed(engine, tokens.company_id) == before  # not even re-sealed
    assert WEBHOOK_SECRET not in trail(engine, tokens.company_id)
    assert "adapters.enable" in trail(engine, tokens.company_id)


def test_per_restaurant_company_wide_exclusions_and_disable(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine
) -> None:
    other = second_restaurant(engine, tokens)
    # exclusions belong to a company-wide adapter
    assert_problem(
        admin.post(
            url(tokens, "/webhook/exclude"),
            json={"restaurant_id": other},
            headers=bearer(tokens.operator),
        ),
        409,
        "conflict",
    )
    one = enable_webhook(admin, tokens, "http://127.0.0.1:9/r", restaurant_id=other)
    assert (one["company_wide"], one["restaurants"]) == (False, [other])
    enable_webhook(admin, tokens, "http://127.0.0.1:9/all")
    for _ in range(2):  # idempotent
        excluded = admin.post(
            url(tokens, "/webhook/exclude"),
            json={"restaurant_id": other},
            headers=bearer(tokens.operator),
        )
        assert excluded.status_code == 200, excluded.text
    wide = next(s for s in excluded.json()["scopes"] if s["restaurant_id"] is None)
    assert wide["excluded_restaurants"] == [other]
    assert_problem(
        admin.post(
            url(tokens, "/webhook/exclude"),
            json={"restaurant_id": "adm-elsewhere"},
            headers=bearer(tokens.operator),
        ),
        404,
        "not_found",
    )
    included = admin.post(
        url(tokens, "/webhook/include"),
        json={"restaurant_id": other},
        headers=bearer(tokens.operator),
    ).json()
    assert all(s["excluded_restaurants"] == [] for s in included["scopes"])

    off = admin.post(
        url(tokens, "/webhook/disable"),
        json={"restaurant_id": other},
        headers=bearer(tokens.operator),
    ).json()
    assert (off["company_wide"], off["restaurants"]) == (True, [])
    off = admin.post(url(tokens, "/webhook/disable"), headers=bearer(tokens.operator)).json()
    assert off["enabled"] is False
    assert_problem(
        admin.post(url(tokens, "/crm/disable"), headers=bearer(tokens.operator)), 404, "not_found"
    )
    entries = admin.get(
        "/admin/v1/audit",
        params={"company_id": tokens.company_id, "action": "adapters."},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    actions = [e["action"] for e in reversed(entries)]
    assert actions == [
        "adapters.enable",
        "adapters.enable",
        "adapters.exclude",  # once: the second exclude changed nothing
        "adapters.include",
        "adapters.disable",
        "adapters.disable",
    ]
    assert entries[0]["actor"] == f"operator-{tokens.company_id.removeprefix('adm-')}"


def test_test_connection_signs_a_ping_to_the_real_partner(
    admin: httpx.Client,
    tokens: Tokens,
    engine: sa.Engine,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    partner = partners()
    enable_webhook(admin, tokens, partner.url + "/hooks")
    ok = admin.post(url(tokens, "/webhook/test"), headers=bearer(tokens.operator))
    assert ok.status_code == 200, ok.text
    assert ok.json()["ok"] is True and ok.json()["status_code"] == 200
    (ping,) = partner.received
    assert ping.path == "/hooks"
    assert Webhook(WEBHOOK_SECRET).verify(ping.body, ping.headers)["type"] == (
        "partner_signals.test"
    )

    partner.respond = lambda r: (401, {}, b"who are you")
    refused = admin.post(url(tokens, "/webhook/test"), headers=bearer(tokens.operator)).json()
    assert (refused["ok"], refused["status_code"]) == (False, 401)
    assert_problem(
        admin.post(url(tokens, "/webhook/test"), headers=bearer(tokens.viewer)), 403, "forbidden"
    )
    assert_problem(
        admin.post(url(tokens, "/crm/test"), headers=bearer(tokens.operator)), 404, "not_found"
    )
    assert trail(engine, tokens.company_id).count("adapters.test") == 2


def test_status_counts_the_last_hour_from_real_deliveries(
    admin: httpx.Client,
    tokens: Tokens,
    engine: sa.Engine,
    settings: Settings,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    partner = partners(
        respond=lambda r: (500, {}, b"down") if b"order.paid" in r.body else (200, {}, b"")
    )
    enable_webhook(admin, tokens, partner.url)
    empty = admin.get(url(tokens, "/webhook/status"), headers=bearer(tokens.company_viewer))
    assert empty.json()["success_rate_last_hour"] is None and empty.json()["pending"] == 0
    tenant = Tenant(tokens.company_id, tokens.restaurant_id, tokens.restaurant_id)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created"), event(tenant, "order.paid")])
    summary = deliver_due_sync(
        engine, key=settings.master_key(), company_id=tokens.company_id, options=WorkerOptions()
    )
    assert summary.delivered == 1

    status = admin.get(url(tokens, "/webhook/status"), headers=bearer(tokens.company_viewer))
    assert status.status_code == 200, status.text
    body = status.json()
    assert (body["delivered_last_hour"], body["failures_last_hour"]) == (1, 1)
    assert body["success_rate_last_hour"] == 0.5
    assert body["pending"] == 1 and body["dead_letters_waiting"] == 0  # the 500 retries
    assert datetime.fromisoformat(body["oldest_pending_at"]) <= datetime.now(UTC)
    assert datetime.fromisoformat(body["last_success_at"]) <= datetime.now(UTC)
    # the other company's adapter of the same name is not counted
    other = admin.get(
        f"/admin/v1/companies/{tokens.other_company_id}/adapters/webhook/status",
        headers=bearer(tokens.viewer),
    ).json()
    assert (other["delivered_last_hour"], other["pending"]) == (0, 0)


def test_the_adapters_cli_does_the_same(
    cli_env: None,
    engine: sa.Engine,
    ids: str,
    caplog: pytest.LogCaptureFixture,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    caplog.set_level(logging.DEBUG)
    partner = partners()
    company, restaurant = f"clia-{ids}", f"clia-r-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=restaurant, timezone="UTC")
        add_restaurant(conn, company_id=company, restaurant_id=restaurant + "-2", timezone="UTC")
        ensure_company(conn, company_id=company, plan="standard")

    def run(*args: str, code: int = 0, input: str | None = None) -> str:
        result = runner.invoke(app, list(args), input=input)
        assert result.exit_code == code, result.output
        return result.output

    outputs = [
        run("adapters", "enable", "webhook", "--company", company, "--url", partner.url,
            "--secret", "-", input=WEBHOOK_SECRET + "\n"),
        run("adapters", "enable", "webhook", "--company", company, "--url", partner.url,
            "--secret", WEBHOOK_SECRET_NEXT, "--keep-previous"),
        run("adapters", "enable", "workforce", "--company", company, "--restaurant", restaurant,
            "--url", partner.url, "--api-key", API_KEY),
        run("adapters", "exclude", "webhook", "--company", company, "--restaurant", restaurant),
        run("adapters", "test", "webhook", "--company", company),
        run("adapters", "list", "--company", company, "--json"),
        run("adapters", "status", "webhook", "--company", company, "--json"),
        run("adapters", "enable", "messaging", "--company", company, "--from-number",
            "+15550001111", "--account-sid", "AC" + "0" * 32, "--auth-token", "t" * 20, code=1),
        run("adapters", "enable", "crm", "--company", company, "--url", "ftp://x",
            "--api-key", API_KEY, code=1),
        run("adapters", "include", "telex", "--company", company, "--restaurant", restaurant,
            code=1),
    ]  # fmt: skip
    assert outputs[4].startswith("webhook ok: HTTP 200")
    # the rotation kept the first secret after the new one: the ping verifies with both
    (ping,) = partner.received
    Webhook(WEBHOOK_SECRET).verify(ping.body, ping.headers)
    Webhook(WEBHOOK_SECRET_NEXT).verify(ping.body, ping.headers)
    listed = {a["adapter"]: a for a in orjson.loads(outputs[5])}
    assert listed["workforce"]["restaurants"] == [restaurant]
    assert listed["webhook"]["scopes"][0]["excluded_restaurants"] == [restaurant]
    assert orjson.loads(outputs[6])["enabled"] is True
    for refused in outputs[7:]:
        # one error line (rich may wrap a long one at the terminal's width), no traceback
        assert refused.startswith("error: ") and "Traceback" not in refused, refused
    assert "enterprise" in outputs[7] and "config.url" in outputs[8]
    everything = "\n".join(outputs) + caplog.text + trail(engine, company)
    for secret in (WEBHOOK_SECRET, WEBHOOK_SECRET_NEXT, API_KEY, "t" * 20):
        assert secret not in everything
    assert "adapters.exclude" in trail(engine, company)
