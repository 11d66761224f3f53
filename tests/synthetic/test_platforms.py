"""The delivery platforms' webhooks: each order walks its platform's statuses, totals add up."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from partner_signals.providers import PROVIDERS
from synthetic import DELIVERY_PLATFORMS, DEMO_RESTAURANTS, Delivery
from synthetic.day import RestaurantDay
from synthetic.platforms import NOT_GENERATED_YET, SHAPES, PlatformShape, order_body
from tests.synthetic.days import DAY, SEED, SPECS, minor

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


def test_a_new_shape_is_written_at_its_paths_in_its_order() -> None:
    shape = PlatformShape(
        paths={
            "restaurant_id": "location",
            "event_type": "meta.kind",
            "occurred_at": "meta.at",
            "status": "order.state",
            "order_id": "order.ref",
            "currency": "order.money.currency",
            "total": "order.money.minor",
            "items": "order.lines",
        },
        item_paths={"quantity": "qty", "item_id": "sku", "name": "label", "price": "each.minor"},
        timestamps="utc",
        money="minor",
        events={"received": ("order.new", "NEW")},
        order_ref=lambda rng: rng.randrange(1000),
    )
    spec = DEMO_RESTAURANTS[3]
    day = RestaurantDay(spec, DAY, SEED, 0.0, 0.0)
    burger = next(item for item in spec.menu if item.item_id == "burger")
    t = datetime(2026, 11, 23, 12, 30, tzinfo=UTC).timestamp()
    body = order_body(day, shape, "ignored", "order.new", "NEW", t, 17, [(burger, 2)])
    assert orjson.dumps(body) == orjson.dumps(
        {
            "location": "ldn-soho",
            "meta": {"kind": "order.new", "at": "2026-11-23T12:30:00Z"},
            "order": {
                "state": "NEW",
                "ref": 17,
                "money": {"currency": "GBP", "minor": 3200},
                "lines": [
                    {"qty": 2, "sku": "burger", "label": "Dry-aged burger", "each": {"minor": 1600}}
                ],
            },
        }
    )


def test_a_shape_in_decimal_money_and_local_time_writes_the_restaurants_words() -> None:
    spec = DEMO_RESTAURANTS[2]  # Kuwait: three decimals, UTC+3
    day = RestaurantDay(spec, DAY, SEED, 0.0, 0.0)
    steak = next(item for item in spec.menu if item.item_id == "steak")
    t = datetime(2026, 11, 23, 17, 0, tzinfo=UTC).timestamp()
    body = order_body(day, SHAPES["jahez"], "e-1", "order_ready", "ready", t, 123456, [(steak, 1)])
    assert body["timestamp"] == "2026-11-23T20:00:00+03:00"
    assert body["order"]["total"] == body["order"]["items"][0]["price"] == "7.900"
    assert list(body) == ["event_id", "event", "timestamp", "branch_id", "order"]


def test_every_platform_has_a_shape_with_every_canonical_status() -> None:
    assert (
        set(SHAPES)
        == set(DELIVERY_PLATFORMS)
        == set(PROVIDERS) - {"stripe", "paypal"} - NOT_GENERATED_YET
    )
    for shape in SHAPES.values():
        assert list(shape.events) == STATUSES
