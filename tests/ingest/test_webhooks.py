"""Provider webhooks: one valid request per provider, then one broken thing per test."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import stripe
from fastapi.testclient import TestClient

from partner_signals.providers import PROVIDERS
from tests.ingest.conftest import PAYPAL_KEY, Tenant


def event_for(provider: str, tenant: Tenant) -> tuple[str, bytes]:
    """(event id, body) of a plausible event from `provider`."""
    eid = uuid.uuid4().hex
    r = tenant.restaurant_id
    bodies: dict[str, dict[str, Any]] = {
        "stripe": {
            "id": f"evt_{eid}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": f"pi_{eid}",
                    "amount": 1200,
                    "currency": "aed",
                    "metadata": {"restaurant_id": r, "order_id": "o-1"},
                }
            },
        },
        "paypal": {
            "id": f"WH-{eid}",
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "resource": {
                "id": eid,
                "custom_id": f"{r}:o-1",
                "amount": {"currency_code": "AED", "value": "12.00"},
            },
        },
        "careem": {"event_id": eid, "event_type": "order.created", "order": {"store_id": r}},
        "talabat": {"eventId": eid, "eventType": "order_created", "order": {"vendorCode": r}},
        "deliveroo": {"event": "order_placed", "body": {"order": {"location_id": r}}},
        "jahez": {"event_id": eid, "event": "order_received", "branch_id": r},
        "deliverect": deliverect_update(eid, 20, r),
    }
    expected_id = {
        "stripe": f"evt_{eid}",
        "paypal": f"WH-{eid}",
        "deliverect": deliverect_id(eid, 20, "2026-11-23T19:01:00.000000Z"),
    }.get(provider, eid)
    return expected_id, orjson.dumps(bodies[provider])


def deliverect_update(
    order_id: str, status: int, location: str, at: str = "2026-11-23T19:01:00.000000Z"
) -> dict[str, Any]:
    """A Deliverect order status update as its published sample has it (no event id)."""
    return {
        "orderId": order_id,
        "status": status,
        "timeStamp": at,
        "reason": "",
        "channelOrderId": f"T5-{order_id[:8]}",
        "location": location,
        "isIgnoredPOSStatus": False,
    }


def deliverect_id(order_id: str, status: int, at: str) -> str:
    """The id the catalogue derives for an update: SHA-256 over order, status and time."""
    return hashlib.sha256(f"{order_id}\x1f{status}\x1f{at}".encode()).hexdigest()


def sign(
    provider: str, body: bytes, tenant: Tenant, event_id: str, now: float | None = None
) -> dict[str, str]:
    now = time.time() if now is None else now
    if provider == "paypal":
        headers = PROVIDERS["paypal"].sign(body, PAYPAL_KEY, now, event_id=tenant.paypal_webhook_id)
    else:
        headers = PROVIDERS[provider].sign(body, tenant.secret, now, event_id=event_id)
    return {"Content-Type": "application/json", **headers}


def landed(engine: sa.Engine, tenant: Tenant) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("select count(*) from raw.webhook_events where company_id = :c"),
                {"c": tenant.company_id},
            ).scalar_one()
        )


def rejections(engine: sa.Engine, tenant: Tenant) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "select status_code, reason from raw.rejected_requests "
                    "where company_id = :c order by id"
                ),
                {"c": tenant.company_id},
            )
        ]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_valid_webhook_lands_once(
    provider: str, client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    event_id, body = event_for(provider, tenant)
    url = f"/webhooks/{provider}/{tenant.company_id}"
    first = client.post(url, content=body, headers=sign(provider, body, tenant, event_id))
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "accepted", "event_id": event_id}
    again = client.post(url, content=body, headers=sign(provider, body, tenant, event_id))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select source, event_id, body, headers from raw.webhook_events "
                "where company_id = :c"
            ),
            {"c": tenant.company_id},
        ).all()
    assert [(r.source, r.event_id) for r in rows] == [(provider, event_id)]
    assert rows[0].body == body.decode()  # verbatim


def test_stripe_header_from_the_stripe_library(client: TestClient, tenant: Tenant) -> None:
    _, body = event_for("stripe", tenant)
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), tenant.secret)
    response = client.post(
        f"/webhooks/stripe/{tenant.company_id}",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_wrong_signature_is_401_and_recorded(
    provider: str, client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    event_id, body = event_for(provider, tenant)
    headers = sign(provider, body, tenant, event_id)
    tampered = body.replace(b"}", b' ,"x": 1}', 1) if provider != "deliveroo" else body + b" "
    response = client.post(
        f"/webhooks/{provider}/{tenant.company_id}", content=tampered, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert landed(engine, tenant) == 0
    assert rejections(engine, tenant)[0][0] == 401


def test_missing_signature_is_401(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    _, body = event_for("stripe", tenant)
    response = client.post(
        f"/webhooks/stripe/{tenant.company_id}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert landed(engine, tenant) == 0


@pytest.mark.parametrize("skew", [-302, 302])  # senders round to whole seconds
@pytest.mark.parametrize("provider", ["stripe", "paypal"])
def test_timestamp_outside_tolerance_is_401(
    provider: str, skew: int, client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    event_id, body = event_for(provider, tenant)
    headers = sign(provider, body, tenant, event_id, now=time.time() + skew)
    response = client.post(
        f"/webhooks/{provider}/{tenant.company_id}", content=body, headers=headers
    )
    assert response.status_code == 401
    assert "tolerance" in response.json()["error"]["message"]
    assert landed(engine, tenant) == 0


def test_secret_of_another_company_is_401(
    client: TestClient, tenant: Tenant, engine: sa.Engine, settings: Any
) -> None:
    from tests.ingest.conftest import make_tenant

    other = make_tenant(engine, settings, uuid.uuid4().hex[:10])
    event_id, body = event_for("careem", tenant)
    headers = sign("careem", body, other, event_id)
    response = client.post(f"/webhooks/careem/{tenant.company_id}", content=body, headers=headers)
    assert response.status_code == 401
    assert landed(engine, tenant) == 0 and landed(engine, other) == 0


def test_rotation_accepts_previous_secret(
    client: TestClient, tenant: Tenant, engine: sa.Engine, settings: Any
) -> None:
    from partner_signals.registry import enable_integration

    with engine.begin() as conn:
        enable_integration(
            conn,
            key=settings.master_key(),
            company_id=tenant.company_id,
            provider="jahez",
            secrets={"webhook_secrets": ["whsec_new", tenant.secret]},
        )
    client.app.state.ingest.directory.forget()  # type: ignore[attr-defined]
    event_id, body = event_for("jahez", tenant)
    old = client.post(
        f"/webhooks/jahez/{tenant.company_id}",
        content=body,
        headers=sign("jahez", body, tenant, event_id),
    )
    assert old.status_code == 200
    new = PROVIDERS["jahez"].sign(body, "whsec_new", time.time())
    again = client.post(
        f"/webhooks/jahez/{tenant.company_id}",
        content=body,
        headers={"Content-Type": "application/json", **new},
    )
    assert again.json()["status"] == "duplicate"


def test_malformed_json_is_400(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    body = b'{"event_id": "x", '
    response = client.post(
        f"/webhooks/careem/{tenant.company_id}",
        content=body,
        headers=sign("careem", body, tenant, "x"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert landed(engine, tenant) == 0
    assert rejections(engine, tenant)[0][0] == 400


def test_missing_event_id_is_400(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    body = orjson.dumps({"event_type": "order.created"})
    response = client.post(
        f"/webhooks/careem/{tenant.company_id}",
        content=body,
        headers=sign("careem", body, tenant, ""),
    )
    assert response.status_code == 400
    assert "event_id" in response.json()["error"]["message"]
    assert landed(engine, tenant) == 0


def test_body_over_one_mib_is_413(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    body = orjson.dumps({"event_id": "big", "event_type": "x", "pad": "a" * (1024 * 1024)})
    response = client.post(
        f"/webhooks/careem/{tenant.company_id}",
        content=body,
        headers=sign("careem", body, tenant, "big"),
    )
    assert response.status_code == 413
    assert landed(engine, tenant) == 0
    status, _ = rejections(engine, tenant)[0]
    assert status == 413


def test_wrong_content_type_is_415(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    event_id, body = event_for("talabat", tenant)
    headers = {**sign("talabat", body, tenant, event_id), "Content-Type": "text/plain"}
    response = client.post(f"/webhooks/talabat/{tenant.company_id}", content=body, headers=headers)
    assert response.status_code == 415
    assert landed(engine, tenant) == 0


def test_unknown_company_is_404(client: TestClient, tenant: Tenant) -> None:
    event_id, body = event_for("careem", tenant)
    response = client.post(
        "/webhooks/careem/no-such-company",
        content=body,
        headers=sign("careem", body, tenant, event_id),
    )
    assert response.status_code == 404


def test_unknown_provider_is_404(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        f"/webhooks/ubereats/{tenant.company_id}",
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_provider"


def test_secrets_are_not_stored(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    event_id, body = event_for("careem", tenant)
    headers = {**sign("careem", body, tenant, event_id), "Authorization": "Bearer hunter2-token"}
    assert (
        client.post(
            f"/webhooks/careem/{tenant.company_id}", content=body, headers=headers
        ).status_code
        == 200
    )
    client.post(f"/webhooks/careem/{tenant.company_id}", content=body + b" ", headers=headers)
    with engine.connect() as conn:
        dump = (
            conn.execute(
                sa.text(
                    "select string_agg(headers::text || body, '') from raw.webhook_events "
                    "where company_id = :c"
                ),
                {"c": tenant.company_id},
            ).scalar_one()
            + conn.execute(
                sa.text(
                    "select string_agg(headers::text || body_excerpt, '') "
                    "from raw.rejected_requests where company_id = :c"
                ),
                {"c": tenant.company_id},
            ).scalar_one()
        )
        integration_text = conn.execute(
            sa.text(
                "select string_agg(config::text || encode(secret_ciphertext, 'escape'), '') "
                "from ops.integrations where company_id = :c"
            ),
            {"c": tenant.company_id},
        ).scalar_one()
    assert "hunter2" not in dump
    assert tenant.secret not in dump
    assert tenant.secret not in integration_text


def test_deliverect_updates_get_ids_from_what_identifies_them(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    """Deliverect sends an update once and names no id: the same update sent again is a
    duplicate, the order's next status is a new event."""
    order_id = uuid.uuid4().hex
    url = f"/webhooks/deliverect/{tenant.company_id}"
    answers = []
    for status in (20, 20, 50):
        body = orjson.dumps(deliverect_update(order_id, status, tenant.restaurant_id))
        response = client.post(url, content=body, headers=sign("deliverect", body, tenant, ""))
        assert response.status_code == 200, response.text
        answers.append(response.json())
    at = "2026-11-23T19:01:00.000000Z"
    assert answers == [
        {"status": "accepted", "event_id": deliverect_id(order_id, 20, at)},
        {"status": "duplicate", "event_id": deliverect_id(order_id, 20, at)},
        {"status": "accepted", "event_id": deliverect_id(order_id, 50, at)},
    ]
    assert landed(engine, tenant) == 2


def test_deliverect_update_without_an_order_id_is_400(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    update = deliverect_update("x", 20, tenant.restaurant_id)
    del update["orderId"]
    body = orjson.dumps(update)
    response = client.post(
        f"/webhooks/deliverect/{tenant.company_id}",
        content=body,
        headers=sign("deliverect", body, tenant, ""),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_event"
    assert landed(engine, tenant) == 0
