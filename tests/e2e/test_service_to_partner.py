"""End to end: a synthetic service day through HTTP ingest, materialized through Dagster,
read from the partner API and pushed to a partner's webhook, signed."""

from __future__ import annotations

import dataclasses
import gzip
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from api.app import create_app as create_api
from api.keys import create_partner_key
from api.representation import CLOCK_COLUMNS
from api.routers import signals
from cli.demo import requests_for
from ingest.app import create_app as create_ingest
from partner_signals.exports import list_exports, query_exports
from partner_signals.pushes.worker import deliver_due_sync
from partner_signals.registry import (
    add_restaurant,
    create_ingest_key,
    enable_adapter,
    enable_integration,
)
from partner_signals.settings import Settings
from pipelines.run import materialize_all
from synthetic import DEMO_RESTAURANTS, Delivery, service_day, signed_headers
from tests.pipelines.service_day import drop_database, new_database
from tests.pushes.conftest import Partner

WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PROVIDER_SECRET = "whsec_e2e_provider_secret"


@dataclass(frozen=True)
class World:
    url: str
    settings: Settings
    engine: sa.Engine
    company_id: str
    restaurant_id: str
    partner_key: str
    deliveries: list[Delivery]
    partner: Partner


def send(client: TestClient, deliveries: list[Delivery], ingest_key: str) -> None:
    for group in requests_for(deliveries):
        first = group[0]
        if first.source == "pos":
            response = client.post(
                "/events",
                content=b"\n".join(d.body for d in group),
                headers={
                    "Authorization": f"Bearer {ingest_key}",
                    "Content-Type": "application/x-ndjson",
                },
            )
        elif first.source == "paypal":
            continue  # PayPal signs with a certificate; covered by the ingest tests
        else:
            headers = signed_headers(first, PROVIDER_SECRET, now=time.time())
            response = client.post(
                f"/webhooks/{first.source}/{first.company_id}", content=first.body, headers=headers
            )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def world(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = new_database(server_url, "ps_e2e")
    data_dir = tmp_path_factory.mktemp("e2e")
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        exports_dir=data_dir / "exports",
        secret_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    suffix = uuid.uuid4().hex[:6]
    spec = dataclasses.replace(
        DEMO_RESTAURANTS[0],
        company_id=f"e2e-{suffix}",
        restaurant_id=f"e2e-r-{suffix}",
    )
    partner = Partner().start()
    with engine.begin() as conn:
        add_restaurant(
            conn,
            company_id=spec.company_id,
            restaurant_id=spec.restaurant_id,
            timezone=spec.timezone,
        )
        for provider in ("stripe", "careem", "talabat", "deliveroo", "jahez"):
            enable_integration(
                conn,
                key=settings.master_key(),
                company_id=spec.company_id,
                provider=provider,
                secrets={"webhook_secrets": [PROVIDER_SECRET]},
            )
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=spec.company_id,
            adapter="webhook",
            restaurant_id=spec.restaurant_id,
            config={"url": partner.url + "/hooks"},
            secrets={"secrets": [WEBHOOK_SECRET]},
        )
        ingest_key = create_ingest_key(conn, company_id=spec.company_id)
        partner_key = create_partner_key(
            conn,
            company_id=spec.company_id,
            scopes=["read:workforce", "read:crm", "read:events", "read:exports"],
        )
    now = datetime.now(UTC)
    deliveries = service_day([spec], (now - timedelta(days=1)).date(), seed=3) + service_day(
        [spec], now.date(), seed=4, until=now
    )
    deliveries.sort(key=lambda d: d.send_at)
    with TestClient(create_ingest(settings)) as client:
        send(client, deliveries, ingest_key)
    assert materialize_all(settings, log_level="WARNING")
    try:
        yield World(
            url,
            settings,
            engine,
            spec.company_id,
            spec.restaurant_id,
            partner_key,
            deliveries,
            partner,
        )
    finally:
        partner.stop()
        engine.dispose()
        drop_database(server_url, url)


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with TestClient(create_api(world.settings)) as client:
        client.headers["Authorization"] = f"Bearer {world.partner_key}"
        yield client


