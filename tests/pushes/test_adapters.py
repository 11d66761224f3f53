"""Each adapter against a local partner server: request shapes, signatures, subscriptions."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from partner_signals.adapters import ADAPTERS, Target
from partner_signals.control import messaging
from partner_signals.control.actor import Actor
from partner_signals.pushes import enqueue_events, enqueue_unpaid_bill_nudges
from partner_signals.registry import RegistryError, enable_adapter, ensure_company
from partner_signals.settings import Settings
from tests.pushes.conftest import (
    ACCOUNT_SID,
    API_KEY,
    AUTH_TOKEN,
    WEBHOOK_SECRET,
    Clock,
    Partner,
    Tenant,
    deliver,
    enable,
    enable_webhook,
    event,
    insert_canonical,
    outbox,
)


def test_webhook_is_signed_with_standard_webhooks_and_takes_every_event_type(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    integration = enable_webhook(engine, settings, tenant, partner.url)
    kinds = ["order.created", "table.seated", "payment.succeeded", "delivery.status_changed"]
    events = [event(tenant, k) for k in kinds]
    with engine.begin() as conn:
        assert enqueue_events(conn, events) == 4
        assert enqueue_events(conn, events) == 0  # the same events again: nothing new

    summary = deliver(engine, settings, clock, tenant)

    assert summary.delivered == 4
    rows = {r["idempotency_key"]: r for r in outbox(engine, integration)}
    for request in partner.received:
        payload = Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
        assert request.headers["webhook-id"] in rows
        assert request.headers["content-type"] == "application/json"
        assert set(payload) == {
            "id",
            "type",
            "schema_version",
            "occurred_at",
            "received_at",
            "source",
            "company_id",
            "restaurant_id",
            "order_id",
            "data",
        }
    assert sorted(orjson.loads(r.body)["type"] for r in partner.received) == sorted(kinds)
    assert all(r["status"] == "delivered" for r in rows.values())


def test_a_tampered_webhook_body_does_not_verify(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.paid")])
    deliver(engine, settings, clock, tenant)
    request = partner.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(request.body + b" ", request.headers)


def test_webhook_events_option_narrows_and_restaurant_scope_filters(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    narrow = partners()
    enable_webhook(
        engine,
        settings,
        tenant,
        narrow.url,
        restaurant_id=tenant.restaurant_id,
        events=["order.paid"],
    )
    events = [
        event(tenant, "order.paid"),
        event(tenant, "order.created"),
        event(tenant, "order.paid", restaurant_id=tenant.other_restaurant_id),
    ]
    with engine.begin() as conn:
        assert enqueue_events(conn, events) == 1
    deliver(engine, settings, clock, tenant)
    assert [orjson.loads(r.body)["id"] for r in narrow.received] == [events[0]["id"]]


def test_workforce_gets_its_event_types_with_a_bearer_key(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    enable(
        engine,
        settings,
        tenant,
        "workforce",
        {"url": partner.url + "/v1/events", "location_id": "nory-42"},
        {"api_key": API_KEY},
    )
    kinds = ["order.created", "order.item_fired", "order.item_ready", "table.seated", "order.paid"]
    with engine.begin() as conn:
        assert enqueue_events(conn, [event(tenant, k) for k in kinds]) == 4  # not order.paid
    assert deliver(engine, settings, clock, tenant).delivered == 4
    for request in partner.received:
        assert request.path == "/v1/events"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        body = orjson.loads(request.body)
        assert request.headers["idempotency-key"] == body["id"]
        assert body["location_id"] == "nory-42"
    assert {orjson.loads(r.body)["type"] for r in partner.received} == set(kinds) - {"order.paid"}


def test_crm_gets_time_to_pay_started_and_one_stop_per_bill(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    enable(engine, settings, tenant, "crm", {"url": partner.url}, {"api_key": API_KEY})
    events = [
        event(tenant, "table.seated", order_id=None, data={"table_id": "t4"}),
        event(tenant, "order.bill_requested", data={"table_id": "t4"}),
        event(tenant, "order.paid"),  # the POS says paid ...
        event(tenant, "payment.succeeded", source="stripe"),  # ... and so does Stripe
    ]
    with engine.begin() as conn:
        assert enqueue_events(conn, events) == 3
    deliver(engine, settings, clock, tenant)
    types = [orjson.loads(r.body)["type"] for r in partner.received]
    assert sorted(types) == ["guest.seated", "time_to_pay.started", "time_to_pay.stopped"]
    started = next(
        orjson.loads(r.body) for r in partner.received if b"time_to_pay.started" in r.body
    )
    assert started["data"]["order_id"] == "o-1"
    assert started["data"]["table_id"] == "t4"


def _messaging(engine: sa.Engine, settings: Settings, tenant: Tenant, url: str) -> int:
    return enable(
        engine,
        settings,
        tenant,
        "messaging",
        {"base_url": url, "from": "+97140000000", "nudge_to": "+971500000001"},
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
    )


def test_messaging_sends_one_receipt_per_order_in_the_twilio_shape(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    twilio = partners(respond=lambda r: (201, {"content-type": "application/json"}, b"{}"))
    _messaging(engine, settings, tenant, twilio.url)
    phone = {"guest_phone": "+971501234567", "amount": 123.5, "currency": "AED"}
    with engine.begin() as conn:  # a receipt only to a guest who opted in (issue 15)
        messaging.opt_in(conn, Actor.cli(), tenant.company_id, contact="+971501234567", source="t")
    with engine.begin() as conn:
        queued = enqueue_events(
            conn,
            [
                event(tenant, "payment.succeeded", source="stripe", data=phone),
                event(tenant, "order.paid", data=phone),
                event(tenant, "order.paid", order_id="o-no-phone"),  # nobody to text
            ],
        )
    assert queued == 1
    assert deliver(engine, settings, clock, tenant).delivered == 1
    (request,) = twilio.received
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    user, token = base64.b64decode(request.headers["authorization"][6:]).decode().split(":")
    assert (user, token) == (ACCOUNT_SID, AUTH_TOKEN)
    form = parse_qs(request.body.decode())
    assert form["To"] == ["+971501234567"]
    assert form["From"] == ["+97140000000"]
    assert "123.5 AED" in form["Body"][0]


def test_messaging_nudges_an_unpaid_bill_once(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    canonical_table: str,
    clock: Clock,
) -> None:
    twilio = partners(respond=lambda r: (201, {}, b"{}"))
    _messaging(engine, settings, tenant, twilio.url)
    now = datetime.now(UTC)
    long_ago, just_now = now - timedelta(minutes=45), now - timedelta(minutes=2)
    insert_canonical(
        engine,
        canonical_table,
        [
            event(tenant, "order.bill_requested", order_id="unpaid", occurred_at=long_ago),
            event(tenant, "order.bill_requested", order_id="paid", occurred_at=long_ago),
            event(tenant, "payment.succeeded", order_id="paid", source="stripe", occurred_at=now),
            event(tenant, "order.bill_requested", order_id="recent", occurred_at=just_now),
        ],
    )
    with engine.begin() as conn:
        assert enqueue_unpaid_bill_nudges(conn, now=now, table=canonical_table) == 1
        assert enqueue_unpaid_bill_nudges(conn, now=now, table=canonical_table) == 0
    deliver(engine, settings, clock, tenant)
    (request,) = twilio.received
    form = parse_qs(request.body.decode())
    assert form["To"] == ["+971500000001"]
    assert "unpaid" in form["Body"][0] and "45 minutes" in form["Body"][0]


def test_plan_tiers_decide_which_adapters_a_company_may_enable(
    engine: sa.Engine, settings: Settings, ids: str
) -> None:
    company = f"starter-{ids}"
    with engine.begin() as conn:
        ensure_company(conn, company_id=company, plan="starter")
    attempts = {
        "crm": ({"url": "https://crm.example"}, {"api_key": API_KEY}),
        "messaging": (
            {"from": "+97140000000"},
            {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
        ),
    }
    for adapter, (config, secrets) in attempts.items():
        with engine.begin() as conn, pytest.raises(RegistryError, match="starter plan"):
            enable_adapter(
                conn,
                key=settings.master_key(),
                company_id=company,
                adapter=adapter,
                config=config,
                secrets=secrets,
            )
    with engine.begin() as conn:
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=company,
            adapter="webhook",
            config={"url": "https://partner.example/hook"},
            secrets={"secrets": [WEBHOOK_SECRET]},
        )


@pytest.mark.parametrize(
    ("adapter", "config", "secrets", "message"),
    [
        ("webhook", {"url": "ftp://x"}, {"secrets": [WEBHOOK_SECRET]}, "http"),
        ("webhook", {"url": "https://x"}, {"secrets": ["not-a-whsec"]}, "whsec_"),
        ("webhook", {"url": "https://u:p@x"}, {"secrets": [WEBHOOK_SECRET]}, "user or password"),
        ("webhook", {"url": "https://x", "events": ["order.eaten"]}, {"secrets": [WEBHOOK_SECRET]}, "order.eaten"),
        ("crm", {"url": "https://x"}, {}, "api_key"),
        ("messaging", {"from": "+97140000000"}, {"account_sid": "AC1", "auth_token": AUTH_TOKEN}, "account_sid"),
        ("messaging", {"from": "0400"}, {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}, "E.164"),
    ],
)  # fmt: skip
def test_bad_credentials_are_refused_before_they_are_stored(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    adapter: str,
    config: dict[str, object],
    secrets: dict[str, object],
    message: str,
) -> None:
    with engine.begin() as conn, pytest.raises(RegistryError, match=message):
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=tenant.company_id,
            adapter=adapter,
            config=config,
            secrets=secrets,
        )


def test_each_adapter_tests_its_connection(partners: Callable[..., Partner]) -> None:
    def answer(request: object) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, b"{}"

    partner = partners(respond=answer)
    targets = {
        "webhook": Target(1, "webhook", "c", None, {"url": partner.url}, {"secrets": [WEBHOOK_SECRET]}),
        "workforce": Target(2, "workforce", "c", None, {"url": partner.url}, {"api_key": API_KEY}),
        "crm": Target(3, "crm", "c", None, {"url": partner.url}, {"api_key": API_KEY}),
        "messaging": Target(4, "messaging", "c", None, {"base_url": partner.url, "from": "+97140000000"}, {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}),
    }  # fmt: skip

    async def check_all() -> dict[str, bool]:
        async with httpx.AsyncClient() as client:
            return {
                name: (await ADAPTERS[name].test_connection(client, target)).ok
                for name, target in targets.items()
            }

    assert asyncio.run(check_all()) == dict.fromkeys(targets, True)
    webhook_ping = partner.received[0]
    assert Webhook(WEBHOOK_SECRET).verify(webhook_ping.body, webhook_ping.headers)
    assert partner.received[-1].method == "GET"
    assert partner.received[-1].path == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"

    partner.respond = lambda r: (401, {}, b"nope")
    failed = asyncio.run(check_all())
    assert not any(failed.values())
