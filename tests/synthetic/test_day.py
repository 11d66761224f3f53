"""The synthetic service day: valid, signed, linked, realistic and deterministic."""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from partner_signals.pos import parse_pos_event
from partner_signals.providers import PROVIDERS, Credentials
from partner_signals.providers.paypal import make_test_certificate
from synthetic import (
    CURRENCY_DECIMALS,
    DEMO_RESTAURANTS,
    ID_PATTERN,
    Delivery,
    RestaurantSpec,
    service_day,
    signed_headers,
    to_pos_ndjson,
)

DAY = date(2026, 11, 23)
SEED = 7
SPECS = {spec.restaurant_id: spec for spec in DEMO_RESTAURANTS}
# 18:45 UTC: dinner is on in every demo restaurant, from London (18:45) to Dubai (22:45).
MID_DINNER = datetime(2026, 11, 23, 18, 45, tzinfo=UTC)


@pytest.fixture(scope="module")
def day() -> list[Delivery]:
    return service_day(DEMO_RESTAURANTS, DAY, seed=SEED)


@pytest.fixture(scope="module")
def calm_day() -> list[Delivery]:
    """The same day sent without redeliveries or delays."""
    return service_day(DEMO_RESTAURANTS, DAY, seed=SEED, duplicate_rate=0, late_rate=0)


@pytest.fixture(scope="module")
def paypal_pair() -> tuple[str, str]:
    return make_test_certificate()


