"""POS events on POST /events: single events, NDJSON batches, keys and bad input."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.ingest.conftest import Tenant


def pos_event(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": uuid.uuid4().hex,
        "type": "order.item_fired",
        "occurred_at": "2026-11-23T19:04:05+04:00",
        "restaurant_id": tenant.restaurant_id,
        "order_id": "o-1",
        "table_id": "t-4",
        "data": {
            "line_id": "l-1",
            "item_id": "burger",
            "item_name": "Burger",
            "quantity": 1,
            "unit_price": 45,
        },
    }
    event.update(overrides)
    return event


def auth(tenant: Tenant, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.ingest_key}", "Content-Type": content_type}


def landed(engine: sa.Engine, tenant: Tenant) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("select event_id from raw.order_events where company_id = :c order by id"),
                {"c": tenant.company_id},
            ).scalars()
        )


def test_single_event_lands_once(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    event = pos_event(tenant, extra_field={"kept": True})
    body = orjson.dumps(event)
    first = client.post("/events", content=body, headers=auth(tenant))
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "accepted", "event_id": event["event_id"]}
    again = client.post("/events", content=body, headers=auth(tenant))
    assert again.json()["status"] == "duplicate"
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "select event_type, restaurant_id, occurred_at, body, headers "
                "from raw.order_events where company_id = :c"
            ),
            {"c": tenant.company_id},
        ).one()
    assert row.event_type == "order.item_fired"
    assert row.body == body.decode()  # unknown fields kept verbatim
    assert "authorization" not in row.headers


def test_ndjson_batch_counts_duplicates(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    events = [pos_event(tenant) for _ in range(5)]
    events.append(events[0])  # a duplicate inside the batch
    body = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    response = client.post("/events", content=body, headers=auth(tenant, "application/x-ndjson"))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 5
    assert response.json()["duplicate_event_ids"] == [events[0]["event_id"]]
    assert sorted(landed(engine, tenant)) == sorted(e["event_id"] for e in events[:5])


def test_unknown_type_is_landed(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    event = pos_event(tenant, type="kitchen.printer_jammed", data={})
    response = client.post("/events", content=orjson.dumps(event), headers=auth(tenant))
    assert response.status_code == 200
    assert landed(engine, tenant) == [event["event_id"]]


def test_missing_key_is_401(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    response = client.post(
        "/events",
        content=orjson.dumps(pos_event(tenant)),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert landed(engine, tenant) == []


def test_wrong_key_is_401(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    headers = {**auth(tenant), "Authorization": "Bearer psi_not-a-real-key"}
    response = client.post("/events", content=orjson.dumps(pos_event(tenant)), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_key"
    assert landed(engine, tenant) == []


def test_missing_event_id_is_400(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    event = pos_event(tenant)
    del event["event_id"]
    response = client.post("/events", content=orjson.dumps(event), headers=auth(tenant))
    assert response.status_code == 400
    assert "event_id" in response.json()["error"]["message"]
    assert landed(engine, tenant) == []


def test_timestamp_without_offset_is_422(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    # A field of the wrong kind is 422 (a body that is no event at all stays 400).
    event = pos_event(tenant, occurred_at="2026-11-23T19:04:05")
    response = client.post("/events", content=orjson.dumps(event), headers=auth(tenant))
    assert response.status_code == 422
    assert "occurred_at" in response.json()["error"]["message"]
    assert landed(engine, tenant) == []


def test_order_event_without_order_id_is_400(client: TestClient, tenant: Tenant) -> None:
    event = pos_event(tenant)
    del event["order_id"]
    response = client.post("/events", content=orjson.dumps(event), headers=auth(tenant))
    assert response.status_code == 400
    assert "order_id" in response.json()["error"]["message"]


def test_malformed_json_is_400(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    response = client.post("/events", content=b'{"event_id": ', headers=auth(tenant))
    assert response.status_code == 400
    assert landed(engine, tenant) == []


def test_one_bad_line_refuses_the_whole_batch(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    good = orjson.dumps(pos_event(tenant))
    response = client.post(
        "/events",
        content=good + b"\nnot json\n" + good,
        headers=auth(tenant, "application/x-ndjson"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["problems"][0]["line"] == 2
    assert landed(engine, tenant) == []


def test_restaurant_of_another_company_is_422(
    client: TestClient, tenant: Tenant, engine: sa.Engine, settings: Any
) -> None:
    from tests.ingest.conftest import make_tenant

    other = make_tenant(engine, settings, uuid.uuid4().hex[:10])
    event = pos_event(tenant, restaurant_id=other.restaurant_id)
    response = client.post("/events", content=orjson.dumps(event), headers=auth(tenant))
    assert response.status_code == 422
    assert landed(engine, tenant) == [] and landed(engine, other) == []


def test_wrong_content_type_is_415(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    response = client.post(
        "/events", content=orjson.dumps(pos_event(tenant)), headers=auth(tenant, "text/plain")
    )
    assert response.status_code == 415
    assert landed(engine, tenant) == []


def test_body_over_one_mib_is_413(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    line = orjson.dumps(pos_event(tenant))
    body = b"\n".join([line] * (1024 * 1024 // len(line) + 2))
    response = client.post("/events", content=body, headers=auth(tenant, "application/x-ndjson"))
    assert response.status_code == 413
    assert landed(engine, tenant) == []


def test_nul_escape_is_refused(client: TestClient, tenant: Tenant, engine: sa.Engine) -> None:
    event = pos_event(tenant, note="a\u0000b")
    response = client.post("/events", content=orjson.dumps(event), headers=auth(tenant))
    assert response.status_code == 400
    assert landed(engine, tenant) == []


def test_health_ready_metrics_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert "partner_signals_ingest_events_total" in client.get("/metrics").text
    schema = client.get("/schema/pos-event").json()
    assert "event_id" in schema["required"]


def test_rate_limit_is_429_and_not_recorded(
    settings: Any, tenant: Tenant, engine: sa.Engine
) -> None:
    from ingest.app import create_app

    limited = settings.model_copy(update={"ingest_rate_per_second": 0.1, "ingest_rate_burst": 2})
    with TestClient(create_app(limited)) as client:
        codes = [
            client.post("/events", content=orjson.dumps(pos_event(tenant)), headers=auth(tenant))
            for _ in range(4)
        ]
    assert [c.status_code for c in codes] == [200, 200, 429, 429]
    assert int(codes[-1].headers["retry-after"]) >= 1
    assert len(landed(engine, tenant)) == 2
