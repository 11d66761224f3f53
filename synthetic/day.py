"""The service day: each restaurant's visits, takeaways and delivery orders on one timeline,
and the senders' habits (send delays, redeliveries). Each source's bodies are its own module."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, Final
from zoneinfo import ZoneInfo

from partner_signals.providers import PROVIDERS
from synthetic import paypal, platforms, pos, stripe
from synthetic.restaurants import Lines, MenuItem, RestaurantSpec, lines_total, merge_lines


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


_UUID4_KEEP: Final = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET: Final = (0x4 << 76) | (0x2 << 62)
_MINUTE: Final = 60.0

# (send_at, occurred_at, source, company_id, restaurant_id, event_id, event_type, body);
# plain tuples and epoch floats keep a 200k-delivery day to a few seconds.
_Row = tuple[float, float, str, str, str, str, str, bytes]


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
        rows.extend(RestaurantDay(spec, day, seed, duplicate_rate, late_rate).build())
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


def service_days_until(
    restaurants: Iterable[RestaurantSpec],
    now: datetime,
    *,
    days: int = 2,
    seed: int = 0,
    duplicate_rate: float = 0.03,
    late_rate: float = 0.05,
) -> list[Delivery]:
    """Each restaurant's last `days` service days as its own clock counts them (its
    local today and the days before), sent up to `now`: what has landed by now, with
    the services under way still open. In sending order."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if days < 1:
        raise ValueError("days must be at least 1")
    by_local_date: dict[date, list[RestaurantSpec]] = {}
    for spec in restaurants:
        by_local_date.setdefault(now.astimezone(ZoneInfo(spec.timezone)).date(), []).append(spec)
    out: list[Delivery] = []
    for local_today, specs in sorted(by_local_date.items()):
        for back in range(days - 1, -1, -1):
            out += service_day(
                specs,
                local_today - timedelta(days=back),
                seed=seed,
                until=now,
                duplicate_rate=duplicate_rate,
                late_rate=late_rate,
            )
    out.sort(key=lambda d: d.send_at)
    return out


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