def pos_events(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    """Each POS event once, by its event id, in the order it occurred."""
    events: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        if d.source == "pos":
            events.setdefault(d.event_id, orjson.loads(d.body))
    return sorted(events.values(), key=lambda e: datetime.fromisoformat(e["occurred_at"]))


def webhooks(deliveries: list[Delivery], source: str) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        if d.source == source:
            seen.setdefault(d.event_id, orjson.loads(d.body))
    return list(seen.values())


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def minor(amount: str, currency: str) -> int:
    value = Decimal(amount) * 10 ** CURRENCY_DECIMALS[currency]
    assert value == value.to_integral_value()
    return int(value)


def test_demo_restaurants_span_companies_zones_and_currencies() -> None:
    assert len(DEMO_RESTAURANTS) == 5
    assert len({r.company_id for r in DEMO_RESTAURANTS}) == 3
    assert len({r.timezone for r in DEMO_RESTAURANTS}) == 5
    for r in DEMO_RESTAURANTS:
        assert ID_PATTERN.match(r.company_id)
        assert ID_PATTERN.match(r.restaurant_id)
        assert 8 <= len(r.menu) <= 12
    assert {r.restaurant_id: r.currency for r in DEMO_RESTAURANTS}.items() >= {
        "dxb-marina": "AED",
        "ldn-soho": "GBP",
        "ruh-olaya": "SAR",
        "kwt-city": "KWD",
    }.items()


def test_a_spec_with_a_bad_id_is_refused() -> None:
    with pytest.raises(ValueError, match="restaurant_id"):
        RestaurantSpec(
            company_id="c",
            restaurant_id="bad id",
            name="x",
            timezone="UTC",
            currency="GBP",
            tables=1,
            menu=DEMO_RESTAURANTS[0].menu,
        )


def test_volume_per_restaurant_day(calm_day: list[Delivery]) -> None:
    per_restaurant: dict[str, int] = defaultdict(int)
    for d in calm_day:
        per_restaurant[d.restaurant_id] += 1
    assert set(per_restaurant) == set(SPECS)
    assert all(300 <= n <= 3000 for n in per_restaurant.values()), per_restaurant
    assert {d.source for d in calm_day} == {"pos", *PROVIDERS}


def test_every_pos_body_is_a_valid_pos_event(day: list[Delivery]) -> None:
    for d in day:
        if d.source != "pos":
            continue
        event = parse_pos_event(d.body)
        assert (event.event_id, event.type) == (d.event_id, d.event_type)
        assert event.restaurant_id == d.restaurant_id
        assert event.occurred_at == d.occurred_at
        assert d.company_id == SPECS[d.restaurant_id].company_id


def test_webhooks_are_signed_and_name_their_event(
    day: list[Delivery], paypal_pair: tuple[str, str]
) -> None:
    cert, key = paypal_pair
    now = 1_795_000_000.0
    for d in day:
        if d.source == "pos":
            continue
        provider = PROVIDERS[d.source]
        if d.source == "paypal":
            headers = signed_headers(d, key, now=now, paypal_webhook_id="WH-demo")
            creds = Credentials(config={"webhook_id": "WH-demo", "certificates": [cert]})
        else:
            headers = signed_headers(d, "whsec_demo", now=now)
            creds = Credentials(secrets=("whsec_demo",))
        assert headers["Content-Type"] == "application/json"
        lowered = {k.lower(): v for k, v in headers.items()}
        provider.verify(d.body, lowered, creds, now)
        assert provider.identify(orjson.loads(d.body), lowered) == (d.event_id, d.event_type)


def test_signed_headers_refuse_pos_deliveries(day: list[Delivery]) -> None:
    pos = next(d for d in day if d.source == "pos")
    with pytest.raises(ValueError, match="ingest key"):
        signed_headers(pos, "whsec_demo", now=0.0)


def test_webhooks_name_their_restaurant_where_the_docs_say(day: list[Delivery]) -> None:
    where = {
        "stripe": lambda p: p["data"]["object"]["metadata"]["restaurant_id"],
        "paypal": lambda p: p["resource"]["custom_id"].split(":", 1)[0],
        "careem": lambda p: p["order"]["store_id"],
        "talabat": lambda p: p["order"]["vendorCode"],
        "deliveroo": lambda p: p["body"]["order"]["location_id"],
        "jahez": lambda p: p["branch_id"],
    }
    for d in day:
        if d.source != "pos":
            assert where[d.source](orjson.loads(d.body)) == d.restaurant_id


def test_the_same_seed_gives_the_same_day() -> None:
    two = DEMO_RESTAURANTS[:2]
    first = service_day(two, DAY, seed=3)
    assert service_day(two, DAY, seed=3) == first
    other = service_day(two, DAY, seed=4)
    assert {d.event_id for d in other}.isdisjoint({d.event_id for d in first})


def test_sending_rates_change_the_sending_not_what_happened(
    day: list[Delivery], calm_day: list[Delivery]
) -> None:
    assert {(d.event_id, d.body) for d in day} == {(d.event_id, d.body) for d in calm_day}
    assert len(day) > len(calm_day)


def test_deliveries_come_in_sending_order(day: list[Delivery]) -> None:
    sends = [d.send_at for d in day]
    assert sends == sorted(sends)
    assert all(d.send_at >= d.occurred_at for d in day)


def test_calm_senders_send_within_two_seconds(calm_day: list[Delivery]) -> None:
    for d in calm_day:
        lag = (d.send_at - d.occurred_at).total_seconds()
        assert 0.05 <= lag <= 2.0


def test_redeliveries_repeat_the_event_id_and_body(day: list[Delivery]) -> None:
    copies: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
    for d in day:
        copies[(d.source, d.event_id)].append(d)
    repeated = [group for group in copies.values() if len(group) > 1]
    assert 0.01 < len(repeated) / len(copies) < 0.06
    for group in repeated:
        assert len({d.body for d in group}) == 1
        assert len({d.occurred_at for d in group}) == 1
    assert {d.source for group in repeated for d in group} >= {"pos", "stripe"}


def test_some_deliveries_arrive_after_later_events(day: list[Delivery]) -> None:
    latest: dict[str, datetime] = {}
    overtaken = 0
    for d in day:
        seen = latest.get(d.restaurant_id)
        if seen is not None and (seen - d.occurred_at).total_seconds() > 30:
            overtaken += 1
        latest[d.restaurant_id] = max(seen or d.occurred_at, d.occurred_at)
    assert overtaken > 0.02 * len(day)


def test_event_ids_are_unique_and_look_like_the_senders(calm_day: list[Delivery]) -> None:
    assert len({(d.source, d.event_id) for d in calm_day}) == len(calm_day)
    for d in calm_day:
        if d.source in ("pos", "deliveroo", "careem", "talabat", "jahez"):
            assert uuid.UUID(d.event_id).version == 4
        elif d.source == "stripe":
            assert d.event_id.startswith("evt_")
        else:
            assert d.event_id.startswith("WH-")


def test_until_keeps_what_was_sent_and_leaves_clocks_open(day: list[Delivery]) -> None:
    partial = service_day(DEMO_RESTAURANTS, DAY, seed=SEED, until=MID_DINNER)
    assert partial
    assert all(d.send_at <= MID_DINNER for d in partial)
    assert partial == [d for d in day if d.send_at <= MID_DINNER]

    events = pos_events(partial)
    seated: dict[tuple[str, str], int] = defaultdict(int)
    bills, paid, fired, ready = set(), set(), set(), set()
    for e in events:
        table = (e["restaurant_id"], e.get("table_id", ""))
        line = (e.get("order_id"), e["data"].get("line_id"))
        match e["type"]:
            case "table.seated":
                seated[table] += 1
            case "table.cleared":
                seated[table] -= 1
            case "order.bill_requested":
                bills.add(e["order_id"])
            case "order.paid":
                paid.add(e["order_id"])
            case "order.item_fired":
                fired.add(line)
            case "order.item_ready":
                ready.add(line)
    assert sum(1 for n in seated.values() if n > 0) >= 10
    assert bills - paid
    assert fired - ready


def test_until_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        service_day(DEMO_RESTAURANTS, DAY, until=datetime(2026, 11, 23, 20))


def test_service_hours_are_local(calm_day: list[Delivery]) -> None:
    utc_hours: dict[str, set[int]] = defaultdict(set)
    for e in pos_events(calm_day):
        if e["type"] not in ("table.seated", "order.created"):
            continue
        spec = SPECS[e["restaurant_id"]]
        local = at(e).astimezone(ZoneInfo(spec.timezone))
        assert local.date() == DAY
        assert any(start <= local.time() < end for start, end in spec.services), local
        utc_hours[spec.restaurant_id].add(at(e).astimezone(UTC).hour)
    # the same local lunch is four hours apart in UTC between London and Dubai
    assert min(utc_hours["dxb-marina"]) == 8
    assert min(utc_hours["ldn-soho"]) == 12


def test_a_visit_runs_in_order(calm_day: list[Delivery]) -> None:
    orders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in pos_events(calm_day):
        if "order_id" in e:
            orders[e["order_id"]].append(e)
    dine_in = 0
    for events in orders.values():
        if events[0]["data"].get("channel") != "dine_in":
            continue
        dine_in += 1
        kinds = [e["type"] for e in events]
        assert kinds[0] == "order.created"
        assert kinds[-1] == "order.paid"
        assert kinds.index("order.bill_requested") == len(kinds) - 2
        lines: dict[str, list[str]] = defaultdict(list)
        for e in events:
            if "line_id" in e["data"]:
                lines[e["data"]["line_id"]].append(e["type"])
        for steps in lines.values():
            assert steps == [
                "order.item_added",
                "order.item_fired",
                "order.item_ready",
                "order.item_served",
            ]
    assert dine_in > 100


def test_a_table_hosts_one_visit_at_a_time(calm_day: list[Delivery]) -> None:
    tables: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in pos_events(calm_day):
        if e["type"] in ("table.seated", "table.cleared"):
            tables[(e["restaurant_id"], e["table_id"])].append(e["type"])
    for kinds in tables.values():
        assert kinds == ["table.seated", "table.cleared"] * (len(kinds) // 2)


def test_prep_time_depends_on_the_item(calm_day: list[Delivery]) -> None:
    fired: dict[tuple[str, str], datetime] = {}
    prep: dict[str, list[float]] = defaultdict(list)
    for e in pos_events(calm_day):
        if e["restaurant_id"] != "dxb-marina":
            continue
        line = (e.get("order_id", ""), e["data"].get("line_id", ""))
        if e["type"] == "order.item_fired":
            fired[line] = at(e)
        elif e["type"] == "order.item_ready":
            prep[e["data"]["item_id"]].append((at(e) - fired[line]).total_seconds() / 60)
    medians = {item: statistics.median(minutes) for item, minutes in prep.items()}
    assert medians["ribeye"] > 2.5 * medians["hummus"]
    assert medians["burger"] > 1.5 * medians["fattoush"]
    assert 12 < medians["ribeye"] < 22
    assert len(set(medians)) >= 8


def test_paid_amount_is_the_sum_of_the_lines(calm_day: list[Delivery]) -> None:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    paid = 0
    for e in pos_events(calm_day):
        if e["type"] == "order.item_added":
            totals[e["order_id"]] += Decimal(e["data"]["quantity"]) * Decimal(
                e["data"]["unit_price"]
            )
        elif e["type"] == "order.paid":
            spec = SPECS[e["restaurant_id"]]
            assert Decimal(e["data"]["amount"]) == totals[e["order_id"]]
            assert e["data"]["currency"] == spec.currency
            assert len(e["data"]["amount"].split(".")[1]) == spec.decimals
            paid += 1
    assert paid > 200


def test_stripe_payments_link_to_pos_orders(calm_day: list[Delivery]) -> None:
    events = pos_events(calm_day)
    created = {e["order_id"]: e for e in events if e["type"] == "order.created"}
    paid_by_ref = {
        e["data"]["payment_ref"]: e
        for e in events
        if e["type"] == "order.paid" and "payment_ref" in e["data"]
    }
    intents = [p for p in webhooks(calm_day, "stripe") if p["type"] == "payment_intent.succeeded"]
    assert len(intents) > 100
    for payload in intents:
        intent = payload["data"]["object"]
        meta = intent["metadata"]
        order = created[meta["order_id"]]
        assert order["restaurant_id"] == meta["restaurant_id"]
        assert order.get("table_id") == meta.get("table_id")
        pos_paid = paid_by_ref[intent["id"]]
        assert pos_paid["order_id"] == meta["order_id"]
        currency = SPECS[meta["restaurant_id"]].currency
        assert intent["currency"] == currency.lower()
        assert intent["amount"] == minor(pos_paid["data"]["amount"], currency)
    kwd = [p for p in intents if p["data"]["object"]["currency"] == "kwd"]
    assert kwd
    assert all(p["data"]["object"]["amount"] % 10 == 0 for p in kwd)


def test_failed_card_payments_are_retried_and_some_are_refunded(calm_day: list[Delivery]) -> None:
    stripe = webhooks(calm_day, "stripe")
    failed = {p["data"]["object"]["id"] for p in stripe if p["type"].endswith("payment_failed")}
    succeeded = {p["data"]["object"]["id"] for p in stripe if p["type"].endswith("succeeded")}
    assert failed
    assert failed <= succeeded
    refunds = [p["data"]["object"] for p in stripe if p["type"] == "charge.refunded"]
    assert refunds
    assert all(r["payment_intent"] in succeeded for r in refunds)


def test_paypal_and_cash_payments(calm_day: list[Delivery]) -> None:
    events = pos_events(calm_day)
    paid = {e["order_id"]: e for e in events if e["type"] == "order.paid"}
    captures = [
        p for p in webhooks(calm_day, "paypal") if p["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
    ]
    assert captures
    for payload in captures:
        resource = payload["resource"]
        restaurant_id, order_id = resource["custom_id"].split(":", 1)
        assert paid[order_id]["restaurant_id"] == restaurant_id
        assert paid[order_id]["data"]["payment_ref"] == resource["id"]
        assert resource["amount"]["value"] == paid[order_id]["data"]["amount"]
    assert any("payment_ref" not in e["data"] for e in paid.values())


def test_bills_are_mostly_paid_quickly_but_some_wait(calm_day: list[Delivery]) -> None:
    asked: dict[str, datetime] = {}
    waits: list[float] = []
    for e in pos_events(calm_day):
        if e["type"] == "order.bill_requested":
            asked[e["order_id"]] = at(e)
        elif e["type"] == "order.paid" and e["order_id"] in asked:
            waits.append((at(e) - asked[e["order_id"]]).total_seconds() / 60)
    assert statistics.median(waits) < 6
    assert sum(1 for w in waits if w > 15) >= 5


def test_takeaway_orders_have_no_table(calm_day: list[Delivery]) -> None:
    takeaway = [
        e
        for e in pos_events(calm_day)
        if e["type"] == "order.created" and e["data"]["channel"] == "takeaway"
    ]
    assert len(takeaway) > 20
    assert all("table_id" not in e for e in takeaway)


ORDER_REF = {
    "careem": lambda p: p["order"]["id"],
    "talabat": lambda p: p["order"]["code"],
    "deliveroo": lambda p: p["body"]["order"]["id"],
    "jahez": lambda p: p["order"]["jahez_id"],
}
EVENT_NAME = {
    "careem": lambda p: p["event_type"],
    "talabat": lambda p: p["eventType"],
    "deliveroo": lambda p: p["event"],
    "jahez": lambda p: p["event"],
}
# docs/providers.md, "Delivery order statuses", column by column
CANONICAL = {
    "careem": "order.created order.accepted order.rejected order.preparing "
    "order.ready_for_pickup order.picked_up order.delivered order.cancelled",
    "talabat": "order_created order_accepted order_rejected order_preparing order_ready "
    "order_picked_up order_delivered order_cancelled",
    "deliveroo": "order_placed order_acknowledged order_rejected order_in_kitchen "
    "order_ready_for_collection order_collected order_delivered order_canceled",
    "jahez": "order_received order_accepted order_rejected order_preparing order_ready "
    "order_picked order_delivered order_cancelled",
}
STATUSES = ["received", "accepted", "rejected", "preparing"]
STATUSES += ["ready", "picked_up", "delivered", "cancelled"]
WALKS = [
    ["received", "accepted", "preparing", "ready", "picked_up", "delivered"],
    ["received", "rejected"],
    ["received", "accepted", "preparing", "cancelled"],
]


@pytest.mark.parametrize("platform", ["careem", "talabat", "deliveroo", "jahez"])
def test_delivery_orders_walk_their_platforms_statuses(
    calm_day: list[Delivery], platform: str
) -> None:
    to_status = dict(zip(CANONICAL[platform].split(), STATUSES, strict=True))
    walks: dict[Any, list[tuple[datetime, str]]] = defaultdict(list)
    for d in calm_day:
        if d.source != platform:
            continue
        payload = orjson.loads(d.body)
        walks[ORDER_REF[platform](payload)].append(
            (d.occurred_at, to_status[EVENT_NAME[platform](payload)])
        )
        check_delivery_totals(platform, payload, SPECS[d.restaurant_id].currency)
    assert len(walks) >= 10
    for steps in walks.values():
        assert [status for _, status in sorted(steps)] in WALKS
    # every restaurant gets this platform's orders
    assert {d.restaurant_id for d in calm_day if d.source == platform} == set(SPECS)


def check_delivery_totals(platform: str, payload: dict[str, Any], currency: str) -> None:
    order = payload["body"]["order"] if platform == "deliveroo" else payload["order"]
    if platform == "careem":
        total = minor(order["total"]["amount"], currency)
        lines = sum(i["quantity"] * minor(i["price"], currency) for i in order["items"])
        assert order["total"]["currency"] == currency
    elif platform == "talabat":
        total = minor(order["price"]["grandTotal"], currency)
        lines = sum(i["quantity"] * minor(i["unitPrice"], currency) for i in order["products"])
        assert order["price"]["currency"] == currency
    elif platform == "deliveroo":
        total = order["total_price"]["fractional"]
        lines = sum(i["quantity"] * i["unit_price"]["fractional"] for i in order["items"])
        assert order["total_price"]["currency_code"] == currency
    else:
        total = minor(order["total"], currency)
        lines = sum(i["quantity"] * minor(i["price"], currency) for i in order["items"])
        assert order["currency"] == currency
    assert total == lines > 0


def test_pos_ndjson_is_one_pos_event_a_line(day: list[Delivery]) -> None:
    batch = to_pos_ndjson(day)
    lines = batch.splitlines()
    assert len(lines) == sum(1 for d in day if d.source == "pos")
    assert batch.endswith(b"\n")
    for line in lines[:200]:
        parse_pos_event(line)
    assert to_pos_ndjson([d for d in day if d.source != "pos"]) == b""


def test_services_may_run_past_midnight() -> None:
    late = RestaurantSpec(
        company_id="c",
        restaurant_id="late-night",
        name="Late night",
        timezone="Asia/Dubai",
        currency="AED",
        tables=4,
        menu=DEMO_RESTAURANTS[0].menu,
        services=((time(21), time(2)),),
        delivery_platforms=(),
    )
    deliveries = service_day([late], DAY, seed=1, duplicate_rate=0, late_rate=0)
    seated = [at(e) for e in pos_events(deliveries) if e["type"] == "table.seated"]
    local = ZoneInfo("Asia/Dubai")
    assert any(s.astimezone(local).date() > DAY for s in seated)
    assert {d.source for d in deliveries} <= {"pos", "stripe", "paypal"}


def test_occurred_at_is_the_time_the_body_states(day: list[Delivery]) -> None:
    stated = {
        "pos": lambda p: datetime.fromisoformat(p["occurred_at"]),
        "stripe": lambda p: datetime.fromtimestamp(p["created"], UTC),
        "paypal": lambda p: datetime.fromisoformat(p["create_time"]),
        "careem": lambda p: datetime.fromisoformat(p["created_at"]),
        "talabat": lambda p: datetime.fromisoformat(p["timestamp"]),
        "deliveroo": lambda p: datetime.fromisoformat(p["body"]["occurred_at"]),
        "jahez": lambda p: datetime.fromisoformat(p["timestamp"]),
    }
    for d in day:
        assert stated[d.source](orjson.loads(d.body)) == d.occurred_at, d
