"""Delivery platforms' order webhooks, shaped by the source catalogue.

Where each platform puts its event id, event name, restaurant, order id, time, total,
currency and order status, and which event name (or status code) it sends for each
canonical delivery status, come from its catalogue entry (its staging model's yml, read
through `partner_signals.catalogue.sources`): the generator writes what ingest and the
staging model read, from the same declaration. What the catalogue does not say but a
realistic body needs (how the platform writes times, its order references, where it
lists the items, the words in its order status while the catalogue declares none, how
often and how persistently it sends) is the platform's `Habits` below. A catalogued
platform without habits is generated with plain defaults, so a new platform needs no edit
here beyond, at most, realistic values.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from partner_signals.catalogue.sources import (
    DELIVERY_STATUSES,
    JsonPath,
    Locator,
    Source,
    sources,
)
from partner_signals.providers.base import locate

if TYPE_CHECKING:
    from synthetic.day import RestaurantDay
    from synthetic.restaurants import Lines

ItemField = Literal["item_id", "name", "quantity", "price"]
# (path, value) pairs drawn once per order and written on each of its events.
OrderExtras = Callable[[random.Random], tuple[tuple[JsonPath, Any], ...]]


# The keys of an order line where a platform uses the plain names.
_LINE_KEYS: Final[Mapping[ItemField, JsonPath]] = MappingProxyType(
    {"item_id": ("id",), "name": ("name",), "quantity": ("quantity",), "price": ("price",)}
)


@dataclass(frozen=True, slots=True)
class Habits:
    """What a realistic body needs beyond the catalogue entry (docs/providers.md,
    "Payload shapes"). Defaults suit a platform nobody described yet."""

    # The platform's order reference, drawn from the day's content stream.
    order_ref: Callable[[random.Random], str | int] = lambda rng: f"{rng.getrandbits(48):012x}"
    # "local": ISO 8601 in the restaurant's zone, whole seconds; "utc": ...Z, whole
    # seconds; "utc_micro": ...Z with six fraction digits (milliseconds of precision).
    timestamps: Literal["local", "utc", "utc_micro"] = "utc"
    # Where the order's lines go, and each line's keys (no path: the platform sends none).
    items: JsonPath = ()
    item_fields: Mapping[ItemField, JsonPath] = field(default_factory=lambda: _LINE_KEYS)
    # Canonical status -> the word the platform writes at its order status path, used
    # where the catalogue declares no status words (else the canonical status itself).
    status_words: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Fields of the order that the catalogue does not read, drawn once per order.
    order_extras: OrderExtras | None = None
    # Orders an hour through this platform at the rush of a service.
    orders_per_hour: float = 1.1
    # False: the platform sends each update once, whatever the answer (no redeliveries).
    redelivers: bool = True
    # An aggregator brings a restaurant's delivery channels through one webhook; a
    # restaurant uses it instead of the direct platforms, not beside them.
    aggregator: bool = False


def _deliverect_order(rng: random.Random) -> tuple[tuple[JsonPath, Any], ...]:
    # Deliverect relays orders from the channels; channelOrderId is the channel's reference.
    channel = rng.choices(("UE", "DD", "DRO", "GH"), (4, 3, 2, 1))[0]
    return ((("reason",), ""), (("channelOrderId",), f"{channel}-{rng.getrandbits(40):010X}"))


HABITS: Final[Mapping[str, Habits]] = MappingProxyType(
    {
        "careem": Habits(
            order_ref=lambda rng: f"CRM-{rng.randrange(10**9, 10**10)}",
            timestamps="local",
            items=("order", "items"),
            item_fields=_LINE_KEYS,
            status_words=MappingProxyType(
                {
                    "received": "created",
                    "accepted": "accepted",
                    "rejected": "rejected",
                    "preparing": "preparing",
                    "ready": "ready_for_pickup",
                    "picked_up": "picked_up",
                    "delivered": "delivered",
                    "cancelled": "cancelled",
                }
            ),
        ),
        "talabat": Habits(
            order_ref=lambda rng: f"TLB-{rng.getrandbits(40):010X}",
            timestamps="local",
            items=("order", "products"),
            item_fields=MappingProxyType(
                {
                    "item_id": ("id",),
                    "name": ("name",),
                    "quantity": ("quantity",),
                    "price": ("unitPrice",),
                }
            ),
            status_words=MappingProxyType(
                {
                    "received": "NEW",
                    "accepted": "ACCEPTED",
                    "rejected": "REJECTED",
                    "preparing": "PREPARING",
                    "ready": "READY",
                    "picked_up": "PICKED_UP",
                    "delivered": "DELIVERED",
                    "cancelled": "CANCELLED",
                }
            ),
        ),
        "deliveroo": Habits(
            order_ref=lambda rng: f"DRO-{rng.getrandbits(32):08x}",
            timestamps="utc",
            items=("body", "order", "items"),
            item_fields=MappingProxyType(
                {
                    "item_id": ("pos_item_id",),
                    "name": ("name",),
                    "quantity": ("quantity",),
                    "price": ("unit_price", "fractional"),
                }
            ),
            status_words=MappingProxyType(
                {
                    "received": "placed",
                    "accepted": "acknowledged",
                    "rejected": "rejected",
                    "preparing": "in_kitchen",
                    "ready": "ready_for_collection",
                    "picked_up": "collected",
                    "delivered": "delivered",
                    "cancelled": "canceled",
                }
            ),
        ),
        "jahez": Habits(
            # Jahez numbers its orders: an integer in the body.
            order_ref=lambda rng: rng.randrange(100_000, 10_000_000),
            timestamps="local",
            items=("order", "items"),
            item_fields=_LINE_KEYS,
            status_words=MappingProxyType(
                {
                    "received": "received",
                    "accepted": "accepted",
                    "rejected": "rejected",
                    "preparing": "preparing",
                    "ready": "ready",
                    "picked_up": "picked",
                    "delivered": "delivered",
                    "cancelled": "cancelled",
                }
            ),
        ),
        # Its status update carries no lines and no total; its order id is a 24-hex
        # object id; it sends each update once whatever the answer.
        "deliverect": Habits(
            order_ref=lambda rng: f"{rng.getrandbits(96):024x}",
            timestamps="utc_micro",
            order_extras=_deliverect_order,
            orders_per_hour=2.5,  # every channel of the restaurant comes through it
            redelivers=False,
            aggregator=True,
        ),
    }
)


@dataclass(frozen=True, slots=True)
class PlatformShape:
    """One platform's order webhook: the catalogue's paths and vocabulary, as written.
    `events` maps each canonical delivery status the platform reports to the event name
    (or status code) it sends and the word at its order status path, typed as in the
    body (a code of digits is a JSON integer)."""

    name: str
    event_id: Locator
    event_type: JsonPath
    restaurant: JsonPath
    order_id: JsonPath
    occurred_at: JsonPath
    order_status: JsonPath
    amount: JsonPath
    currency: JsonPath
    not_applied_when_true: JsonPath
    amount_in_minor_units: bool
    events: Mapping[str, tuple[str | int, str | int]]
    habits: Habits


def _as_sent(value: str) -> str | int:
    """A catalogue key as the platform writes it: yml keys are text, but an all-digit
    status code (Deliverect's 10, 20, ...) is an integer in the body."""
    return int(value) if value.isdigit() else value


def _first_per_status(vocabulary: Mapping[str, str] | None) -> dict[str, str]:
    """Canonical status -> the first word the vocabulary maps onto it (yml order)."""
    first: dict[str, str] = {}
    for word, status in (vocabulary or {}).items():
        if status in DELIVERY_STATUSES:
            first.setdefault(str(status), str(word))
    return first


def shape_of(source: Source, habits: Habits | None = None) -> PlatformShape:
    """The body shape a catalogue entry declares, with the platform's habits."""
    delivery = source.delivery
    if delivery is None:
        raise ValueError(f"{source.name} is not a delivery platform")
    if not source.event_type.json or not source.restaurant.json:
        raise ValueError(f"{source.name}: the event name and restaurant must be JSON fields")
    habits = habits or HABITS.get(source.name) or Habits()
    names = _first_per_status(delivery.statuses)
    # Status words the catalogue declares (a newer entry's fallback vocabulary) win over
    # the habits; read leniently so an entry without them still works.
    declared_words = _first_per_status(getattr(delivery, "status_words", None))
    events: dict[str, tuple[str | int, str | int]] = {}
    for status in DELIVERY_STATUSES:
        if status not in names:
            continue  # the platform does not report this status
        name = _as_sent(names[status])
        if delivery.order_status == source.event_type.json:
            word: str | int = name  # one field carries both (Deliverect's status code)
        else:
            word = _as_sent(declared_words.get(status) or habits.status_words.get(status, status))
        events[status] = (name, word)
    return PlatformShape(
        name=source.name,
        event_id=source.event_id,
        event_type=source.event_type.json,
        restaurant=source.restaurant.json,
        order_id=delivery.order_id,
        occurred_at=delivery.occurred_at,
        order_status=delivery.order_status,
        amount=delivery.amount,
        currency=delivery.currency,
        not_applied_when_true=delivery.not_applied_when_true,
        amount_in_minor_units=delivery.amount_in_minor_units,
        events=MappingProxyType(events),
        habits=habits,
    )


@cache
def _shapes() -> Mapping[str, PlatformShape]:
    return MappingProxyType({s.name: shape_of(s) for s in sources() if s.delivery is not None})


# Every delivery platform in the catalogue, by name (sorted as the catalogue lists them).
SHAPES: Final[Mapping[str, PlatformShape]] = _shapes()
DELIVERY_PLATFORMS: Final[tuple[str, ...]] = tuple(SHAPES)
# The platforms a restaurant sends from directly when nothing else is said.
DIRECT_PLATFORMS: Final[tuple[str, ...]] = tuple(
    name for name, shape in SHAPES.items() if not shape.habits.aggregator
)


def send_order(
    day: RestaurantDay, platform: str, steps: list[tuple[str, float]], items: Lines
) -> None:
    """Send one delivery order's webhooks: one per (canonical status, time) step the
    platform reports."""
    shape = SHAPES[platform]
    habits = shape.habits
    ref = habits.order_ref(day.rng)
    extras = habits.order_extras(day.rng) if habits.order_extras else ()
    for status, exact in steps:
        if status not in shape.events:
            continue
        # Most platforms stamp whole seconds; a microsecond stamp still holds milliseconds.
        t = round(exact, 3) if habits.timestamps == "utc_micro" else float(int(exact))
        event_id = "" if shape.event_id.hash_of else day.uuid()
        body = order_body(day, shape, event_id, status, t, ref, items, extras)
        if shape.event_id.hash_of:
            # No id is sent: the catalogue derives one from the body, as ingest will.
            event_id = locate(shape.event_id, body, {})
        day.emit(
            platform,
            event_id,
            str(shape.events[status][0]),
            t,
            orjson.dumps(body),
            redelivers=habits.redelivers,
        )


def order_body(
    day: RestaurantDay,
    shape: PlatformShape,
    event_id: str,
    status: str,
    t: float,
    ref: str | int,
    items: Lines,
    extras: tuple[tuple[JsonPath, Any], ...] = (),
) -> dict[str, Any]:
    """One order webhook's payload in `shape`, for `day`'s restaurant, at `status`.
    Keys go in the catalogue's order: event id, name, time, order, restaurant, status,
    money, lines, the not-applied flag, then the platform's extras."""
    habits = shape.habits
    money: Callable[[int], str | int] = int if shape.amount_in_minor_units else day.money
    name, word = shape.events[status]
    fields: list[tuple[JsonPath, Any]] = []
    if shape.event_id.json:
        fields.append((shape.event_id.json, event_id))
    fields += [
        (shape.event_type, name),
        (shape.occurred_at, _stamp(day, habits.timestamps, t)),
        (shape.order_id, ref),
        (shape.restaurant, day.restaurant_id),
        (shape.order_status, word),
        (shape.amount, money(sum(item.price_minor * quantity for item, quantity in items))),
        (shape.currency, day.currency),
    ]
    if habits.items:
        lines = [
            _written(
                [
                    (habits.item_fields["item_id"], item.item_id),
                    (habits.item_fields["name"], item.name),
                    (habits.item_fields["quantity"], quantity),
                    (habits.item_fields["price"], money(item.price_minor)),
                ]
            )
            for item, quantity in items
        ]
        fields.append((habits.items, lines))
    fields.append((shape.not_applied_when_true, False))
    fields += extras
    return _written(fields)


def _stamp(day: RestaurantDay, style: str, t: float) -> str:
    if style == "local":
        return day.local(t, "seconds")
    if style == "utc_micro":
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return day.utc(t)


def _written(fields: list[tuple[JsonPath, Any]]) -> dict[str, Any]:
    """A JSON object with each value at its path (a path the catalogue leaves empty is
    not in the body), in the order given; one path may carry one value only."""
    out: dict[str, Any] = {}
    for path, value in fields:
        if not path:
            continue
        *parents, key = path
        node = out
        for parent in parents:
            child = node.setdefault(parent, {})
            if not isinstance(child, dict):
                raise ValueError(f"{'.'.join(path)} runs through the value at {parent!r}")
            node = child
        if key in node and node[key] != value:
            raise ValueError(f"two fields at {'.'.join(path)}")
        node[key] = value
    return out
