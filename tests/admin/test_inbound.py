"""Inbound integrations over real HTTP: list, enable, disable, rotate with a grace period,
test, status; a real ingest accepts what they say; roles, scope and bad values; secrets
never in an answer, the trail or the logs."""

from __future__ import annotations

import getpass
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from partner_signals.control import inbound
from partner_signals.providers import PROVIDERS
from partner_signals.providers.paypal import make_test_certificate
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer

runner = CliRunner()


def new_secret() -> str:
    return f"whsec_{uuid.uuid4().hex}"


def careem(ingest: httpx.Client, company: str, restaurant: str, secret: str) -> httpx.Response:
    body = orjson.dumps(
        {
            "event_id": uuid.uuid4().hex,
            "event_type": "order.created",
            "order": {"store_id": restaurant},
        }
    )
    headers = PROVIDERS["careem"].sign(body, secret, time.time())
    return ingest.post(
        f"/webhooks/careem/{company}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )


def refusals_until_accepted(status: Callable[[], int]) -> int:
    """How many tries ingest refused before `status()` answered 200; fails past a second
    (the time the NOTIFY of a change has to reach ingest)."""
    deadline = time.monotonic() + 1.0
    refused = 0
    while status() != 200:
        refused += 1
        assert time.monotonic() < deadline, "ingest did not see the change within a second"
        time.sleep(0.02)
    return refused


def landed(engine: sa.Engine, company: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("select count(*) from raw.webhook_events where company_id = :c"),
                {"c": company},
            ).scalar_one()
        )


def test_list_enable_roles_scope_and_bad_values(admin: httpx.Client, tokens: Tokens) -> None:
    base = f"/admin/v1/companies/{tokens.company_id}/integrations"
    secret = new_secret()
    listed = admin.get(base, headers=bearer(tokens.company_viewer)).json()
    assert [i["name"] for i in listed] == sorted(PROVIDERS)
    assert not any(i["enabled"] for i in listed)
    assert {i["name"]: i["kind"] for i in listed}["stripe"] == "payment"
    assert {i["name"]: i["kind"] for i in listed}["deliveroo"] == "delivery"

    for token in (tokens.viewer, tokens.company_viewer):
        refused = admin.post(
            f"{base}/stripe/enable", json={"secret": secret}, headers=bearer(token)
        )
        assert_problem(refused, 403, "forbidden")
    missing = admin.post(f"{base}/stripe/enable", json={}, headers=bearer(tokens.operator))
    assert [e["field"] for e in assert_problem(missing, 422, "validation_failed")["errors"]] == [  # type: ignore[union-attr]
        "secret"
    ]
    assert_problem(
        admin.post(
            f"{base}/nosuch/enable", json={"secret": secret}, headers=bearer(tokens.operator)
        ),
        404,
        "not_found",
    )
    # adapters are not inbound providers
    assert_problem(admin.get(f"{base}/webhook", headers=bearer(tokens.viewer)), 404, "not_found")
    foreign = admin.post(
        f"{base}/stripe/enable",
        json={"secret": secret, "restaurant_id": f"adm-or-{tokens.company_id[4:]}"},
        headers=bearer(tokens.operator),
    )
    assert_problem(foreign, 404, "not_found")

    enabled = admin.post(
        f"{base}/stripe/enable", json={"secret": secret}, headers=bearer(tokens.operator)
    )
    assert enabled.status_code == 200, enabled.text
    view = enabled.json()
    assert view["enabled"] and view["restaurants"] is None
    assert 0 <= view["secret_age_seconds"] < 60
    assert view["webhook_path"] == f"/webhooks/stripe/{tokens.company_id}"
    assert secret not in enabled.text

    # a company-bound token does not see another company's integrations
    other = f"/admin/v1/companies/{tokens.other_company_id}/integrations"
    assert_problem(admin.get(other, headers=bearer(tokens.company_viewer)), 404, "not_found")
    foreign_change = admin.post(
        f"{other}/stripe/enable", json={"secret": secret}, headers=bearer(tokens.company_admin)
    )
    assert_problem(foreign_change, 404, "not_found")
    # disabling twice is a no-op; a provider never enabled is unknown
    off = admin.post(f"{base}/stripe/disable", headers=bearer(tokens.operator)).json()
    assert off["enabled"] is False
    assert admin.post(f"{base}/stripe/disable", headers=bearer(tokens.operator)).status_code == 200
    assert_problem(
        admin.post(f"{base}/jahez/disable", headers=bearer(tokens.operator)), 404, "not_found"
    )
    # re-enabling without a secret uses the stored one
    again = admin.post(f"{base}/stripe/enable", json={}, headers=bearer(tokens.operator))
    assert again.json()["enabled"] is True