def test_workforce_signals_match_what_was_sent(world: World, api: TestClient) -> None:
    body = api.get(
        f"/v1/restaurants/{world.restaurant_id}/workforce", params={"window": "3d"}
    ).json()
    sent_orders = {
        orjson.loads(d.body)["order_id"]
        for d in world.deliveries
        if d.source == "pos" and d.event_type == "order.created"
    }
    assert sum(row["orders"] for row in body["order_velocity"]) >= len(sent_orders)
    assert body["item_prep_times"], "prep times by item"
    assert all(
        row["p50_prep_seconds"] <= row["p90_prep_seconds"] for row in body["item_prep_times"]
    )
    assert body["table_occupancy"], "visits seated and cleared"
    assert body["now"]["velocity"]["restaurant_id"] == world.restaurant_id


def test_crm_signals_have_time_to_pay(world: World, api: TestClient) -> None:
    body = api.get(f"/v1/restaurants/{world.restaurant_id}/crm", params={"window": "3d"}).json()
    paid = [row for row in body["time_to_pay"] if row["status"] == "paid"]
    assert paid and all(row["time_to_pay_seconds"] >= 0 for row in paid)
    assert body["order_pacing"] and all(row["rounds"] >= 0 for row in body["order_pacing"])


def test_event_stream_pages_through_everything_once(world: World, api: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params = {"limit": 700, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/events", params=params).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    with world.engine.connect() as conn:
        total = conn.execute(
            sa.text("select count(*) from canonical.canonical_events where company_id = :c"),
            {"c": world.company_id},
        ).scalar_one()
    assert len(seen) == len(set(seen)) == total
    # Polling the last cursor again returns nothing new.
    assert api.get("/v1/events", params={"cursor": cursor}).json()["events"] == []
    payments = api.get("/v1/events", params={"type": "payment.succeeded"}).json()["events"]
    assert payments and {e["source"] for e in payments} <= {"stripe", "paypal"}


def test_event_schema_is_published(api: TestClient) -> None:
    schema = api.get("/v1/schema/events").json()
    assert set(schema["required"]) >= {"id", "type", "occurred_at", "company_id", "restaurant_id"}


def test_stripe_payment_is_pushed_to_the_partner_signed(world: World) -> None:
    # `materialize` filled the outbox (its asset runs after the signals): deliver it.
    summary = deliver_due_sync(world.engine, key=world.settings.master_key())
    assert summary.delivered > 0
    verifier = Webhook(WEBHOOK_SECRET)
    payments = []
    for request in world.partner.received:
        payload = verifier.verify(request.body, request.headers)
        if payload.get("type") == "payment.succeeded" and payload.get("source") == "stripe":
            payments.append(payload)
    assert payments, "a Stripe payment_intent.succeeded reached the partner as payment.succeeded"


def test_exports_are_listed_served_and_queryable(world: World, api: TestClient) -> None:
    # `materialize` wrote the files of the business days it touched through the export asset.
    written = [f.path for f in list_exports(Path(world.settings.exports_dir))]
    assert any(p.suffix == ".parquet" for p in written)
    listing = api.get("/v1/exports").json()["files"]
    assert {f["restaurant_id"] for f in listing} == {world.restaurant_id}
    first = next(f for f in listing if f["format"] == "parquet")
    response = api.get(f"/v1/exports/{first['name']}")
    assert response.status_code == 200 and response.content[:4] == b"PAR1"
    _, rows = query_exports(Path(world.settings.exports_dir), "select count(*) from time_to_pay")
    assert rows[0][0] > 0


def test_now_includes_events_landed_after_the_last_materialization(
    world: World, api: TestClient
) -> None:
    """A table seated and a bill requested seconds ago show in "now" with no dbt run."""
    with world.engine.begin() as conn:
        ingest_key = create_ingest_key(conn, company_id=world.company_id)
    now = datetime.now(UTC)
    table, order = f"t-now-{uuid.uuid4().hex[:6]}", f"o-now-{uuid.uuid4().hex[:6]}"
    events = [
        {"type": "table.seated", "table_id": table, "data": {"covers": 3}},
        {
            "type": "order.created",
            "table_id": table,
            "order_id": order,
            "data": {"channel": "dine_in", "covers": 3},
        },
        {"type": "order.bill_requested", "table_id": table, "order_id": order},
    ]
    body = b"\n".join(
        orjson.dumps(
            {
                "event_id": uuid.uuid4().hex,
                "occurred_at": (now - timedelta(seconds=30 - i)).isoformat(),
                "restaurant_id": world.restaurant_id,
                **e,
            }
        )
        for i, e in enumerate(events)
    )
    with TestClient(create_ingest(world.settings)) as client:
        response = client.post(
            "/events",
            content=body,
            headers={
                "Authorization": f"Bearer {ingest_key}",
                "Content-Type": "application/x-ndjson",
            },
        )
        assert response.json()["accepted"] == 3
    workforce = api.get(f"/v1/restaurants/{world.restaurant_id}/workforce").json()["now"]
    assert table in {t["table_id"] for t in workforce["occupied_tables"]}
    assert order in {o["order_id"] for o in workforce["active_orders"]}
    crm = api.get(f"/v1/restaurants/{world.restaurant_id}/crm").json()["now"]
    clock = next(b for b in crm["open_bills"] if b["order_id"] == order)
    assert 0 <= clock["time_to_pay_seconds"] < 120


# Conditional, compressed and paged signal answers, read from this service day's marts
# (here rather than in tests/api: those need the marts the world fixture built).


@contextmanager
def signals_api(world: World, snapshot_seconds: float) -> Iterator[TestClient]:
    """A partner API whose snapshots live this long: 0 reads the marts on every request,
    a minute holds one snapshot for the whole test."""
    settings = world.settings.model_copy(update={"api_snapshot_seconds": snapshot_seconds})
    with TestClient(create_api(settings)) as client:
        client.headers["Authorization"] = f"Bearer {world.partner_key}"
        yield client


def seat_a_table(world: World) -> str:
    with world.engine.begin() as conn:
        ingest_key = create_ingest_key(conn, company_id=world.company_id)
    table = f"t-tag-{uuid.uuid4().hex[:6]}"
    event = {
        "event_id": uuid.uuid4().hex,
        "occurred_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "restaurant_id": world.restaurant_id,
        "type": "table.seated",
        "table_id": table,
        "data": {"covers": 2},
    }
    with TestClient(create_ingest(world.settings)) as client:
        response = client.post(
            "/events",
            content=orjson.dumps(event),
            headers={
                "Authorization": f"Bearer {ingest_key}",
                "Content-Type": "application/x-ndjson",
            },
        )
        assert response.json()["accepted"] == 1
    return table


def without_clocks(answer: dict[str, Any]) -> Any:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in CLOCK_COLUMNS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip({k: v for k, v in answer.items() if k not in ("as_of", "span")})


def test_same_data_answers_304_with_no_body(world: World) -> None:
    path = f"/v1/restaurants/{world.restaurant_id}/workforce"
    # One snapshot for the whole test: with the default second, an order leaving the
    # 5-minute velocity window between two requests changes the tag (as it should).
    with signals_api(world, snapshot_seconds=60) as api:
        first = api.get(path, params={"window": "3d"})
        tag = first.headers["etag"]
        assert tag.startswith('W/"') and first.headers["cache-control"] == "private, no-cache"
        again = api.get(path, params={"window": "3d"}, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == tag and "content-length" not in again.headers
        listed = api.get(path, params={"window": "3d"}, headers={"If-None-Match": f'"x", {tag}'})
        assert listed.status_code == 304, "a tag anywhere in the list"
        strong = api.get(path, params={"window": "3d"}, headers={"If-None-Match": tag[2:]})
        assert strong.status_code == 304, "weak comparison: W/ or not, the same tag"
        star = api.get(path, params={"window": "3d"}, headers={"If-None-Match": "*"})
        assert star.status_code == 304
        other = api.get(path, params={"window": "3d"}, headers={"If-None-Match": 'W/"x"'})
        assert other.status_code == 200 and other.json()["restaurant_id"] == world.restaurant_id


def test_a_new_event_gives_a_new_tag(world: World) -> None:
    path = f"/v1/restaurants/{world.restaurant_id}/workforce"
    with signals_api(world, snapshot_seconds=0) as client:
        tag = client.get(path).headers["etag"]
        assert client.get(path, headers={"If-None-Match": tag}).status_code == 304
        table = seat_a_table(world)
        after = client.get(path, headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag
    assert table in {t["table_id"] for t in after.json()["now"]["occupied_tables"]}


def test_a_window_keeps_its_tag_while_nothing_lands(world: World) -> None:
    """window=90m ends at read time, so as_of, span and the clocks move every second:
    the tag does not, while the rows are the same."""
    path = f"/v1/restaurants/{world.restaurant_id}/crm"
    with signals_api(world, snapshot_seconds=0) as client:
        for _ in range(3):  # a 15-minute interval or a visit may leave the window between
            first = client.get(path, params={"window": "90m"})
            time.sleep(1.1)
            second = client.get(path, params={"window": "90m"})
            if without_clocks(first.json()) == without_clocks(second.json()):
                break
        else:
            pytest.fail("the rows changed on every try")
    assert first.content != second.content, "as_of and span moved"
    assert first.json()["span"] != second.json()["span"]
    assert first.headers["etag"] == second.headers["etag"]


def test_gzip_is_the_identity_answer_compressed(world: World) -> None:
    path = f"/v1/restaurants/{world.restaurant_id}/workforce"
    with signals_api(world, snapshot_seconds=60) as client:
        plain = client.get(path, params={"window": "3d"}, headers={"Accept-Encoding": "identity"})
        with client.stream(
            "GET", path, params={"window": "3d"}, headers={"Accept-Encoding": "gzip"}
        ) as zipped:
            raw = b"".join(zipped.iter_raw())
        refused = client.get(
            path, params={"window": "3d"}, headers={"Accept-Encoding": "gzip;q=0, br"}
        )
    assert "content-encoding" not in plain.headers and len(plain.content) > 4096
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["etag"] == plain.headers["etag"]
    assert len(raw) < len(plain.content) / 3
    assert gzip.decompress(raw) == plain.content
    assert "content-encoding" not in refused.headers and refused.content == plain.content


def test_a_small_answer_is_not_gzipped(world: World, api: TestClient) -> None:
    quiet = f"e2e-quiet-{uuid.uuid4().hex[:6]}"
    with world.engine.begin() as conn:
        add_restaurant(conn, company_id=world.company_id, restaurant_id=quiet, timezone="UTC")
    with api.stream(
        "GET", f"/v1/restaurants/{quiet}/workforce", headers={"Accept-Encoding": "gzip"}
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200 and "content-encoding" not in response.headers
    assert orjson.loads(raw)["now"]["occupied_tables"] == [] and len(raw) < 4096


@pytest.mark.parametrize("route", ["workforce", "crm"])
def test_pages_walk_every_row_once(world: World, route: str) -> None:
    path = f"/v1/restaurants/{world.restaurant_id}/{route}"
    end = datetime.now(UTC)
    span = {"from": (end - timedelta(days=3)).isoformat(), "to": end.isoformat()}
    served = signals.SERVED[route]
    with signals_api(world, snapshot_seconds=60) as client:
        whole = client.get(path, params=span).json()
        assert whole["next_cursor"] is None
        walked: dict[str, list[tuple[Any, ...]]] = {s.name: [] for s in served}
        params: dict[str, Any] = {**span, "limit": 7}
        pages = 0
        while True:
            page = client.get(path, params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            pages += 1
            for s in served:
                assert len(body[s.name]) <= 7
                walked[s.name] += [tuple(row[c] for c in s.order) for row in body[s.name]]
            if body["next_cursor"] is None:
                break
            params = {"cursor": body["next_cursor"], "limit": 7}
    assert pages > 1
    for s in served:
        expected = [tuple(row[c] for c in s.order) for row in whole[s.name]]
        assert walked[s.name] == expected, s.name
        assert len(set(walked[s.name])) == len(expected), f"{s.name}: no row twice"
