"""Two-way delivery platforms over real HTTP: a platform's webhook and the POS's events land
through a real ingest; the platforms step fills external orders and queues status calls; the
real push worker sends them to a local server standing in for the platform's API (which
records what it gets and answers as the platform does: tokens, 401s, 503s, 429s); the
admin API, the partner API and the CLI read the orders and the sync log."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from partner_signals.control import inbound, keys, platforms
from partner_signals.control.actor import Actor
from partner_signals.platforms.sync import sync_until_done
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.providers import PROVIDERS
from partner_signals.pushes.worker import RunSummary, WorkerOptions, deliver_due_sync
from partner_signals.registry import add_restaurant
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer
from tests.pushes.conftest import Clock, Partner, Received, Reply

runner = CliRunner()
WEBHOOK_SECRET = "talabat-signing-secret-0f9e8d7c"
CLIENT_ID = "talabat-client-7a6b5c4d"
CLIENT_SECRET = "talabat-client-secret-3e2f1a0b9c8d"
API_KEY = "careem-api-key-5d4c3b2a1f0e"


class PlatformApi(Partner):
    """A platform's API on 127.0.0.1: the pushes' partner server, taking PUT and PATCH too."""

    def start(self) -> PlatformApi:
        super().start()
        assert self.server is not None
        handler = self.server.RequestHandlerClass
        handler.do_PUT = handler.do_PATCH = handler.do_POST  # type: ignore[attr-defined]
        return self


@pytest.fixture
def platform_api() -> Iterator[Callable[..., Partner]]:
    started: list[Partner] = []

    def make(respond: Callable[[Received], Reply] | None = None) -> Partner:
        partner = PlatformApi(respond=respond or talabat_answers()).start()
        started.append(partner)
        return partner

    yield make
    for partner in started:
        partner.stop()


def talabat_answers(
    *, status_code: Callable[[Received], int] = lambda r: 200
) -> Callable[[Received], Reply]:
    """Talabat as it answers: a bearer token from /v2/login for the right client, then the
    status call (whose answer `status_code` decides)."""

    def respond(r: Received) -> Reply:
        if r.path == "/v2/login":
            expected = httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)._auth_header
            if r.headers.get("authorization") != expected:
                return 401, {}, b'{"error": "invalid_client"}'
            token = orjson.dumps({"access_token": "tok-1", "expires_in": 3600})
            return 200, {"content-type": "application/json"}, token
        if r.headers.get("authorization") != "Bearer tok-1":
            return 401, {}, b'{"message": "Unauthorized"}'
        code = status_code(r)
        headers = {"retry-after": "1"} if code == 429 else {}
        return code, headers, b"{}" if code < 300 else b'{"message": "unavailable"}'

    return respond


@dataclass
class Setup:
    company: str
    restaurant: str
    ingest: httpx.Client
    pos_key: str
    api: Partner


def _company(engine: sa.Engine, settings: Settings, tokens: Tokens) -> tuple[str, str]:
    with engine.begin() as conn:
        inbound.enable(
            conn,
            Actor.cli(),
            tokens.company_id,
            "talabat",
            key=settings.master_key(),
            secret=WEBHOOK_SECRET,
        )
        _, pos_key = keys.create_ingest_key(conn, Actor.cli(), tokens.company_id)
    return tokens.company_id, pos_key


@pytest.fixture
def setup(
    engine: sa.Engine,
    settings: Settings,
    tokens: Tokens,
    ingest_url: str,
    platform_api: Callable[..., Partner],
) -> Iterator[Setup]:
    company, pos_key = _company(engine, settings, tokens)
    api = platform_api()
    with engine.begin() as conn:
        platforms.connect(
            conn,
            Actor.cli(),
            company,
            "talabat",
            key=settings.master_key(),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_base_url=api.url,
        )
    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        yield Setup(company, tokens.restaurant_id, ingest, pos_key, api)


def talabat_webhook(s: Setup, order: str, event_type: str = "order_created") -> None:
    body = orjson.dumps(
        {
            "eventId": uuid.uuid4().hex,
            "eventType": event_type,
            "timestamp": datetime.now(UTC).isoformat(),
            "order": {
                "code": order,
                "vendorCode": s.restaurant,
                "status": event_type.removeprefix("order_").upper(),
                "price": {"grandTotal": 42.5, "currency": "AED"},
            },
        }
    )
    headers = PROVIDERS["talabat"].sign(body, WEBHOOK_SECRET, time.time())
    answer = s.ingest.post(
        f"/webhooks/talabat/{s.company}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text


def pos(s: Setup, kind: str, order: str, at: datetime | None = None, **data: Any) -> None:
    event = {
        "event_id": uuid.uuid4().hex,
        "type": kind,
        "occurred_at": (at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "restaurant_id": s.restaurant,
        "order_id": order,
        "data": data,
    }
    answer = s.ingest.post("/events", json=event, headers={"authorization": f"Bearer {s.pos_key}"})
    assert answer.status_code in (200, 202), answer.text


def linked_order(s: Setup, pos_order: str, platform_order: str) -> None:
    pos(
        s,
        "order.created",
        pos_order,
        channel="delivery",
        platform="talabat",
        platform_order_id=platform_order,
    )


def deliver(engine: sa.Engine, settings: Settings, clock: Clock, company: str) -> RunSummary:
    return deliver_due_sync(
        engine,
        key=settings.master_key(),
        clock=clock,
        company_id=company,
        options=WorkerOptions(min_retry_seconds=0.0),
    )


def status_calls(api: Partner) -> list[tuple[str, str, str]]:
    """(path, status, idempotency key) of each status call the platform got."""
    return [
        (r.path, orjson.loads(r.body)["status"], r.headers["idempotency-key"])
        for r in api.received
        if r.path.startswith("/v2/order/status/")
    ]


def test_an_order_from_talabat_accepted_on_the_pos_sends_talabat_its_status_once(
    engine: sa.Engine, settings: Settings, setup: Setup
) -> None:
    s = setup
    talabat_webhook(s, "tb-1001")
    sync_until_done(engine)
    with engine.connect() as conn:
        order = platforms.find_external_order(conn, s.company, "talabat", "tb-1001")
    assert order is not None
    assert (order.status, order.platform_status, order.pos_order_id) == (
        "received",
        "order_created",
        None,
    )
    assert order.raw["order"]["code"] == "tb-1001"
    assert order.restaurant_id == s.restaurant

    linked_order(s, "pos-1", "tb-1001")
    sync_until_done(engine)
    sync_until_done(engine)  # a second pass over the same events queues nothing new
    summary = deliver(engine, settings, Clock(), s.company)
    assert summary.delivered == 1, summary.line()
    # Once more: nothing is due, nothing is sent again.
    sync_until_done(engine)
    assert deliver(engine, settings, Clock(), s.company).claimed == 0

    calls = status_calls(s.api)
    assert [(p, st) for p, st, _ in calls] == [("/v2/order/status/tb-1001", "order_accepted")]
    call = next(r for r in s.api.received if r.path.startswith("/v2/order/status/"))
    assert call.method == "POST"
    assert call.headers["authorization"] == "Bearer tok-1"
    assert orjson.loads(call.body)["acceptanceTime"]
    with engine.connect() as conn:
        order = platforms.find_external_order(conn, s.company, "talabat", "tb-1001")
    assert order is not None
    assert (order.status, order.pos_order_id, order.synced_status) == (
        "accepted",
        "pos-1",
        "accepted",
    )
    assert order.synced_at is not None and order.calls_pending == 0


def test_the_kitchen_moves_the_order_and_each_status_goes_once_in_order(
    engine: sa.Engine, settings: Settings, setup: Setup
) -> None:
    s = setup
    talabat_webhook(s, "tb-2002")
    linked_order(s, "pos-2", "tb-2002")
    for line in ("l1", "l2"):
        pos(s, "order.item_added", "pos-2", line_id=line, item_id="burger")
    pos(s, "order.item_fired", "pos-2", line_id="l1", item_id="burger")
    pos(s, "order.item_fired", "pos-2", line_id="l2", item_id="burger")
    pos(s, "order.item_ready", "pos-2", line_id="l1", item_id="burger")
    sync_until_done(engine)
    with engine.connect() as conn:
        order = platforms.find_external_order(conn, s.company, "talabat", "tb-2002")
    # Talabat takes no `preparing` call; one line of two is not `ready`.
    assert order is not None and order.status == "preparing"
    pos(s, "order.item_ready", "pos-2", line_id="l2", item_id="burger")
    sync_until_done(engine)
    talabat_webhook(s, "tb-2002", "order_picked_up")
    sync_until_done(engine)
    deliver(engine, settings, Clock(), s.company)
    assert [st for _, st, _ in status_calls(s.api)] == ["order_accepted", "order_prepared"]
    sync_until_done(engine)  # the step notes what the platform acknowledged
    with engine.connect() as conn:
        order = platforms.find_external_order(conn, s.company, "talabat", "tb-2002")
    assert order is not None
    assert (order.status, order.platform_status, order.synced_status) == (
        "picked_up",
        "order_picked_up",
        "ready",
    )


def test_an_outage_is_retried_then_drained_in_order(
    engine: sa.Engine, settings: Settings, setup: Setup
) -> None:
    s = setup
    down = {"on": True}
    s.api.respond = talabat_answers(status_code=lambda r: 503 if down["on"] else 200)
    linked_order(s, "pos-3", "tb-3003")
    pos(s, "order.item_ready", "pos-3", line_id="l1", item_id="fries")
    pos(s, "order.cancelled", "pos-3", reason="out of stock")
    sync_until_done(engine)
    clock = Clock()
    first = deliver(engine, settings, clock, s.company)
    # Only the first of the order's calls was tried: the others wait behind it.
    assert (first.claimed, first.retried) == (1, 1), first.line()
    clock.advance(60)
    assert deliver(engine, settings, clock, s.company).retried == 1
    down["on"] = False
    clock.advance(600)
    drained = deliver(engine, settings, clock, s.company)
    assert drained.delivered == 3, drained.line()
    statuses = [st for _, st, _ in status_calls(s.api)]
    assert statuses == [
        *["order_accepted"] * 3,  # down, down, then up
        "order_prepared",
        "order_cancelled",
    ]
    cancel = [r for r in s.api.received if r.path.startswith("/v2/order/status/")][-1]
    assert orjson.loads(cancel.body)["reason"] == "out of stock"
    # Every retry of one status carries one idempotency key.
    keys_sent = [k for _, st, k in status_calls(s.api) if st == "order_accepted"]
    assert len(set(keys_sent)) == 1
    sync_until_done(engine)
    with engine.connect() as conn:
        outbound = conn.execute(
            sa.text(
                "select status, records_processed, errors from ops.sync_log "
                "where company_id = :c and direction = 'outbound' order by sync_id"
            ),
            {"c": s.company},
        ).all()
    assert outbound, "the status calls' attempts are in the sync log"
    assert sum(r.records_processed for r in outbound) == 5
    assert any(
        r.status == "failed" and "HTTP 503" in orjson.dumps(r.errors).decode() for r in outbound
    )


def test_a_rate_limit_is_waited_out(engine: sa.Engine, settings: Settings, setup: Setup) -> None:
    s = setup
    limited = {"n": 1}

    def code(r: Received) -> int:
        if limited["n"]:
            limited["n"] -= 1
            return 429
        return 200

    s.api.respond = talabat_answers(status_code=code)
    linked_order(s, "pos-4", "tb-4004")
    sync_until_done(engine)
    clock = Clock()
    assert deliver(engine, settings, clock, s.company).retried == 1
    clock.advance(2)  # Retry-After: 1
    assert deliver(engine, settings, clock, s.company).delivered == 1


def test_a_401_from_the_platform_is_dead_lettered_as_a_credentials_fault(
    engine: sa.Engine, settings: Settings, setup: Setup, admin: httpx.Client, tokens: Tokens
) -> None:
    s = setup
    with engine.begin() as conn:
        platforms.connect(
            conn,
            Actor.cli(),
            s.company,
            "talabat",
            key=settings.master_key(),
            client_id=CLIENT_ID,
            client_secret="a-wrong-client-secret",
        )
    linked_order(s, "pos-5", "tb-5005")
    pos(s, "order.item_ready", "pos-5", line_id="l1", item_id="shawarma")
    sync_until_done(engine)
    summary = deliver(engine, settings, Clock(), s.company)
    assert (summary.claimed, summary.dead) == (1, 1), summary.line()
    answer = admin.get(
        f"/admin/v1/companies/{s.company}/dead-letters", headers=bearer(tokens.viewer)
    )
    assert answer.status_code == 200, answer.text
    (letter,) = [d for d in answer.json()["items"] if d["adapter"] == "talabat-api"]
    assert letter["fault"] == "credentials"
    assert "401" in letter["reason"]
    assert "a-wrong-client-secret" not in answer.text
    # The `ready` waits behind the dead `accepted`: never sent before it.
    assert status_calls(s.api) == []
    with engine.connect() as conn:
        order = platforms.find_external_order(conn, s.company, "talabat", "tb-5005")
    assert order is not None and (order.calls_dead, order.calls_pending) == (1, 1)
    # Fixed credentials, then a replay: both go, in order.
    with engine.begin() as conn:
        platforms.connect(
            conn,
            Actor.cli(),
            s.company,
            "talabat",
            key=settings.master_key(),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
    replay = admin.post(
        f"/admin/v1/companies/{s.company}/dead-letters/{letter['dead_letter_id']}/replay",
        headers=bearer(tokens.operator),
    )
    assert replay.status_code == 200, replay.text
    assert deliver(engine, settings, Clock(), s.company).delivered == 2
    assert [st for _, st, _ in status_calls(s.api)] == ["order_accepted", "order_prepared"]


def test_an_api_key_platform_and_a_rejected_order(
    engine: sa.Engine,
    settings: Settings,
    tokens: Tokens,
    ingest_url: str,
    platform_api: Callable[..., Partner],
) -> None:
    company, pos_key = _company(engine, settings, tokens)
    api = platform_api(lambda r: (200, {}, b"{}"))
    with engine.begin() as conn:
        platforms.connect(
            conn,
            Actor.cli(),
            company,
            "careem",
            key=settings.master_key(),
            api_key=API_KEY,
            api_base_url=api.url,
        )
    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        s = Setup(company, tokens.restaurant_id, ingest, pos_key, api)
        pos(
            s,
            "order.created",
            "pos-6",
            channel="delivery",
            platform="careem",
            platform_order_id="cr-6",
        )
        pos(s, "order.rejected", "pos-6", reason="kitchen closed")
        sync_until_done(engine)
    deliver(engine, settings, Clock(), company)
    sent = [
        (r.method, r.path, orjson.loads(r.body), r.headers["authorization"]) for r in api.received
    ]
    assert sent == [
        ("PUT", "/v1/orders/cr-6/status", {"status": "accepted"}, f"Bearer {API_KEY}"),
        (
            "PUT",
            "/v1/orders/cr-6/status",
            {"status": "rejected", "reason": "kitchen closed"},
            f"Bearer {API_KEY}",
        ),
    ]
    with engine.connect() as conn:
        order = platforms.find_external_order(conn, company, "careem", "cr-6")
    assert order is not None and order.status == "rejected"


def test_no_call_without_a_connected_platform_api(
    engine: sa.Engine, settings: Settings, tokens: Tokens, ingest_url: str
) -> None:
    company, pos_key = _company(engine, settings, tokens)
    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        s = Setup(company, tokens.restaurant_id, ingest, pos_key, Partner())
        linked_order(s, "pos-7", "tb-7007")
        sync_until_done(engine)
    with engine.connect() as conn:
        order = platforms.find_external_order(conn, company, "talabat", "tb-7007")
        queued = conn.execute(
            sa.text("select count(*) from ops.outbox where company_id = :c"), {"c": company}
        ).scalar_one()
    assert order is not None and order.status == "accepted"
    assert queued == 0


@pytest.fixture(scope="module")
def partner_api_url(settings: Settings) -> Iterator[str]:
    """`uvicorn api.app:app`, the partner API, over the same database."""
    port = free_port()
    proc = start(
        uvicorn_cmd("api.app:app", host="127.0.0.1", port=port, workers=1), child_env(settings)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/readyz", proc)
        yield url
    finally:
        stop(proc)


def test_external_orders_through_the_admin_api_filters_cursor_roles(
    engine: sa.Engine, setup: Setup, admin: httpx.Client, tokens: Tokens
) -> None:
    s = setup
    for n in range(3):
        talabat_webhook(s, f"tb-80{n}")
    linked_order(s, "pos-80", "tb-800")
    sync_until_done(engine)
    base = f"/admin/v1/companies/{s.company}/external-orders"
    first = admin.get(base, params={"limit": 2}, headers=bearer(tokens.company_viewer))
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    second = admin.get(
        base, params={"limit": 2, "cursor": page["next_cursor"]}, headers=bearer(tokens.viewer)
    ).json()
    seen = [o["external_order_id"] for o in page["items"] + second["items"]]
    assert sorted(seen) == ["tb-800", "tb-801", "tb-802"] and second["next_cursor"] is None
    accepted = admin.get(base, params={"status": "accepted"}, headers=bearer(tokens.viewer)).json()[
        "items"
    ]
    assert [(o["external_order_id"], o["pos_order_id"]) for o in accepted] == [("tb-800", "pos-80")]
    one = admin.get(f"{base}/talabat/tb-801", headers=bearer(tokens.viewer))
    assert one.status_code == 200 and one.json()["raw"]["order"]["code"] == "tb-801"
    assert_problem(
        admin.get(f"{base}/talabat/nope", headers=bearer(tokens.viewer)), 404, "not_found"
    )
    assert_problem(
        admin.get(base, params={"status": "eaten"}, headers=bearer(tokens.viewer)),
        422,
        "validation_failed",
    )
    assert_problem(
        admin.get(base, params={"cursor": "garbage"}, headers=bearer(tokens.viewer)),
        422,
        "validation_failed",
    )
    other = f"/admin/v1/companies/{tokens.other_company_id}/external-orders"
    assert admin.get(other, headers=bearer(tokens.company_viewer)).status_code in (403, 404)
    assert_problem(admin.get(base), 401, "unauthenticated")


def test_external_orders_through_the_partner_api_need_read_orders(
    engine: sa.Engine, setup: Setup, partner_api_url: str, tokens: Tokens
) -> None:
    s = setup
    talabat_webhook(s, "tb-900")
    linked_order(s, "pos-90", "tb-900")
    sync_until_done(engine)
    with engine.begin() as conn:
        _, reader = keys.create_partner_key(conn, Actor.cli(), s.company, scopes=["read:orders"])
        _, events_only = keys.create_partner_key(
            conn, Actor.cli(), s.company, scopes=["read:events"]
        )
        _, elsewhere = keys.create_partner_key(
            conn, Actor.cli(), tokens.other_company_id, scopes=["read:orders"]
        )
    with httpx.Client(base_url=partner_api_url, timeout=10) as api:
        listed = api.get("/v1/external-orders", headers=bearer(reader))
        assert listed.status_code == 200, listed.text
        (order,) = listed.json()["orders"]
        assert (order["external_order_id"], order["pos_order_id"], order["status"]) == (
            "tb-900",
            "pos-90",
            "accepted",
        )
        assert "raw" not in order  # the platform's body carries the guest's details
        one = api.get("/v1/external-orders/talabat/tb-900", headers=bearer(reader))
        assert one.status_code == 200 and one.json()["platform_status"] == "order_created"
        refused = api.get("/v1/external-orders", headers=bearer(events_only))
        assert refused.status_code == 403 and refused.json()["code"] == "missing_scope"
        foreign = api.get("/v1/external-orders/talabat/tb-900", headers=bearer(elsewhere))
        assert foreign.status_code == 404
        assert api.get("/v1/external-orders").status_code == 401


def test_connect_through_the_admin_api_keeps_credentials_secret(
    engine: sa.Engine,
    settings: Settings,
    admin: httpx.Client,
    tokens: Tokens,
    platform_api: Callable[..., Partner],
) -> None:
    base = f"/admin/v1/companies/{tokens.company_id}/platforms"
    api = platform_api()
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "api_base_url": api.url}
    assert_problem(
        admin.post(f"{base}/talabat/connect", json=body, headers=bearer(tokens.viewer)),
        403,
        "forbidden",
    )
    assert_problem(
        admin.post(f"{base}/uber/connect", json=body, headers=bearer(tokens.operator)),
        404,
        "not_found",
    )
    missing = admin.post(
        f"{base}/talabat/connect", json={"client_id": CLIENT_ID}, headers=bearer(tokens.operator)
    )
    assert_problem(missing, 422, "validation_failed")
    assert "client_secret" in missing.text
    wrong_kind = admin.post(
        f"{base}/careem/connect", json={"client_id": CLIENT_ID}, headers=bearer(tokens.operator)
    )
    assert_problem(wrong_kind, 422, "validation_failed")
    done = admin.post(f"{base}/talabat/connect", json=body, headers=bearer(tokens.operator))
    assert done.status_code == 200, done.text
    assert done.json()["connected"] is True and done.json()["api_base_url"] == api.url
    assert done.json()["statuses"] == ["accepted", "rejected", "ready", "cancelled"]
    listed = admin.get(base, headers=bearer(tokens.viewer))
    production = {p["name"]: p["api_base_url"] for p in listed.json()}
    assert production["careem"] == "https://partners-api.careem.com"
    trail = admin.get(
        "/admin/v1/audit",
        params={"company_id": tokens.company_id, "action": "platforms.connect"},
        headers=bearer(tokens.admin),
    )
    assert trail.status_code == 200 and trail.json()["items"]
    for text in (done.text, listed.text, trail.text):
        assert CLIENT_SECRET not in text
    with engine.connect() as conn:
        sealed = conn.execute(
            sa.text(
                "select secret_ciphertext from ops.integrations where company_id = :c "
                "and provider = 'talabat-api'"
            ),
            {"c": tokens.company_id},
        ).scalar_one()
    assert CLIENT_SECRET.encode() not in bytes(sealed)
    off = admin.post(f"{base}/talabat/disconnect", headers=bearer(tokens.operator))
    assert off.status_code == 200 and off.json()["connected"] is False


def test_register_webhook_through_the_admin_api_and_the_cli(
    engine: sa.Engine,
    settings: Settings,
    setup: Setup,
    admin: httpx.Client,
    tokens: Tokens,
    cli_env: None,
) -> None:
    s = setup
    path = f"/admin/v1/companies/{s.company}/integrations/talabat/register-webhook"
    public = "https://ingest.example.test"
    answer = admin.post(path, json={"public_url": public}, headers=bearer(tokens.operator))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["ok"] is True and result["response_code"] == 200
    assert result["url"] == f"{public}/webhooks/talabat/{s.company}"
    (registration,) = [r for r in s.api.received if r.path == "/v2/chains/webhooks"]
    assert registration.method == "PUT"
    assert orjson.loads(registration.body) == {"url": result["url"], "secret": WEBHOOK_SECRET}
    assert registration.headers["authorization"] == "Bearer tok-1"
    assert WEBHOOK_SECRET not in answer.text
    assert_problem(
        admin.post(path, json={"public_url": public}, headers=bearer(tokens.viewer)),
        403,
        "forbidden",
    )
    assert_problem(
        admin.post(path, json={"public_url": "ftp://x"}, headers=bearer(tokens.operator)),
        422,
        "validation_failed",
    )
    # Deliverect has no registration call: refused as a conflict, nothing sent.
    with engine.begin() as conn:
        inbound.enable(
            conn,
            Actor.cli(),
            s.company,
            "deliverect",
            key=settings.master_key(),
            secret=WEBHOOK_SECRET,
        )
    assert_problem(
        admin.post(
            f"/admin/v1/companies/{s.company}/integrations/deliverect/register-webhook",
            json={"public_url": public},
            headers=bearer(tokens.operator),
        ),
        409,
        "conflict",
    )
    # The platform refuses: recorded, audited, the CLI says so and exits 1.
    s.api.respond = lambda r: (401, {}, b'{"error": "invalid_client"}')
    refused = runner.invoke(
        app,
        [
            "integrations",
            "register-webhook",
            "talabat",
            "--company",
            s.company,
            "--public-url",
            public,
            "--json",
        ],
    )
    assert refused.exit_code == 1, refused.output
    assert "credentials refused (HTTP 401)" in refused.output
    assert WEBHOOK_SECRET not in refused.output and CLIENT_SECRET not in refused.output
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select ok, response_code from ops.webhook_registrations "
                "where company_id = :c order by registration_id"
            ),
            {"c": s.company},
        ).all()
        trail = (
            conn.execute(
                sa.text(
                    "select details::text from ops.audit_log where company_id = :c "
                    "and action = 'integrations.register_webhook' order by audit_id"
                ),
                {"c": s.company},
            )
            .scalars()
            .all()
        )
    assert [tuple(r) for r in rows] == [(True, 200), (False, 401)]
    assert len(trail) == 2 and all(WEBHOOK_SECRET not in t for t in trail)


def test_the_sync_log_through_the_admin_api_and_the_cli(
    engine: sa.Engine,
    settings: Settings,
    setup: Setup,
    admin: httpx.Client,
    tokens: Tokens,
    cli_env: None,
) -> None:
    s = setup
    talabat_webhook(s, "tb-1200")
    talabat_webhook(s, "tb-1201", "order_cancelled")
    linked_order(s, "pos-120", "tb-1200")
    sync_until_done(engine)
    deliver(engine, settings, Clock(), s.company)
    sync_until_done(engine)
    answer = admin.get(
        f"/admin/v1/companies/{s.company}/sync-log", headers=bearer(tokens.company_viewer)
    )
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    inbound_rows = [i for i in items if i["direction"] == "inbound"]
    outbound_rows = [i for i in items if i["direction"] == "outbound"]
    assert sum(i["records_processed"] for i in inbound_rows) == 2
    assert all(i["platform"] == "talabat" and i["status"] == "completed" for i in items)
    assert [i["records_processed"] for i in outbound_rows] == [1]
    assert outbound_rows[0]["sync_type"] == "order_status"
    only_out = admin.get(
        f"/admin/v1/companies/{s.company}/sync-log",
        params={"direction": "outbound"},
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [i["sync_id"] for i in only_out] == [i["sync_id"] for i in outbound_rows]
    listed = runner.invoke(app, ["platforms", "sync-log", "--company", s.company, "--json"])
    assert listed.exit_code == 0, listed.output
    assert sorted(e["sync_id"] for e in orjson.loads(listed.output)) == sorted(
        i["sync_id"] for i in items
    )
    orders = runner.invoke(
        app, ["platforms", "orders", "--company", s.company, "--status", "cancelled", "--json"]
    )
    assert orders.exit_code == 0, orders.output
    assert [o["external_order_id"] for o in orjson.loads(orders.output)] == ["tb-1201"]
    bad = runner.invoke(app, ["platforms", "sync-log", "--company", s.company, "--direction", "up"])
    assert bad.exit_code == 1 and bad.output.startswith("error: direction")


def test_connect_and_list_from_the_cli_reads_the_secret_from_stdin(
    engine: sa.Engine, tokens: Tokens, cli_env: None
) -> None:
    company = tokens.company_id
    done = runner.invoke(
        app,
        [
            "platforms",
            "connect",
            "careem",
            "--company",
            company,
            "--api-key",
            "-",
            "--api-base-url",
            "http://127.0.0.1:9",
        ],
        input=API_KEY + "\n",
    )
    assert done.exit_code == 0, done.output
    assert "http://127.0.0.1:9" in done.output and API_KEY not in done.output
    listed = runner.invoke(app, ["platforms", "list", "--company", company, "--json"])
    assert listed.exit_code == 0, listed.output
    careem = next(p for p in orjson.loads(listed.output) if p["name"] == "careem")
    assert careem["connected"] is True and API_KEY not in listed.output
    short = runner.invoke(
        app, ["platforms", "connect", "careem", "--company", company, "--api-key", "short"]
    )
    assert short.exit_code == 1 and short.output.startswith("error: api_key")
    unknown = runner.invoke(app, ["platforms", "list", "--company", "no-such-company"])
    assert unknown.exit_code == 1 and unknown.output.startswith("error:")


def test_a_status_hours_old_is_not_sent(
    engine: sa.Engine, settings: Settings, setup: Setup
) -> None:
    s = setup
    hours_ago = datetime.now(UTC) - timedelta(hours=3)
    pos(
        s,
        "order.created",
        "pos-old",
        at=hours_ago,
        channel="delivery",
        platform="talabat",
        platform_order_id="tb-old",
    )
    pos(
        s,
        "order.created",
        "pos-new",
        channel="delivery",
        platform="talabat",
        platform_order_id="tb-new",
    )
    sync_until_done(engine)
    deliver(engine, settings, Clock(), s.company)
    assert [p for p, _, _ in status_calls(s.api)] == ["/v2/order/status/tb-new"]
    with engine.connect() as conn:
        old = platforms.find_external_order(conn, s.company, "talabat", "tb-old")
    assert old is not None and old.status == "accepted" and old.calls_pending == 0


def test_the_same_pos_order_id_at_another_restaurant_is_another_order(
    engine: sa.Engine, settings: Settings, setup: Setup
) -> None:
    s = setup
    other = f"{s.restaurant}-b"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=s.company, restaurant_id=other, timezone="UTC")
    linked_order(s, "pos-shared", "tb-shared")
    elsewhere = Setup(s.company, other, s.ingest, s.pos_key, s.api)
    pos(elsewhere, "order.created", "pos-shared", channel="takeaway")
    pos(elsewhere, "order.item_ready", "pos-shared", line_id="l1", item_id="tea")
    sync_until_done(engine)
    deliver(engine, settings, Clock(), s.company)
    assert [st for _, st, _ in status_calls(s.api)] == ["order_accepted"]


def test_a_platform_event_without_an_order_is_a_sync_log_error(
    engine: sa.Engine, setup: Setup
) -> None:
    s = setup
    body = orjson.dumps(
        {
            "eventId": uuid.uuid4().hex,
            "eventType": "order_created",
            "order": {"vendorCode": s.restaurant},
        }
    )
    headers = PROVIDERS["talabat"].sign(body, WEBHOOK_SECRET, time.time())
    answer = s.ingest.post(
        f"/webhooks/talabat/{s.company}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    talabat_webhook(s, "tb-ok")
    sync_until_done(engine)
    with engine.connect() as conn:
        entries, _ = platforms.list_sync_log(conn, Actor.cli(), s.company, direction="inbound")
    (entry,) = entries
    assert (entry.status, entry.records_processed, entry.sync_type) == (
        "failed",
        2,
        "order_webhooks",
    )
    assert len(entry.errors) == 1 and "order.code" in entry.errors[0]
    assert entry.failed_at is not None and entry.completed_at is None
