"""The delivery platforms' webhooks: shaped by the source catalogue, each order walks its
platform's statuses, totals add up, Deliverect's updates are signed and named as ingest
names them."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ingest.app import create_app
from partner_signals.catalogue.sources import (
    DeliveryPlatform,
    JsonPath,
    delivery_platform_names,
    parse_entry,
    source,
)
from partner_signals.providers import PROVIDERS, Credentials
from partner_signals.settings import Settings
from synthetic import (
    DELIVERY_PLATFORMS,
    DEMO_RESTAURANTS,
    WORLD,
    Delivery,
    service_day,
    signed_headers,
)
from synthetic.day import RestaurantDay
from synthetic.platforms import DIRECT_PLATFORMS, SHAPES, Habits, order_body, shape_of
from tests.ingest.conftest import make_tenant
from tests.synthetic.days import DAY, SEED, SPECS, minor

# docs/providers.md, "Delivery order statuses", column by column: what each platform
# sends for received, accepted, rejected, preparing, ready, picked_up, delivered, cancelled.
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
# Deliverect's published codes (docs/providers.md), as integers in its body.
DELIVERECT_CODES = {
    10: "received",
    20: "accepted",
    35: "rejected",
    120: "rejected",
    50: "preparing",
    60: "ready",
    70: "ready",
    87: "picked_up",
    89: "picked_up",
    90: "delivered",
    100: "cancelled",
    110: "cancelled",
}
WALKS = [
    ["received", "accepted", "preparing", "ready", "picked_up", "delivered"],
    ["received", "rejected"],
    ["received", "accepted", "preparing", "cancelled"],
]


def at_path(payload: Any, path: JsonPath) -> Any:
    for key in path:
        payload = payload[key]
    return payload


def to_status(platform: str, name: Any) -> str:
    if platform == "deliverect":
        assert isinstance(name, int)
        return DELIVERECT_CODES[name]
    return dict(zip(CANONICAL[platform].split(), STATUSES, strict=True))[name]


@pytest.mark.parametrize("platform", sorted(DELIVERY_PLATFORMS))
def test_delivery_orders_walk_their_platforms_statuses(
    calm_day: list[Delivery], platform: str
) -> None:
    # Read where the catalogue says: what the staging model reads is what was written.
    entry = source(platform)
    assert entry.delivery is not None
    walks: dict[Any, list[tuple[datetime, str]]] = defaultdict(list)
    for d in calm_day:
        if d.source != platform:
            continue
        payload = orjson.loads(d.body)
        assert at_path(payload, entry.restaurant.json) == d.restaurant_id
        walks[at_path(payload, entry.delivery.order_id)].append(
            (d.occurred_at, to_status(platform, at_path(payload, entry.event_type.json)))
        )
        if entry.delivery.amount:
            check_delivery_totals(platform, payload, SPECS[d.restaurant_id].currency)
    assert len(walks) >= 10
    for steps in walks.values():
        assert [status for _, status in sorted(steps)] in WALKS
    # every restaurant that takes this platform's orders gets some
    takers = {r for r, spec in SPECS.items() if platform in spec.delivery_platforms}
    assert takers
    assert {d.restaurant_id for d in calm_day if d.source == platform} == takers


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


NEW_ENTRY = {
    "name": "newplat",
    "raw_table": "webhook_events",
    "signature": {"scheme": "body_hmac_sha256_hex", "headers": ["x-new-signature"]},
    "event_id": {"json": ["meta", "id"]},
    "event_type": {"json": ["meta", "kind"]},
    "restaurant": {"json": ["location"]},
    "delivery": {
        "order_id": ["order", "ref"],
        "occurred_at": ["meta", "at"],
        "amount": ["order", "money", "minor"],
        "amount_in_minor_units": True,
        "currency": ["order", "money", "currency"],
        "order_status": ["order", "state"],
        "statuses": {"order.new": "received", "order.done": "delivered"},
    },
}


def test_a_new_catalogue_entry_is_generated_with_no_generator_edit() -> None:
    """A platform the generator never heard of: its body follows its catalogue entry."""
    entry = parse_entry("stg_newplat__order_events", NEW_ENTRY, source("careem").yml)
    shape = shape_of(entry)
    assert dict(shape.events) == {
        "received": ("order.new", "received"),
        "delivered": ("order.done", "delivered"),
    }
    spec = DEMO_RESTAURANTS[3]
    day = RestaurantDay(spec, DAY, SEED, 0.0, 0.0)
    burger = next(item for item in spec.menu if item.item_id == "burger")
    t = datetime(2026, 11, 23, 12, 30, tzinfo=UTC).timestamp()
    body = order_body(day, shape, "e-1", "received", t, 17, [(burger, 2)])
    assert orjson.dumps(body) == orjson.dumps(
        {
            "meta": {"id": "e-1", "kind": "order.new", "at": "2026-11-23T12:30:00Z"},
            "order": {
                "ref": 17,
                "state": "received",
                "money": {"minor": 3200, "currency": "GBP"},
            },
            "location": "ldn-soho",
        }
    )


def test_a_platform_takes_its_status_words_from_the_catalogue_when_it_declares_them() -> None:
    """The catalogue's fallback vocabulary (status words onto canonical statuses), when an
    entry declares one, is what the generator writes at the order status path."""

    @dataclass(frozen=True)
    class WithWords(DeliveryPlatform):
        status_words: Mapping[str, str] = field(default_factory=dict)

    careem = source("careem")
    assert careem.delivery is not None
    fields = {f: getattr(careem.delivery, f) for f in careem.delivery.__dataclass_fields__}
    fields["status_words"] = MappingProxyType({"NEW": "received", "COOKING": "preparing"})
    shape = shape_of(replace(careem, delivery=WithWords(**fields)))
    assert shape.events["received"] == ("order.created", "NEW")
    assert shape.events["preparing"] == ("order.preparing", "COOKING")
    # a status the catalogue gives no word keeps the platform's habit
    assert shape.events["ready"] == ("order.ready_for_pickup", "ready_for_pickup")


def test_a_shape_in_decimal_money_and_local_time_writes_the_restaurants_words() -> None:
    spec = DEMO_RESTAURANTS[2]  # Kuwait: three decimals, UTC+3
    day = RestaurantDay(spec, DAY, SEED, 0.0, 0.0)
    steak = next(item for item in spec.menu if item.item_id == "steak")
    t = datetime(2026, 11, 23, 17, 0, tzinfo=UTC).timestamp()
    body = order_body(day, SHAPES["jahez"], "e-1", "ready", t, 123456, [(steak, 1)])
    assert body["event"] == "order_ready"
    assert body["order"]["status"] == "ready"
    assert body["timestamp"] == "2026-11-23T20:00:00+03:00"
    assert body["order"]["total"] == body["order"]["items"][0]["price"] == "7.900"
    # Keys in the catalogue's order (was the old table's: branch_id before order).
    assert list(body) == ["event_id", "event", "timestamp", "order", "branch_id"]


def test_every_catalogued_platform_is_generated_with_every_canonical_status() -> None:
    assert (
        set(SHAPES)
        == set(DELIVERY_PLATFORMS)
        == set(delivery_platform_names())
        == set(PROVIDERS) - {"stripe", "paypal"}
    )
    for shape in SHAPES.values():
        assert list(shape.events) == STATUSES
    # Deliverect aggregates the others: a restaurant uses it instead of them
    assert set(DIRECT_PLATFORMS) == set(CANONICAL)
    for spec in WORLD:
        assert spec.delivery_platforms in (DIRECT_PLATFORMS, ("deliverect",))


def test_deliverect_updates_are_shaped_signed_and_named_as_ingest_names_them(
    day: list[Delivery],
) -> None:
    provider = PROVIDERS["deliverect"]
    updates = [d for d in day if d.source == "deliverect"]
    assert len(updates) > 100
    now = 1_795_000_000.0
    for d in updates:
        payload = orjson.loads(d.body)
        assert set(payload) == {
            "status",
            "timeStamp",
            "orderId",
            "location",
            "isIgnoredPOSStatus",
            "reason",
            "channelOrderId",
        }
        assert isinstance(payload["status"], int) and payload["status"] in DELIVERECT_CODES
        assert payload["isIgnoredPOSStatus"] is False
        assert payload["location"] == d.restaurant_id
        assert datetime.fromisoformat(payload["timeStamp"]) == d.occurred_at
        assert len(payload["orderId"]) == 24
        headers = {k.lower(): v for k, v in signed_headers(d, "whsec_demo", now=now).items()}
        assert set(headers) == {"content-type", "x-server-authorization-hmac-sha256"}
        provider.verify(d.body, headers, Credentials(secrets=("whsec_demo",)), now)
        # no id is sent: the one ingest derives is the one the generator reports
        assert provider.identify(payload, headers) == (d.event_id, str(payload["status"]))
    # Deliverect sends each update once, whatever the answer: no redeliveries
    assert len({d.event_id for d in updates}) == len(updates)
    # one order keeps its channel reference across its updates
    channels: dict[str, set[str]] = defaultdict(set)
    for d in updates:
        payload = orjson.loads(d.body)
        channels[payload["orderId"]].add(payload["channelOrderId"])
    assert all(len(refs) == 1 for refs in channels.values())


def test_a_deliverect_update_with_a_wrong_secret_is_refused(day: list[Delivery]) -> None:
    from partner_signals.providers import SignatureError

    update = next(d for d in day if d.source == "deliverect")
    headers = {k.lower(): v for k, v in signed_headers(update, "whsec_other", now=0.0).items()}
    with pytest.raises(SignatureError):
        PROVIDERS["deliverect"].verify(
            update.body, headers, Credentials(secrets=("whsec_demo",)), 0.0
        )


def test_default_habits_suit_an_undescribed_platform() -> None:
    habits = Habits()
    assert habits.timestamps == "utc" and habits.redelivers and not habits.aggregator
    assert habits.items == ()


def test_generated_deliverect_updates_land_through_the_real_ingest_app(
    engine: sa.Engine, settings: Settings, ids: str
) -> None:
    """The generator's updates, signed as Deliverect signs them, are accepted by ingest
    under the id ingest derives; sent again, each is a duplicate."""
    tenant = make_tenant(engine, settings, ids)
    nyc = next(s for s in WORLD if s.restaurant_id == "nyc-west-village")
    spec = replace(nyc, company_id=tenant.company_id, restaurant_id=tenant.restaurant_id)
    updates = [d for d in service_day([spec], DAY, seed=SEED) if d.source == "deliverect"]
    assert len(updates) > 20
    url = f"/webhooks/deliverect/{tenant.company_id}"
    with TestClient(create_app(settings)) as client:
        for expected in ("accepted", "duplicate"):
            for d in updates:
                headers = signed_headers(d, tenant.secret, now=time.time())
                answer = client.post(url, content=d.body, headers=headers)
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"status": expected, "event_id": d.event_id}
    with engine.connect() as conn:
        landed = conn.execute(
            sa.text(
                "select count(*) from raw.webhook_events where company_id = :c "
                "and source = 'deliverect'"
            ),
            {"c": tenant.company_id},
        ).scalar()
    assert landed == len(updates)
