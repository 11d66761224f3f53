"""Synthetic service days: what a POS, Stripe, PayPal and delivery platforms would send."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import orjson

from partner_signals.providers import PROVIDERS

Course = Literal["drink", "starter", "main", "dessert"]

DELIVERY_PLATFORMS: Final[tuple[str, ...]] = ("careem", "talabat", "deliveroo", "jahez")
LUNCH_AND_DINNER: Final[tuple[tuple[time, time], ...]] = (
    (time(12), time(15)),
    (time(18), time(23)),
)
# Stripe's own minor units: the Gulf dinars have three decimals.
CURRENCY_DECIMALS: Final[Mapping[str, int]] = {
    "AED": 2,
    "BHD": 3,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "KWD": 3,
    "OMR": 3,
    "QAR": 2,
    "SAR": 2,
    "USD": 2,
}
ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True, slots=True)
class MenuItem:
    """One dish or drink. Prep time (fired → ready) is lognormal around `prep_minutes`;
    `prep_spread` is the sigma of its logarithm (0.25: most plates within about ±25 %)."""

    item_id: str
    name: str
    course: Course
    price_minor: int
    prep_minutes: float
    prep_spread: float = 0.25


@dataclass(frozen=True, slots=True)
class RestaurantSpec:
    """A restaurant to simulate; `menu` needs at least one main. Services are local
    wall-clock windows in `timezone` (an end before its start runs past midnight);
    guests are seated until 45 minutes before a service ends and may stay past it."""

    company_id: str
    restaurant_id: str
    name: str
    timezone: str
    currency: str
    tables: int
    seats_per_table: int = 4
    menu: tuple[MenuItem, ...] = ()
    services: tuple[tuple[time, time], ...] = LUNCH_AND_DINNER
    delivery_platforms: tuple[str, ...] = DELIVERY_PLATFORMS

    def __post_init__(self) -> None:
        for label, value in (
            ("company_id", self.company_id),
            ("restaurant_id", self.restaurant_id),
        ):
            if not ID_PATTERN.match(value):
                raise ValueError(f"{label} {value!r} does not match {ID_PATTERN.pattern}")
        ZoneInfo(self.timezone)
        if self.currency not in CURRENCY_DECIMALS:
            raise ValueError(f"unknown currency {self.currency!r}")
        if self.tables < 1 or self.seats_per_table < 1:
            raise ValueError("a restaurant needs at least one table and one seat")
        if not any(item.course == "main" for item in self.menu):
            raise ValueError("the menu needs at least one main")
        unknown = set(self.delivery_platforms) - set(DELIVERY_PLATFORMS)
        if unknown:
            raise ValueError(f"unknown delivery platforms {sorted(unknown)}")

    @property
    def decimals(self) -> int:
        return CURRENCY_DECIMALS[self.currency]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP request a real sender would make. `body` is sent byte for byte;
    `occurred_at` and `send_at` are UTC. A redelivery repeats event_id and body."""

    source: str
    company_id: str
    restaurant_id: str
    event_id: str
    event_type: str
    body: bytes
    occurred_at: datetime
    send_at: datetime


def _menu(
    currency: str, rows: Iterable[tuple[str, str, Course, str, float, float]]
) -> tuple[MenuItem, ...]:
    scale = 10 ** CURRENCY_DECIMALS[currency]
    items = []
    for item_id, name, course, price, prep, spread in rows:
        minor = Decimal(price) * scale
        if minor != minor.to_integral_value():
            raise ValueError(f"{price} {currency} is not a whole number of minor units")
        items.append(MenuItem(item_id, name, course, int(minor), prep, spread))
    return tuple(items)