def test_rotation_keeps_the_old_secret_through_its_grace(
    admin: httpx.Client, ingest_url: str, tokens: Tokens, engine: sa.Engine, settings: Settings
) -> None:
    base = f"/admin/v1/companies/{tokens.company_id}/integrations/careem"
    op = bearer(tokens.operator)
    company, restaurant = tokens.company_id, tokens.restaurant_id
    old, new, newest = new_secret(), new_secret(), new_secret()
    assert admin.post(f"{base}/enable", json={"secret": old}, headers=op).status_code == 200
    rotated = admin.post(f"{base}/rotate", json={"secret": new, "grace_seconds": 3600}, headers=op)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_expires_at"] is not None
    same = admin.post(f"{base}/rotate", json={"secret": new}, headers=op)
    assert_problem(same, 422, "validation_failed")
    too_long = admin.post(
        f"{base}/rotate", json={"secret": newest, "grace_seconds": -1}, headers=op
    )
    assert_problem(too_long, 422, "validation_failed")

    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        assert careem(ingest, company, restaurant, old).status_code == 200
        assert careem(ingest, company, restaurant, new).status_code == 200
        # no grace this time: the previous secret (new) stops at once
        admin.post(f"{base}/rotate", json={"secret": newest, "grace_seconds": 0}, headers=op)
        # ingest hears the change by NOTIFY, within a second
        late = refusals_until_accepted(
            lambda: careem(ingest, company, restaurant, newest).status_code
        )
        refused = careem(ingest, company, restaurant, new)
        assert refused.status_code == 401, refused.text
        assert careem(ingest, company, restaurant, old).status_code == 401

    status = admin.get(f"{base}/status", headers=bearer(tokens.viewer)).json()
    assert status["events_last_hour"] == 3 and status["events_last_day"] == 3
    refused = 2 + late
    assert status["rejections"] == [
        {"reason": "invalid_signature", "last_hour": refused, "last_day": refused}
    ]
    assert status["previous_secret_expires_at"] is None

    # a grace that ends: a real ingest stops accepting the previous secret then, though
    # it holds the credentials in its cache (nothing in the database changes at that time)
    grace = admin.post(f"{base}/rotate", json={"secret": old, "grace_seconds": 2}, headers=op)
    ends = datetime.fromisoformat(grace.json()["previous_secret_expires_at"])
    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        refusals_until_accepted(lambda: careem(ingest, company, restaurant, old).status_code)
        assert careem(ingest, company, restaurant, newest).status_code == 200
        time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.05)
        assert careem(ingest, company, restaurant, newest).status_code == 401
        assert careem(ingest, company, restaurant, old).status_code == 200
    # ingest's reading of the credentials is this function's, on the same query
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(inbound.CREDENTIALS_SQL, (company, "careem")).all()
    creds = inbound.webhook_credentials(settings.master_key(), company, "careem", rows)
    assert creds is not None and creds.secrets == (old,) and creds.renew_at is None

    trail = admin.get(
        "/admin/v1/audit",
        params={"company_id": company, "action": "integrations.rotate"},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [e["details"]["grace_seconds"] for e in reversed(trail)] == [3600, 0, 2]
    text = orjson.dumps(trail).decode()
    assert not any(s in text for s in (old, new, newest))


def test_the_test_signs_verifies_maps_and_lands_nothing(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine, ids: str
) -> None:
    base = f"/admin/v1/companies/{tokens.company_id}/integrations"
    op = bearer(tokens.operator)
    assert_problem(admin.post(f"{base}/talabat/test", headers=op), 409, "conflict")
    admin.post(f"{base}/talabat/enable", json={"secret": new_secret()}, headers=op)
    admin.post(f"{base}/stripe/enable", json={"secret": new_secret()}, headers=op)
    assert_problem(
        admin.post(f"{base}/talabat/test", headers=bearer(tokens.viewer)), 403, "forbidden"
    )

    result = admin.post(f"{base}/talabat/test", headers=op).json()
    assert result["verified"] and result["accepted"] and not result["landed"]
    assert result["restaurant_id"] == tokens.restaurant_id
    assert result["mapping"] == "mapped"
    assert result["canonical_type"] == "delivery.status_changed"
    assert result["canonical_status"] in {"received", "accepted"}
    assert result["signature_headers"] == ["X-Talabat-Signature"] or result["signature_headers"]

    unknown = admin.post(
        f"{base}/talabat/test", json={"event_type": "order_teleported"}, headers=op
    ).json()
    assert unknown["verified"] and unknown["mapping"] == "unmapped"
    assert unknown["canonical_status"] is None

    stripe = admin.post(f"{base}/stripe/test", headers=op).json()
    assert stripe["verified"] and stripe["event_type"] == "payment_intent.succeeded"
    assert stripe["event_id"].startswith("test_")
    ignored = admin.post(
        f"{base}/stripe/test", json={"event_type": "payment_intent.created"}, headers=op
    ).json()
    assert ignored["mapping"] == "ignored"
    assert landed(engine, tokens.company_id) == 0

    cert, _ = make_test_certificate()
    paypal = admin.post(
        f"{base}/paypal/enable",
        json={"paypal_webhook_id": f"WH-{ids}", "paypal_certificate": cert},
        headers=op,
    )
    assert paypal.status_code == 200, paypal.text
    assert "private key" in str(
        assert_problem(admin.post(f"{base}/paypal/test", headers=op), 409, "conflict")["detail"]
    )
    bad_cert = admin.post(
        f"{base}/paypal/enable",
        json={"paypal_webhook_id": "WH-1", "paypal_certificate": "not a pem"},
        headers=op,
    )
    assert assert_problem(bad_cert, 422, "validation_failed")["errors"] == [
        {"field": "paypal_certificate", "message": "a PEM X.509 certificate"}
    ]


def test_a_restaurant_scoped_integration_takes_only_its_restaurants(
    admin: httpx.Client, ingest_url: str, tokens: Tokens, engine: sa.Engine, ids: str
) -> None:
    base = f"/admin/v1/companies/{tokens.company_id}/integrations/careem"
    op = bearer(tokens.operator)
    second = f"second-{ids}"
    admin.post(
        f"/admin/v1/companies/{tokens.company_id}/restaurants",
        json={"restaurant_id": second, "timezone": "UTC"},
        headers=op,
    )
    secret = new_secret()
    admin.post(f"{base}/enable", json={"secret": secret, "restaurant_id": second}, headers=op)
    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        assert careem(ingest, tokens.company_id, second, secret).status_code == 200
        outside = careem(ingest, tokens.company_id, tokens.restaurant_id, secret)
        assert outside.status_code == 404, outside.text
        assert outside.json()["code"] == "restaurant_not_enabled"
    refused = admin.get(f"{base}/status", headers=bearer(tokens.viewer)).json()["rejections"]
    assert {r["reason"]: r["last_hour"] for r in refused} == {"restaurant_not_enabled": 1}
    out_of_scope = admin.post(
        f"{base}/test", json={"restaurant_id": tokens.restaurant_id}, headers=op
    ).json()
    assert out_of_scope["verified"] and not out_of_scope["accepted"]
    view = admin.get(base, headers=bearer(tokens.viewer)).json()
    assert view["restaurants"] == [second]
    assert [(s["restaurant_id"], s["enabled"]) for s in view["scopes"]] == [(second, True)]
    assert landed(engine, tokens.company_id) == 1


def test_secrets_never_reach_answers_trail_or_logs(
    admin: httpx.Client,
    tokens: Tokens,
    engine: sa.Engine,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fastapi.testclient import TestClient

    from api.admin.app import create_app

    caplog.set_level(logging.DEBUG)
    first, second = new_secret(), new_secret()
    base = f"/admin/v1/companies/{tokens.company_id}/integrations/deliveroo"
    op = bearer(tokens.operator)
    answers = []
    # in this process, so every log record of the admin app is captured
    with TestClient(create_app(settings)) as client:
        answers.append(client.post(f"{base}/enable", json={"secret": first}, headers=op))
        answers.append(client.post(f"{base}/rotate", json={"secret": second}, headers=op))
        answers.append(client.post(f"{base}/test", headers=op))
        answers.append(client.get(f"{base}/status", headers=op))
        answers.append(client.get(base, headers=op))
        answers.append(client.post(f"{base}/rotate", json={"secret": second}, headers=op))
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 422]
    with engine.connect() as conn:
        trail = conn.execute(
            sa.text("select before, after, details from ops.audit_log where company_id = :c"),
            {"c": tokens.company_id},
        ).all()
        stored = conn.execute(
            sa.text(
                "select config::text, secret_ciphertext from ops.integrations where company_id = :c"
            ),
            {"c": tokens.company_id},
        ).all()
    haystacks = [
        *(a.text + str(a.headers) for a in answers),
        orjson.dumps([tuple(r) for r in trail]).decode(),
        caplog.text,
        *(r[0] + bytes(r[1]).hex() + bytes(r[1]).decode("latin-1") for r in stored),
    ]
    for secret in (first, second):
        assert not [h for h in haystacks if secret in h]


def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def test_integrations_from_the_cli(cli_env: None, ids: str) -> None:
    company, restaurant = f"clii-{ids}", f"cliir-{ids}"
    run("restaurants", "add", "--company", company, "--restaurant", restaurant, "--timezone", "UTC")
    first, second = new_secret(), new_secret()
    run("integrations", "enable", "jahez", "--company", company, "--webhook-secret", first)
    listed = orjson.loads(run("integrations", "list", "--company", company, "--json"))
    jahez = next(i for i in listed if i["name"] == "jahez")
    assert jahez["enabled"] and jahez["secret_age_seconds"] is not None
    out = run(
        "integrations",
        "rotate",
        "jahez",
        "--company",
        company,
        "--webhook-secret",
        "-",
        "--grace-seconds",
        "600",
        stdin=second + "\n",
    )
    assert "accepted until" in out and second not in out
    tested = orjson.loads(run("integrations", "test", "jahez", "--company", company, "--json"))
    assert tested["verified"] and tested["restaurant_id"] == restaurant
    status = orjson.loads(run("integrations", "status", "jahez", "--company", company, "--json"))
    assert status["events_last_day"] == 0 and status["previous_secret_expires_at"]
    # an adapter's name runs the adapter check (cli/pushes.py)
    out = run("integrations", "test", "webhook", "--company", company, code=1)
    assert out.strip().splitlines() == [f"error: webhook is not enabled for {company}/*"]
    assert "disabled" in run("integrations", "disable", "jahez", "--company", company)
    out = run("integrations", "test", "jahez", "--company", company, code=1)
    assert out.strip().splitlines()[0].startswith("error: jahez is not enabled")
    trail = orjson.loads(run("audit", "list", "--company", company, "--json"))["items"]
    assert (f"cli:{getpass.getuser()}", "integrations.rotate") in [
        (e["actor"], e["action"]) for e in trail
    ]
    assert first not in str(trail) and second not in str(trail)


def test_enable_for_one_restaurant_from_the_cli(cli_env: None, ids: str) -> None:
    company, restaurant = f"clie-{ids}", f"cliera-{ids}"
    run("restaurants", "add", "--company", company, "--restaurant", restaurant, "--timezone", "UTC")
    enable = ("integrations", "enable", "talabat", "--company", company, "--webhook-secret", "-")
    out = run(*enable, "--restaurant", restaurant, stdin=new_secret() + "\n")
    assert f"restaurants {restaurant}" in out
    out = run(*enable, "--restaurant", "nowhere", stdin=new_secret() + "\n", code=1)
    assert out.strip().splitlines() == [f"error: no restaurant 'nowhere' in company '{company}'"]
    listed = orjson.loads(run("integrations", "list", "--company", company, "--json"))
    assert next(i for i in listed if i["name"] == "talabat")["restaurants"] == [restaurant]
