"""The synthetic service day: valid, signed, linked, realistic and deterministic."""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from partner_signals.providers import PROVIDERS, Credentials
from synthetic import (
    DEMO_RESTAURANTS,
    WORLD,
    Delivery,
    RestaurantSpec,
    in_service,
    service_day,
    service_days_until,
    signed_headers,
)
from tests.synthetic.days import DAY, MID_DINNER, SEED, SPECS, at, pos_events


def test_volume_per_restaurant_day(calm_day: list[Delivery]) -> None:
    per_restaurant: dict[str, int] = defaultdict(int)
    for d in calm_day:
        per_restaurant[d.restaurant_id] += 1
    assert set(per_restaurant) == set(SPECS)
    assert all(300 <= n <= 3000 for n in per_restaurant.values()), per_restaurant
    assert {d.source for d in calm_day} == {"pos", *PROVIDERS}


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
        "deliverect": lambda p: p["location"],
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
        elif d.source == "deliverect":
            # none sent: SHA-256 of orderId, status, timeStamp, as the catalogue derives it
            assert len(d.event_id) == 64 and int(d.event_id, 16) >= 0
        else:
            assert d.event_id.startswith("WH-")


def test_until_keeps_what_was_sent_and_leaves_clocks_open(day: list[Delivery]) -> None:
    partial = service_day(WORLD, DAY, seed=SEED, until=MID_DINNER)
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
        "deliverect": lambda p: datetime.fromisoformat(p["timeStamp"]),
    }
    for d in day:
        assert stated[d.source](orjson.loads(d.body)) == d.occurred_at, d


# Instants the demo may run at: late night in Europe, early morning, noon, evening.
DEMO_INSTANTS = [
    datetime(2026, 11, 24, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
    datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    datetime(2026, 11, 24, 18, 0, tzinfo=UTC),
]


def open_now(deliveries: list[Delivery]) -> dict[str, dict[str, int]]:
    """Per restaurant, what is open after everything sent: tables seated and not
    cleared, orders created and neither paid nor cancelled, bills requested and unpaid."""
    seated: dict[tuple[str, str], int] = defaultdict(int)
    created: dict[str, set[str]] = defaultdict(set)
    settled: dict[str, set[str]] = defaultdict(set)
    bills: dict[str, set[str]] = defaultdict(set)
    for e in pos_events(deliveries):
        r = e["restaurant_id"]
        match e["type"]:
            case "table.seated":
                seated[(r, e["table_id"])] += 1
            case "table.cleared":
                seated[(r, e["table_id"])] -= 1
            case "order.created":
                created[r].add(e["order_id"])
            case "order.bill_requested":
                bills[r].add(e["order_id"])
            case "order.paid" | "order.cancelled":
                settled[r].add(e["order_id"])
    out: dict[str, dict[str, int]] = {}
    for r in created:
        out[r] = {
            "tables": sum(1 for (rr, _), n in seated.items() if rr == r and n > 0),
            "orders": len(created[r] - settled[r]),
            "bills": len(bills[r] - settled[r]),
        }
    return out


@pytest.mark.parametrize("now", DEMO_INSTANTS, ids=lambda t: f"{t:%H%M}Z")
def test_the_days_up_to_now_leave_a_live_service_open_at_any_hour(now: datetime) -> None:
    live = [s for s in WORLD if in_service(s, now)]
    assert live, now
    deliveries = service_days_until(live, now, days=2, seed=SEED)
    assert deliveries and all(d.send_at <= now for d in deliveries)
    assert [d.send_at for d in deliveries] == sorted(d.send_at for d in deliveries)
    state = open_now(deliveries)
    for spec in live:
        assert state[spec.restaurant_id]["tables"] >= 2, (spec.restaurant_id, state)
        assert state[spec.restaurant_id]["orders"] >= 2, (spec.restaurant_id, state)
    # bills wait a few minutes each: across the live restaurants some are open now
    assert sum(state[s.restaurant_id]["bills"] for s in live) >= 1, state


def test_the_days_up_to_now_are_each_restaurants_own_days() -> None:
    """At 00:30 UTC New York is at 19:30 the day before: its today is that day, and the
    day before it is yesterday; Sydney is already on the day after."""
    now = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
    specs = {s.restaurant_id: s for s in WORLD}
    picked = [specs["nyc-west-village"], specs["syd-surry-hills"]]
    deliveries = service_days_until(picked, now, days=2, seed=SEED)
    local_dates: dict[str, set[str]] = defaultdict(set)
    for e in pos_events(deliveries):
        spec = specs[e["restaurant_id"]]
        local_dates[spec.restaurant_id].add(
            at(e).astimezone(ZoneInfo(spec.timezone)).date().isoformat()
        )
    assert local_dates["nyc-west-village"] == {"2026-11-22", "2026-11-23"}
    # Sydney (UTC+11) is at 11:30 on the 24th: yesterday's services, today's not yet open
    assert local_dates["syd-surry-hills"] == {"2026-11-23"}


def test_days_up_to_now_need_an_aware_now_and_a_day() -> None:
    with pytest.raises(ValueError, match="aware"):
        service_days_until(WORLD[:1], datetime(2026, 11, 24, 0, 30))
    with pytest.raises(ValueError, match="days"):
        service_days_until(WORLD[:1], DEMO_INSTANTS[0], days=0)
