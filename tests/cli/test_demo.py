"""The demo's end: money in its currency, restaurants in service first, and a local
partner that verifies real pushes with the Standard Webhooks library."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from cli.demo import (
    api_summary,
    connect_partner,
    curl_command,
    describe_push,
    new_whsec,
    pick_restaurants,
    restaurant_sql,
    show_money,
    show_pushes,
    totals_by_currency,
)
from cli.local_partner import LocalPartner, verify_push
from partner_signals.adapters.base import Message, Target
from partner_signals.adapters.webhook import WebhookAdapter
from partner_signals.pushes.outbox import enqueue_events
from partner_signals.registry import add_restaurant
from partner_signals.settings import Settings
from synthetic import WORLD, in_service

AT_0030 = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)


def test_money_is_shown_in_its_currency_and_its_decimals() -> None:
    assert show_money(Decimal("1234.5"), ("AED",)) == "1,234.50 AED"
    assert show_money(Decimal("12.345"), ("KWD",)) == "12.345 KWD"
    assert show_money(None, ("GBP",)) == "0.00 GBP"
    # a sum over two currencies is not an amount: it says so instead of a number
    assert show_money(Decimal("99"), ("AED", "SAR")) == "mixed AED+SAR"
    assert show_money(None, ()) == ""


def test_totals_are_kept_per_currency() -> None:
    currencies = {"dxb": ("AED",), "ruh": ("SAR",), "dxb2": ("AED",), "odd": ("AED", "SAR")}
    rows = [("dxb", Decimal("10.50")), ("ruh", 7), ("dxb2", Decimal("1")), ("odd", 1000)]
    assert totals_by_currency(rows, currencies) == {
        "AED": Decimal("11.50"),
        "SAR": Decimal("7"),
    }


def test_restaurants_in_service_come_first() -> None:
    live = {s.restaurant_id for s in WORLD if in_service(s, AT_0030)}
    assert live
    one = pick_restaurants(WORLD, 1, AT_0030)
    assert len(one) == 1 and one[0].restaurant_id in live
    assert pick_restaurants(WORLD, None, AT_0030) == list(WORLD)


def test_the_raw_restaurant_is_read_where_the_catalogue_says() -> None:
    sql = restaurant_sql()
    assert "when 'deliverect' then body::jsonb #>> '{location}'" in sql
    assert "when 'careem' then body::jsonb #>> '{order,store_id}'" in sql
    assert sql.startswith("split_part(case source ")


def test_the_curl_works_as_a_shell_command() -> None:
    command = curl_command("psk_abc", "nyc-west-village")
    assert command == (
        "curl -s -H 'Authorization: Bearer psk_abc' "
        "'http://127.0.0.1:8001/v1/restaurants/nyc-west-village/workforce?window=90m'"
    )


def test_an_answer_and_a_push_read_in_a_line() -> None:
    answer = {
        "as_of": "2026-11-24T00:30:00Z",
        "now": {"occupied_tables": [{}, {}], "active_orders": [{}]},
        "order_velocity": [{}, {}, {}],
    }
    assert api_summary(answer) == (
        "as of 2026-11-24T00:30:00Z: 2 tables occupied, 1 orders active now; 3 order_velocity rows"
    )
    signal = {
        "type": "signal.time_to_pay",
        "restaurant_id": "nyc",
        "signal": "time_to_pay",
        "key": "o-1",
        "version": 1,
        "value": {"time_to_pay_seconds": 150},
    }
    assert describe_push(signal) == ("signal.time_to_pay", "nyc", "key o-1 v1, 2.5 min to pay")
    event = {
        "type": "order.bill_requested",
        "restaurant_id": "nyc",
        "order_id": "o-7",
        "occurred_at": "2026-11-24T00:12:03.250000+00:00",
    }
    assert describe_push(event) == (
        "order.bill_requested",
        "nyc",
        "order o-7 at 2026-11-24 00:12:03 UTC",
    )


def signed_push(
    secret: str, url: str, payload: dict[str, object]
) -> tuple[str, dict[str, str], bytes]:
    """The request the generic webhook adapter builds for one outbox row."""
    target = Target(1, "webhook", "c", "r", {"url": url}, {"secrets": [secret]})
    message = Message(1, "1:evt-1:1", "evt-1", "order.bill_requested", 1, payload, 1)
    out = WebhookAdapter().build_request(target, message, now=time.time())
    return out.url, out.headers, out.content


PAYLOAD = {"id": "evt-1", "type": "order.bill_requested", "restaurant_id": "r", "order_id": "o-1"}


def test_the_local_partner_verifies_a_real_signed_push() -> None:
    secret = new_whsec()
    with LocalPartner(secret) as partner:
        url, headers, body = signed_push(secret, partner.url, PAYLOAD)
        answer = httpx.post(url, content=body, headers=headers, timeout=10)
        assert answer.status_code == 204
        [seen] = partner.snapshot()
    assert seen.verified and seen.payload == PAYLOAD
    assert seen.webhook_id == "1:evt-1:1" and seen.event_type == "order.bill_requested"


@pytest.mark.parametrize("broken", ["body", "secret", "signature", "timestamp"])
def test_the_local_partner_refuses_a_push_that_does_not_verify(broken: str) -> None:
    secret = new_whsec()
    with LocalPartner(secret) as partner:
        signer = new_whsec() if broken == "secret" else secret
        url, headers, body = signed_push(signer, partner.url, PAYLOAD)
        if broken == "body":
            body = body.replace(b"o-1", b"o-2")
        elif broken == "signature":
            headers["webhook-signature"] = "garbage"
        elif broken == "timestamp":
            headers["webhook-timestamp"] = str(int(time.time()) - 3600)
        answer = httpx.post(url, content=body, headers=headers, timeout=10)
        assert answer.status_code == 401
        [seen] = partner.snapshot()
    assert not seen.verified and seen.error and seen.payload is None


def test_verify_push_needs_the_standard_headers() -> None:
    seen = verify_push(new_whsec(), b"{}", {"content-type": "application/json"})
    assert not seen.verified and "headers" in seen.error.lower()


def test_the_demo_partner_receives_and_verifies_pushes_the_worker_delivers(
    engine: sa.Engine, settings: Settings, ids: str
) -> None:
    """The demo's push path on a real database: the webhook adapter enabled toward the
    local partner for one restaurant, events in the outbox, the one-shot worker delivers,
    the partner verifies every push with standardwebhooks; other restaurants' and other
    types' events are not pushed."""
    nyc = next(s for s in WORLD if s.restaurant_id == "nyc-west-village")
    spec = replace(nyc, company_id=f"co-{ids}", restaurant_id=f"r-{ids}")
    other = replace(nyc, company_id=f"co-{ids}", restaurant_id=f"r2-{ids}")
    with engine.begin() as conn:
        for s in (spec, other):
            add_restaurant(
                conn, company_id=s.company_id, restaurant_id=s.restaurant_id, timezone=s.timezone
            )
    now = datetime.now(UTC)

    def event(n: int, restaurant: str, kind: str) -> dict[str, object]:
        return {
            "id": f"00000000-0000-4000-8000-{ids}{n:02d}",
            "type": kind,
            "schema_version": 1,
            "occurred_at": now,
            "received_at": now,
            "source": "pos",
            "company_id": spec.company_id,
            "restaurant_id": restaurant,
            "order_id": f"o-{n}",
            "data": {},
        }

    with LocalPartner(new_whsec()) as partner:
        connect_partner(settings, spec, partner.url, partner.secret)
        with engine.begin() as conn:
            queued = enqueue_events(
                conn,
                [
                    event(1, spec.restaurant_id, "order.bill_requested"),
                    event(2, spec.restaurant_id, "order.bill_requested"),
                    event(3, spec.restaurant_id, "order.paid"),  # not subscribed
                    event(4, other.restaurant_id, "order.bill_requested"),  # not its restaurant
                ],
            )
        assert queued == 2
        assert show_pushes(settings, engine, partner, spec)
        received = partner.snapshot()
    assert sorted(r.payload["order_id"] for r in received) == ["o-1", "o-2"]
    assert all(r.verified and r.event_type == "order.bill_requested" for r in received)