DEMO_RESTAURANTS: Final[tuple[RestaurantSpec, ...]] = (
    RestaurantSpec(
        company_id="oasis-dining",
        restaurant_id="dxb-marina",
        name="Oasis Grill, Dubai Marina",
        timezone="Asia/Dubai",
        currency="AED",
        tables=16,
        menu=_menu(
            "AED",
            [
                ("lemon-mint", "Lemon mint", "drink", "22.00", 2.0, 0.3),
                ("turkish-coffee", "Turkish coffee", "drink", "18.00", 2.5, 0.3),
                ("hummus", "Hummus", "starter", "32.00", 3.0, 0.3),
                ("fattoush", "Fattoush salad", "starter", "36.00", 4.0, 0.25),
                ("halloumi", "Grilled halloumi", "starter", "42.00", 6.0, 0.3),
                ("shawarma-plate", "Chicken shawarma plate", "main", "58.00", 7.0, 0.25),
                ("burger", "Wagyu burger", "main", "68.00", 9.0, 0.2),
                ("sea-bass", "Grilled sea bass", "main", "110.00", 12.0, 0.2),
                ("ribeye", "Ribeye steak", "main", "185.00", 15.0, 0.25),
                ("mixed-grill", "Mixed grill", "main", "125.00", 17.0, 0.2),
                ("kunafa", "Kunafa", "dessert", "38.00", 5.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="oasis-dining",
        restaurant_id="ruh-olaya",
        name="Oasis Grill, Olaya",
        timezone="Asia/Riyadh",
        currency="SAR",
        tables=15,
        seats_per_table=6,
        menu=_menu(
            "SAR",
            [
                ("arabic-coffee", "Arabic coffee", "drink", "15.00", 2.0, 0.3),
                ("saudi-salad", "Saudi salad", "starter", "22.00", 4.0, 0.25),
                ("sambousek", "Cheese sambousek", "starter", "28.00", 6.0, 0.3),
                ("chicken-kabsa", "Chicken kabsa", "main", "64.00", 12.0, 0.2),
                ("lamb-mandi", "Lamb mandi", "main", "95.00", 18.0, 0.2),
                ("burger", "Smash burger", "main", "55.00", 9.0, 0.2),
                ("hammour", "Grilled hammour", "main", "120.00", 14.0, 0.25),
                ("umm-ali", "Umm ali", "dessert", "32.00", 8.0, 0.3),
                ("dates-platter", "Dates platter", "dessert", "28.00", 2.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="oasis-dining",
        restaurant_id="kwt-city",
        name="Oasis Grill, Kuwait City",
        timezone="Asia/Kuwait",
        currency="KWD",
        tables=12,
        menu=_menu(
            "KWD",
            [
                ("karak", "Karak tea", "drink", "0.750", 2.0, 0.3),
                ("mutabbal", "Mutabbal", "starter", "1.500", 3.0, 0.3),
                ("fattoush", "Fattoush salad", "starter", "1.750", 4.0, 0.25),
                ("shawarma", "Shawarma", "main", "1.250", 6.0, 0.25),
                ("burger", "Angus burger", "main", "3.250", 9.0, 0.2),
                ("machboos", "Chicken machboos", "main", "4.500", 15.0, 0.2),
                ("steak", "Striploin steak", "main", "7.900", 15.0, 0.25),
                ("lugaimat", "Lugaimat", "dessert", "1.500", 6.0, 0.3),
                ("basbousa", "Basbousa", "dessert", "1.250", 3.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="albion-kitchens",
        restaurant_id="ldn-soho",
        name="Albion Kitchen, Soho",
        timezone="Europe/London",
        currency="GBP",
        tables=14,
        menu=_menu(
            "GBP",
            [
                ("flat-white", "Flat white", "drink", "3.80", 2.0, 0.3),
                ("soup", "Soup of the day", "starter", "7.50", 3.0, 0.3),
                ("caesar-salad", "Caesar salad", "starter", "9.00", 4.0, 0.25),
                ("burrata", "Burrata", "starter", "11.50", 4.5, 0.25),
                ("fish-chips", "Fish & chips", "main", "17.50", 10.0, 0.2),
                ("burger", "Dry-aged burger", "main", "16.00", 9.0, 0.2),
                ("steak", "Sirloin steak", "main", "32.00", 15.0, 0.25),
                ("risotto", "Wild mushroom risotto", "main", "18.00", 18.0, 0.15),
                ("sticky-toffee", "Sticky toffee pudding", "dessert", "8.00", 5.0, 0.3),
                ("ice-cream", "Ice cream", "dessert", "6.00", 2.0, 0.3),
            ],
        ),
    ),
    RestaurantSpec(
        company_id="nile-house",
        restaurant_id="cai-zamalek",
        name="Nile House, Zamalek",
        timezone="Africa/Cairo",
        currency="EGP",
        tables=16,
        menu=_menu(
            "EGP",
            [
                ("hibiscus", "Hibiscus", "drink", "45.00", 2.0, 0.3),
                ("tahini-salad", "Tahini salad", "starter", "60.00", 3.0, 0.3),
                ("falafel", "Falafel", "starter", "75.00", 5.0, 0.3),
                ("koshari", "Koshari", "main", "140.00", 6.0, 0.25),
                ("kofta", "Kofta", "main", "260.00", 11.0, 0.2),
                ("molokhia", "Molokhia with chicken", "main", "210.00", 12.0, 0.2),
                ("steak", "Grilled steak", "main", "520.00", 15.0, 0.25),
                ("om-ali", "Om ali", "dessert", "110.00", 8.0, 0.3),
                ("basbousa", "Basbousa", "dessert", "90.00", 3.0, 0.3),
            ],
        ),
    ),
)

# Each platform's event name and the status word its payload carries, per canonical
# status (docs/providers.md, "Delivery order statuses").
_PLATFORM_STATUSES: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "careem": {
        "received": ("order.created", "created"),
        "accepted": ("order.accepted", "accepted"),
        "rejected": ("order.rejected", "rejected"),
        "preparing": ("order.preparing", "preparing"),
        "ready": ("order.ready_for_pickup", "ready_for_pickup"),
        "picked_up": ("order.picked_up", "picked_up"),
        "delivered": ("order.delivered", "delivered"),
        "cancelled": ("order.cancelled", "cancelled"),
    },
    "talabat": {
        "received": ("order_created", "NEW"),
        "accepted": ("order_accepted", "ACCEPTED"),
        "rejected": ("order_rejected", "REJECTED"),
        "preparing": ("order_preparing", "PREPARING"),
        "ready": ("order_ready", "READY"),
        "picked_up": ("order_picked_up", "PICKED_UP"),
        "delivered": ("order_delivered", "DELIVERED"),
        "cancelled": ("order_cancelled", "CANCELLED"),
    },
    "deliveroo": {
        "received": ("order_placed", "placed"),
        "accepted": ("order_acknowledged", "acknowledged"),
        "rejected": ("order_rejected", "rejected"),
        "preparing": ("order_in_kitchen", "in_kitchen"),
        "ready": ("order_ready_for_collection", "ready_for_collection"),
        "picked_up": ("order_collected", "collected"),
        "delivered": ("order_delivered", "delivered"),
        "cancelled": ("order_canceled", "canceled"),
    },
    "jahez": {
        "received": ("order_received", "received"),
        "accepted": ("order_accepted", "accepted"),
        "rejected": ("order_rejected", "rejected"),
        "preparing": ("order_preparing", "preparing"),
        "ready": ("order_ready", "ready"),
        "picked_up": ("order_picked", "picked"),
        "delivered": ("order_delivered", "delivered"),
        "cancelled": ("order_cancelled", "cancelled"),
    },
}

_ALNUM: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UPPER_ALNUM: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UUID4_KEEP: Final = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET: Final = (0x4 << 76) | (0x2 << 62)
_STRIPE_API_VERSION: Final = "2024-06-20"
_MINUTE: Final = 60.0

# (send_at, occurred_at, source, company_id, restaurant_id, event_id, event_type, body);
# plain tuples and epoch floats keep a 200k-delivery day to a few seconds.
_Row = tuple[float, float, str, str, str, str, str, bytes]
_Lines = list[tuple[MenuItem, int]]


def service_day(
    restaurants: Iterable[RestaurantSpec],
    day: date,
    *,
    seed: int = 0,
    until: datetime | None = None,
    duplicate_rate: float = 0.03,
    late_rate: float = 0.05,
) -> list[Delivery]:
    """Every request the senders would make for `day` (a local date in each
    restaurant's zone), in the order they send them. Deterministic for a seed: the
    rates change only redeliveries and send times, never what happened. `until` keeps
    what was sent by then, so tables still seated and bills still unpaid stay open."""
    if until is not None and until.utcoffset() is None:
        raise ValueError("until must be timezone-aware")
    for label, rate in (("duplicate_rate", duplicate_rate), ("late_rate", late_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{label} must be between 0 and 1")
    rows: list[_Row] = []
    seen: set[str] = set()
    for spec in restaurants:
        if spec.restaurant_id in seen:
            raise ValueError(f"restaurant {spec.restaurant_id!r} given twice")
        seen.add(spec.restaurant_id)
        rows.extend(_Day(spec, day, seed, duplicate_rate, late_rate).build())
    if until is not None:
        cut = until.timestamp()
        rows = [row for row in rows if row[0] <= cut]
    rows.sort(key=itemgetter(0))
    at = datetime.fromtimestamp
    return [
        Delivery(
            source, company, restaurant, event_id, event_type, body, at(occ, UTC), at(send, UTC)
        )
        for send, occ, source, company, restaurant, event_id, event_type, body in rows
    ]


def to_pos_ndjson(deliveries: Iterable[Delivery]) -> bytes:
    """The POS deliveries as one NDJSON batch (redeliveries included, as sent)."""
    lines = [d.body for d in deliveries if d.source == "pos"]
    return b"\n".join(lines) + b"\n" if lines else b""


def signed_headers(
    delivery: Delivery, secret: str, *, now: float, paypal_webhook_id: str = ""
) -> dict[str, str]:
    """The headers the provider would send with this webhook, signed at `now`.
    For PayPal `secret` is the PEM private key; POS deliveries use a Bearer key instead."""
    if delivery.source == "pos":
        raise ValueError("POS deliveries carry an ingest key, not a signature")
    provider = PROVIDERS.get(delivery.source)
    if provider is None:
        raise ValueError(f"unknown source {delivery.source!r}")
    # PayPal signs over the webhook id it assigned; Deliveroo over the event's guid.
    signing_id = paypal_webhook_id if delivery.source == "paypal" else delivery.event_id
    headers = {"Content-Type": "application/json"}
    headers.update(provider.sign(delivery.body, secret, now, signing_id))
    return headers


class _Day:
    """One restaurant's service day, appended to `rows` as the senders would send it."""

    def __init__(
        self,
        spec: RestaurantSpec,
        day: date,
        seed: int,
        duplicate_rate: float,
        late_rate: float,
    ) -> None:
        self.spec = spec
        self.day = day
        self.tz = ZoneInfo(spec.timezone)
        self.company_id = spec.company_id
        self.restaurant_id = spec.restaurant_id
        self.currency = spec.currency
        self.decimals = spec.decimals
        self.scale = 10**spec.decimals
        self.duplicate_rate = duplicate_rate
        self.late_rate = late_rate
        key = f"{seed}|{spec.company_id}|{spec.restaurant_id}|{day.isoformat()}"
        # Two streams so the sender's misbehaviour never changes what happened.
        self.rng = random.Random(f"content|{key}")
        self.sender = random.Random(f"sender|{key}")
        self.rows: list[_Row] = []
        self.courses: dict[str, tuple[MenuItem, ...]] = {
            course: tuple(i for i in spec.menu if i.course == course)
            for course in ("drink", "starter", "main", "dessert")
        }
        self.cover_choices = list(range(1, spec.seats_per_table + 1))
        # Twos dominate, even parties beat odd ones, solo diners are rare.
        self.cover_weights = [
            1.0 if c == 1 else 4.0 if c == 2 else 2.0 if c % 2 == 0 else 1.2
            for c in self.cover_choices
        ]
        self.order_prefix = f"o-{day:%y%m%d}-{self.rng.getrandbits(24):06x}"
        self.orders = 0
        self.service = (0.0, 1.0)
        self.pace = 1.0

    def build(self) -> list[_Row]:
        for start, end in self.spec.services:
            t0 = self._local_ts(self.day, start)
            end_day = self.day + timedelta(days=1) if end <= start else self.day
            t1 = self._local_ts(end_day, end)
            self.service = (t0, t1)
            # Lunch guests eat faster than dinner guests.
            self.pace = 0.8 if t1 - t0 <= 3.5 * 3600 else 1.0
            self._dine_in(t0, t1)
            self._takeaways(t0, t1)
            for platform in self.spec.delivery_platforms:
                self._platform_orders(platform, t0, t1)
        return self.rows

    # ---- dining room

    def _dine_in(self, t0: float, t1: float) -> None:
        rng = self.rng
        last_seating = t1 - 45 * _MINUTE
        for n in range(1, self.spec.tables + 1):
            table_id = f"t-{n}"
            t = t0 + rng.expovariate(1 / (25 * _MINUTE))
            while t < last_seating:
                cleared = self._visit(table_id, t)
                # reset the table, then wait for the next party to walk in
                t = cleared + rng.uniform(2, 6) * _MINUTE + rng.expovariate(1 / (18 * _MINUTE))

    def _visit(self, table_id: str, seated: float) -> float:
        """Seat a party, take its rounds, bill, pay and clear; returns when cleared."""
        rng = self.rng
        pace = self.pace
        covers = rng.choices(self.cover_choices, self.cover_weights)[0]
        self._pos(seated, "table.seated", None, table_id, {"covers": covers})
        order_id = self._next_order_id()
        t = seated + _MINUTE * rng.lognormvariate(math.log(4), 0.4) * pace
        self._pos(t, "order.created", order_id, table_id, {"channel": "dine_in", "covers": covers})
        lines: _Lines = []
        t += rng.uniform(5, 40)
        eat = 0.0
        for items, minutes_on_it in self._rounds(covers):
            if eat:
                t += eat * _MINUTE * pace * rng.lognormvariate(0, 0.3)
            t = self._round(t, order_id, table_id, items, lines)
            eat = minutes_on_it
        t_bill = t + eat * _MINUTE * pace * rng.lognormvariate(0, 0.3)
        self._pos(t_bill, "order.bill_requested", order_id, table_id, {})
        if rng.random() < 0.08:
            # a table lingering over the bill: the kind a nudge is for
            wait = rng.uniform(16, 40) * _MINUTE
        else:
            wait = max(40.0, _MINUTE * rng.lognormvariate(math.log(3), 0.5))
        paid = self._settle(order_id, table_id, t_bill, t_bill + wait, lines)
        cleared = paid + rng.uniform(1.5, 8) * _MINUTE
        self._pos(cleared, "table.cleared", None, table_id, {})
        return cleared

    def _rounds(self, covers: int) -> list[tuple[_Lines, float]]:
        """A visit's rounds, each with the minutes the party spends on it afterwards."""
        rng = self.rng
        drinks, starters = self.courses["drink"], self.courses["starter"]
        mains, desserts = self.courses["main"], self.courses["dessert"]
        first: list[MenuItem] = []
        if drinks:
            first += [rng.choice(drinks) for _ in range(covers) if rng.random() < 0.5]
        with_starters = bool(starters) and rng.random() < 0.6
        if with_starters:
            first += [rng.choice(starters) for _ in range(max(1, covers // 2 + rng.randint(0, 1)))]
        rounds: list[tuple[_Lines, float]] = []
        if first:
            # drinks alone only hold the mains order back a few minutes
            rounds.append((_merge(first), 12.0 if with_starters else 5.0))
        rounds.append((_merge([rng.choice(mains) for _ in range(covers)]), 25.0))
        if desserts and rng.random() < 0.4:
            rounds.append(
                (_merge([rng.choice(desserts) for _ in range(rng.randint(1, covers))]), 12.0)
            )
        return rounds

    def _round(
        self, t: float, order_id: str, table_id: str | None, items: _Lines, lines: _Lines
    ) -> float:
        """Add, fire, cook and serve one round; returns when its last plate was served."""
        rng = self.rng
        fired = t + 2 * len(items) + rng.uniform(5, 45)
        load = self._load(fired)
        ready_at = fired
        served: list[dict[str, Any]] = []
        for j, (item, quantity) in enumerate(items):
            lines.append((item, quantity))
            data = self._line(item, quantity, len(lines))
            self._pos(t + 2 * j, "order.item_added", order_id, table_id, data)
            self._pos(fired + 0.3 * j, "order.item_fired", order_id, table_id, data)
            ready = fired + 0.3 * j + self._prep_seconds(item, load)
            self._pos(ready, "order.item_ready", order_id, table_id, data)
            ready_at = max(ready_at, ready)
            served.append(data)
        # The pass holds plates until the whole round is up, so a table eats together.
        t_served = ready_at + rng.uniform(20, 120)
        for j, data in enumerate(served):
            self._pos(t_served + 6 * j, "order.item_served", order_id, table_id, data)
        return t_served + 6 * (len(served) - 1)

    def _takeaways(self, t0: float, t1: float) -> None:
        for t in self._arrivals(t0, t1 - 10 * _MINUTE, self.spec.tables * 0.2):
            self._takeaway(t)

    def _takeaway(self, t: float) -> None:
        rng = self.rng
        order_id = self._next_order_id()
        self._pos(t, "order.created", order_id, None, {"channel": "takeaway"})
        items = self._bag(rng.randint(1, 3))
        lines: _Lines = []
        if rng.random() < 0.03:
            # the guest changes their mind before the kitchen starts
            for j, (item, quantity) in enumerate(items):
                data = self._line(item, quantity, j + 1)
                self._pos(t + 5 + 2 * j, "order.item_added", order_id, None, data)
            self._pos(t + rng.uniform(60, 240), "order.cancelled", order_id, None, {})
            return
        self._round(t + 5, order_id, None, items, lines)
        # Takeaway is paid at the counter while the kitchen already cooks.
        self._settle(order_id, None, t + 20, t + rng.uniform(40, 150), lines)

    # ---- delivery platforms

    def _platform_orders(self, platform: str, t0: float, t1: float) -> None:
        for t in self._arrivals(t0, t1 - 15 * _MINUTE, 1.1):
            self._platform_order(platform, t)

    def _platform_order(self, platform: str, t: float) -> None:
        rng = self.rng
        items = self._bag(rng.randint(1, 4))
        steps = [("received", t)]
        outcome = rng.random()
        if outcome < 0.04:
            steps.append(("rejected", t + rng.uniform(40, 240)))
        else:
            accepted = t + rng.uniform(20, 180)
            preparing = accepted + rng.uniform(10, 120)
            steps += [("accepted", accepted), ("preparing", preparing)]
            if outcome < 0.08:
                steps.append(("cancelled", preparing + rng.uniform(60, 600)))
            else:
                load = self._load(preparing)
                cook = max(self._prep_seconds(item, load) for item, _ in items)
                ready = preparing + cook + rng.uniform(60, 300)  # packing
                picked_up = ready + rng.uniform(60, 900)  # waiting for a rider
                delivered = picked_up + rng.uniform(8, 35) * _MINUTE
                steps += [("ready", ready), ("picked_up", picked_up), ("delivered", delivered)]
        total = sum(item.price_minor * quantity for item, quantity in items)
        if platform == "careem":
            build, ref = self._careem, f"CRM-{rng.randrange(10**9, 10**10)}"
        elif platform == "talabat":
            build, ref = self._talabat, f"TLB-{rng.getrandbits(40):010X}"
        elif platform == "deliveroo":
            build, ref = self._deliveroo, f"DRO-{rng.getrandbits(32):08x}"
        else:
            build, ref = self._jahez, str(rng.randrange(100_000, 10_000_000))
        names = _PLATFORM_STATUSES[platform]
        for status, exact in steps:
            ts = float(int(exact))  # the platforms stamp whole seconds
            event_id = self._uuid()
            event_type, word = names[status]
            body = build(event_id, event_type, word, ts, ref, items, total)
            self._emit(platform, event_id, event_type, ts, orjson.dumps(body))

    def _careem(
        self,
        event_id: str,
        event_type: str,
        word: str,
        t: float,
        ref: str,
        items: _Lines,
        total: int,
    ) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "event_type": event_type,
            "created_at": self._local(t, "seconds"),
            "order": {
                "id": ref,
                "store_id": self.restaurant_id,
                "status": word,
                "total": {"amount": self._money(total), "currency": self.currency},
                "items": [
                    {
                        "id": i.item_id,
                        "name": i.name,
                        "quantity": q,
                        "price": self._money(i.price_minor),
                    }
                    for i, q in items
                ],
            },
        }

    def _talabat(
        self,
        event_id: str,
        event_type: str,
        word: str,
        t: float,
        ref: str,
        items: _Lines,
        total: int,
    ) -> dict[str, Any]:
        return {
            "eventId": event_id,
            "eventType": event_type,
            "timestamp": self._local(t, "seconds"),
            "order": {
                "code": ref,
                "vendorCode": self.restaurant_id,
                "status": word,
                "price": {"grandTotal": self._money(total), "currency": self.currency},
                "products": [
                    {
                        "id": i.item_id,
                        "name": i.name,
                        "quantity": q,
                        "unitPrice": self._money(i.price_minor),
                    }
                    for i, q in items
                ],
            },
        }

    def _deliveroo(
        self,
        event_id: str,
        event_type: str,
        word: str,
        t: float,
        ref: str,
        items: _Lines,
        total: int,
    ) -> dict[str, Any]:
        # Deliveroo's event id travels in the X-Deliveroo-Sequence-Guid header only.
        return {
            "event": event_type,
            "body": {
                "occurred_at": _utc_z(t),
                "order": {
                    "id": ref,
                    "location_id": self.restaurant_id,
                    "status": word,
                    "total_price": {"fractional": total, "currency_code": self.currency},
                    "items": [
                        {
                            "pos_item_id": i.item_id,
                            "name": i.name,
                            "quantity": q,
                            "unit_price": {"fractional": i.price_minor},
                        }
                        for i, q in items
                    ],
                },
            },
        }

    def _jahez(
        self,
        event_id: str,
        event_type: str,
        word: str,
        t: float,
        ref: str,
        items: _Lines,
        total: int,
    ) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "event": event_type,
            "timestamp": self._local(t, "seconds"),
            "branch_id": self.restaurant_id,
            "order": {
                "jahez_id": int(ref),
                "status": word,
                "total": self._money(total),
                "currency": self.currency,
                "items": [
                    {
                        "id": i.item_id,
                        "name": i.name,
                        "quantity": q,
                        "price": self._money(i.price_minor),
                    }
                    for i, q in items
                ],
            },
        }

    # ---- payments

    def _settle(
        self, order_id: str, table_id: str | None, started: float, paid: float, lines: _Lines
    ) -> float:
        """Take payment for an order whose bill started at `started`; returns when the
        POS recorded it paid."""
        rng = self.rng
        method = rng.random()
        if method < 0.68:
            return self._stripe_payment(order_id, table_id, started, paid, lines)
        if method < 0.80:
            return self._paypal_payment(order_id, table_id, paid, lines)
        self._pos_paid(paid, order_id, table_id, _total(lines), None, "cash")
        return paid

    def _stripe_payment(
        self, order_id: str, table_id: str | None, started: float, paid: float, lines: _Lines
    ) -> float:
        rng = self.rng
        intent = "pi_" + self._stripe_id()
        metadata = {"restaurant_id": self.restaurant_id, "order_id": order_id}
        if table_id is not None:
            metadata["table_id"] = table_id
        total = _total(lines)
        if rng.random() < 0.05:
            failed = {
                **self._intent(intent, total, started, metadata, "requires_payment_method"),
                "last_payment_error": {
                    "code": "card_declined",
                    "decline_code": rng.choice(
                        ["insufficient_funds", "do_not_honor", "expired_card"]
                    ),
                    "type": "card_error",
                },
            }
            self._stripe_event(paid, "payment_intent.payment_failed", failed)
            paid += rng.uniform(40, 150)  # the guest finds another card
        charge = "ch_" + self._stripe_id()
        succeeded = self._intent(intent, total, started, metadata, "succeeded")
        succeeded["latest_charge"] = charge
        self._stripe_event(paid, "payment_intent.succeeded", succeeded)
        pos_paid = paid + rng.uniform(0.5, 4)
        self._pos_paid(pos_paid, order_id, table_id, total, intent, "card")
        if rng.random() < 0.02:
            refunded = total if rng.random() < 0.6 else rng.choice(lines)[0].price_minor
            refund = {
                "id": charge,
                "object": "charge",
                "amount": total,
                "amount_captured": total,
                "amount_refunded": refunded,
                "currency": self.currency.lower(),
                "payment_intent": intent,
                "refunded": refunded == total,
                "status": "succeeded",
                "created": int(paid),
                "metadata": metadata,
            }
            self._stripe_event(paid + rng.uniform(10, 90) * _MINUTE, "charge.refunded", refund)
        return pos_paid

    def _intent(
        self, intent: str, amount: int, started: float, metadata: dict[str, str], status: str
    ) -> dict[str, Any]:
        return {
            "id": intent,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount if status == "succeeded" else 0,
            "currency": self.currency.lower(),
            "status": status,
            "created": int(started),
            "payment_method_types": ["card"],
            "metadata": metadata,
        }

    def _stripe_event(self, t: float, event_type: str, obj: dict[str, Any]) -> None:
        t = float(int(t))  # Stripe's clock has whole seconds
        event_id = "evt_" + self._stripe_id()
        body = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(t),
            "livemode": False,
            "api_version": _STRIPE_API_VERSION,
            "pending_webhooks": 1,
            "data": {"object": obj},
        }
        self._emit("stripe", event_id, event_type, t, orjson.dumps(body))

    def _paypal_payment(
        self, order_id: str, table_id: str | None, paid: float, lines: _Lines
    ) -> float:
        rng = self.rng
        total = _total(lines)
        capture = self._paypal_id()
        resource = {
            "id": capture,
            "status": "COMPLETED",
            "amount": {"currency_code": self.currency, "value": self._money(total)},
            "custom_id": f"{self.restaurant_id}:{order_id}",
            "invoice_id": order_id,
            "final_capture": True,
            "create_time": _utc_z(paid),
            "update_time": _utc_z(paid),
        }
        self._paypal_event(paid + 1, "PAYMENT.CAPTURE.COMPLETED", "capture", resource)
        pos_paid = paid + rng.uniform(0.5, 4)
        self._pos_paid(pos_paid, order_id, table_id, total, capture, "paypal")
        if rng.random() < 0.02:
            refunded_at = paid + rng.uniform(10, 90) * _MINUTE
            refund = {
                "id": self._paypal_id(),
                "status": "COMPLETED",
                "amount": {"currency_code": self.currency, "value": self._money(total)},
                "custom_id": f"{self.restaurant_id}:{order_id}",
                "invoice_id": order_id,
                "create_time": _utc_z(refunded_at),
                "update_time": _utc_z(refunded_at),
                "links": [
                    {
                        "rel": "up",
                        "href": f"https://api.paypal.com/v2/payments/captures/{capture}",
                    }
                ],
            }
            self._paypal_event(refunded_at + 1, "PAYMENT.CAPTURE.REFUNDED", "refund", refund)
        return pos_paid

    def _paypal_event(
        self, t: float, event_type: str, resource_type: str, resource: dict[str, Any]
    ) -> None:
        t = float(int(t))
        event_id = f"WH-{self._paypal_id()}-{self._paypal_id()}"
        body = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": _utc_z(t),
            "resource_type": resource_type,
            "event_type": event_type,
            "resource": resource,
        }
        self._emit("paypal", event_id, event_type, t, orjson.dumps(body))

    def _pos_paid(
        self,
        t: float,
        order_id: str,
        table_id: str | None,
        total: int,
        payment_ref: str | None,
        method: str,
    ) -> None:
        data: dict[str, Any] = {"amount": self._money(total), "currency": self.currency}
        if payment_ref is not None:
            data["payment_ref"] = payment_ref
        data["method"] = method
        self._pos(t, "order.paid", order_id, table_id, data)

    # ---- the sender

    def _pos(
        self,
        t: float,
        event_type: str,
        order_id: str | None,
        table_id: str | None,
        data: dict[str, Any],
    ) -> None:
        t = round(t, 3)  # the body carries milliseconds; occurred_at must agree with it
        event_id = self._uuid()
        event: dict[str, Any] = {
            "event_id": event_id,
            "type": event_type,
            "occurred_at": self._local(t, "milliseconds"),
            "restaurant_id": self.restaurant_id,
        }
        if order_id is not None:
            event["order_id"] = order_id
        if table_id is not None:
            event["table_id"] = table_id
        event["data"] = data
        self._emit("pos", event_id, event_type, t, orjson.dumps(event))

    def _emit(self, source: str, event_id: str, event_type: str, t: float, body: bytes) -> None:
        """Queue one request; `t` is the time the body states."""
        s = self.sender
        send = t + 0.05 + 1.95 * s.random()
        if s.random() < self.late_rate:
            # held in the sender's queue (a POS offline, a retried timeout) past later events
            send += 30 + s.expovariate(1 / 240)
        row = (send, t, source, self.company_id, self.restaurant_id, event_id, event_type, body)
        self.rows.append(row)
        if s.random() < self.duplicate_rate:
            # senders retry when an acknowledgement is lost: mostly soon, sometimes hours on
            r = s.random()
            if r < 0.6:
                delay = s.uniform(1, 60)
            elif r < 0.9:
                delay = s.uniform(60, 1800)
            else:
                delay = s.uniform(1800, 6 * 3600)
            self.rows.append((send + delay, *row[1:]))

    # ---- small helpers

    def _next_order_id(self) -> str:
        self.orders += 1
        return f"{self.order_prefix}-{self.orders:04d}"

    def _bag(self, n: int) -> _Lines:
        """A takeaway or delivery basket: mostly mains, now and then a side or dessert."""
        rng = self.rng
        menu = self.courses["main"] * 3 + self.courses["starter"] + self.courses["dessert"]
        return _merge([rng.choice(menu) for _ in range(n)])

    def _line(self, item: MenuItem, quantity: int, n: int) -> dict[str, Any]:
        return {
            "line_id": f"l{n}",
            "item_id": item.item_id,
            "item_name": item.name,
            "quantity": quantity,
            "unit_price": self._money(item.price_minor),
        }

    def _prep_seconds(self, item: MenuItem, load: float) -> float:
        return _MINUTE * item.prep_minutes * load * self.rng.lognormvariate(0, item.prep_spread)

    def _arrivals(self, start: float, stop: float, peak_per_hour: float) -> list[float]:
        """Orders walking in between start and stop, at `peak_per_hour` in the rush and
        about a third of that at the edges of the service (Poisson, thinned)."""
        rng = self.rng
        per_second = peak_per_hour / 3600
        times = []
        t = start + rng.expovariate(per_second)
        while t < stop:
            if rng.random() < 0.35 + 0.65 * self._rush(t):
                times.append(t)
            t += rng.expovariate(per_second)
        return times

    def _rush(self, t: float) -> float:
        """0 to 1: how close `t` is to the peak of the current service."""
        t0, t1 = self.service
        width = 0.22 * (t1 - t0)
        return math.exp(-(((t - (t0 + 0.45 * (t1 - t0))) / width) ** 2))

    def _load(self, t: float) -> float:
        """How much slower the kitchen runs at `t`: up to 30 % at the rush."""
        return 1.0 + 0.3 * self._rush(t)

    def _money(self, minor: int) -> str:
        if self.decimals == 0:
            return str(minor)
        whole, part = divmod(minor, self.scale)
        return f"{whole}.{part:0{self.decimals}d}"

    def _local_ts(self, day: date, clock: time) -> float:
        return datetime.combine(day, clock, tzinfo=self.tz).timestamp()

    def _local(self, t: float, timespec: str) -> str:
        return datetime.fromtimestamp(t, self.tz).isoformat(timespec=timespec)

    def _uuid(self) -> str:
        h = "%032x" % (self.rng.getrandbits(128) & _UUID4_KEEP | _UUID4_SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _stripe_id(self) -> str:
        return "".join(self.rng.choices(_ALNUM, k=24))

    def _paypal_id(self) -> str:
        return "".join(self.rng.choices(_UPPER_ALNUM, k=17))


def _merge(items: list[MenuItem]) -> _Lines:
    """Lines from picked items: the same dish twice is one line of quantity two."""
    counts: dict[str, list[Any]] = {}
    for item in items:
        entry = counts.setdefault(item.item_id, [item, 0])
        entry[1] += 1
    return [(entry[0], entry[1]) for entry in counts.values()]


def _total(lines: _Lines) -> int:
    return sum(item.price_minor * quantity for item, quantity in lines)


def _utc_z(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