class RestaurantDay:
    """One restaurant's service day, appended to `rows` as the senders would send it.
    The source modules build their bodies from its `rng` (what happened, in order) and
    `emit` them; `sender` draws only the sending (delays, redeliveries)."""

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
        pos.send(self, seated, "table.seated", None, table_id, {"covers": covers})
        order_id = self._next_order_id()
        t = seated + _MINUTE * rng.lognormvariate(math.log(4), 0.4) * pace
        pos.send(
            self, t, "order.created", order_id, table_id, {"channel": "dine_in", "covers": covers}
        )
        lines: Lines = []
        t += rng.uniform(5, 40)
        eat = 0.0
        for items, minutes_on_it in self._rounds(covers):
            if eat:
                t += eat * _MINUTE * pace * rng.lognormvariate(0, 0.3)
            t = self._round(t, order_id, table_id, items, lines)
            eat = minutes_on_it
        t_bill = t + eat * _MINUTE * pace * rng.lognormvariate(0, 0.3)
        pos.send(self, t_bill, "order.bill_requested", order_id, table_id, {})
        if rng.random() < 0.08:
            # a table lingering over the bill: the kind a nudge is for
            wait = rng.uniform(16, 40) * _MINUTE
        else:
            wait = max(40.0, _MINUTE * rng.lognormvariate(math.log(3), 0.5))
        paid = self._settle(order_id, table_id, t_bill, t_bill + wait, lines)
        cleared = paid + rng.uniform(1.5, 8) * _MINUTE
        pos.send(self, cleared, "table.cleared", None, table_id, {})
        return cleared

    def _rounds(self, covers: int) -> list[tuple[Lines, float]]:
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
        rounds: list[tuple[Lines, float]] = []
        if first:
            # drinks alone only hold the mains order back a few minutes
            rounds.append((merge_lines(first), 12.0 if with_starters else 5.0))
        rounds.append((merge_lines([rng.choice(mains) for _ in range(covers)]), 25.0))
        if desserts and rng.random() < 0.4:
            rounds.append(
                (merge_lines([rng.choice(desserts) for _ in range(rng.randint(1, covers))]), 12.0)
            )
        return rounds

    def _round(
        self, t: float, order_id: str, table_id: str | None, items: Lines, lines: Lines
    ) -> float:
        """Add, fire, cook and serve one round; returns when its last plate was served."""
        rng = self.rng
        fired = t + 2 * len(items) + rng.uniform(5, 45)
        load = self._load(fired)
        ready_at = fired
        served: list[dict[str, Any]] = []
        for j, (item, quantity) in enumerate(items):
            lines.append((item, quantity))
            data = pos.line(self, item, quantity, len(lines))
            pos.send(self, t + 2 * j, "order.item_added", order_id, table_id, data)
            pos.send(self, fired + 0.3 * j, "order.item_fired", order_id, table_id, data)
            ready = fired + 0.3 * j + self._prep_seconds(item, load)
            pos.send(self, ready, "order.item_ready", order_id, table_id, data)
            ready_at = max(ready_at, ready)
            served.append(data)
        # The pass holds plates until the whole round is up, so a table eats together.
        t_served = ready_at + rng.uniform(20, 120)
        for j, data in enumerate(served):
            pos.send(self, t_served + 6 * j, "order.item_served", order_id, table_id, data)
        return t_served + 6 * (len(served) - 1)

    def _takeaways(self, t0: float, t1: float) -> None:
        for t in self._arrivals(t0, t1 - 10 * _MINUTE, self.spec.tables * 0.2):
            self._takeaway(t)

    def _takeaway(self, t: float) -> None:
        rng = self.rng
        order_id = self._next_order_id()
        pos.send(self, t, "order.created", order_id, None, {"channel": "takeaway"})
        items = self._bag(rng.randint(1, 3))
        lines: Lines = []
        if rng.random() < 0.03:
            # the guest changes their mind before the kitchen starts
            for j, (item, quantity) in enumerate(items):
                data = pos.line(self, item, quantity, j + 1)
                pos.send(self, t + 5 + 2 * j, "order.item_added", order_id, None, data)
            pos.send(self, t + rng.uniform(60, 240), "order.cancelled", order_id, None, {})
            return
        self._round(t + 5, order_id, None, items, lines)
        # Takeaway is paid at the counter while the kitchen already cooks.
        self._settle(order_id, None, t + 20, t + rng.uniform(40, 150), lines)

    # ---- delivery platforms

    def _platform_orders(self, platform: str, t0: float, t1: float) -> None:
        rate = platforms.SHAPES[platform].habits.orders_per_hour
        for t in self._arrivals(t0, t1 - 15 * _MINUTE, rate):
            self._platform_order(platform, t)

    def _platform_order(self, platform: str, t: float) -> None:
        """Walk one delivery order through the platform's statuses, then send them."""
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
        platforms.send_order(self, platform, steps, items)

    # ---- payments

    def _settle(
        self, order_id: str, table_id: str | None, started: float, paid: float, lines: Lines
    ) -> float:
        """Take payment for an order whose bill started at `started`; returns when the
        POS recorded it paid."""
        rng = self.rng
        method = rng.random()
        if method < 0.68:
            return stripe.pay(self, order_id, table_id, started, paid, lines)
        if method < 0.80:
            return paypal.pay(self, order_id, table_id, paid, lines)
        pos.send_paid(self, paid, order_id, table_id, lines_total(lines), None, "cash")
        return paid

    # ---- what the source modules use: the sender, amounts, clocks, ids

    def emit(
        self,
        source: str,
        event_id: str,
        event_type: str,
        t: float,
        body: bytes,
        *,
        redelivers: bool = True,
    ) -> None:
        """Queue one request; `t` is the time the body states. A sender that `redelivers`
        sometimes sends it again (a lost acknowledgement); one that does not, never."""
        s = self.sender
        send = t + 0.05 + 1.95 * s.random()
        if s.random() < self.late_rate:
            # held in the sender's queue (a POS offline, a retried timeout) past later events
            send += 30 + s.expovariate(1 / 240)
        row = (send, t, source, self.company_id, self.restaurant_id, event_id, event_type, body)
        self.rows.append(row)
        if redelivers and s.random() < self.duplicate_rate:
            # senders retry when an acknowledgement is lost: mostly soon, sometimes hours on
            r = s.random()
            if r < 0.6:
                delay = s.uniform(1, 60)
            elif r < 0.9:
                delay = s.uniform(60, 1800)
            else:
                delay = s.uniform(1800, 6 * 3600)
            self.rows.append((send + delay, *row[1:]))

    def money(self, minor: int) -> str:
        """An amount in minor units as the restaurant's currency writes it: "58.00", "1.250"."""
        if self.decimals == 0:
            return str(minor)
        whole, part = divmod(minor, self.scale)
        return f"{whole}.{part:0{self.decimals}d}"

    def local(self, t: float, timespec: str) -> str:
        """`t` as the restaurant's clock states it (ISO 8601 with its offset)."""
        return datetime.fromtimestamp(t, self.tz).isoformat(timespec=timespec)

    def utc(self, t: float) -> str:
        """`t` as the payment providers and Deliveroo state it: UTC, whole seconds, Z."""
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def uuid(self) -> str:
        """A version 4 UUID from the content stream (the POS's and platforms' event ids)."""
        h = "%032x" % (self.rng.getrandbits(128) & _UUID4_KEEP | _UUID4_SET)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    # ---- small helpers

    def _next_order_id(self) -> str:
        self.orders += 1
        return f"{self.order_prefix}-{self.orders:04d}"

    def _bag(self, n: int) -> Lines:
        """A takeaway or delivery basket: mostly mains, now and then a side or dessert."""
        rng = self.rng
        menu = self.courses["main"] * 3 + self.courses["starter"] + self.courses["dessert"]
        return merge_lines([rng.choice(menu) for _ in range(n)])

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

    def _local_ts(self, day: date, clock: time) -> float:
        return datetime.combine(day, clock, tzinfo=self.tz).timestamp()
