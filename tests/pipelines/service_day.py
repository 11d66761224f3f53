"""A small scripted service day at one Dubai restaurant, as raw rows, with its signals
worked out by hand in the tests. Times are UTC; Dubai is UTC+4 (no DST)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

DAY = datetime(2026, 3, 14, tzinfo=UTC)
TIMEZONE = "Asia/Dubai"


def at(hhmm: str) -> datetime:
    """A time on the service day, UTC, as "HH:MM" or "HH:MM:SS"."""
    parts = [int(p) for p in hhmm.split(":")]
    return DAY + timedelta(
        hours=parts[0], minutes=parts[1], seconds=parts[2] if len(parts) > 2 else 0
    )


@dataclass(frozen=True)
class RawEvent:
    """One row for raw.order_events (source pos) or raw.webhook_events (providers)."""

    source: str
    event_id: str
    event_type: str
    occurred_at: datetime
    body: dict[str, Any]
    restaurant_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    received_at: datetime | None = None

    @property
    def table(self) -> str:
        return "order_events" if self.source == "pos" else "webhook_events"

    def received(self, when: datetime) -> RawEvent:
        return replace(self, received_at=when)


@dataclass(frozen=True)
class Day:
    company_id: str
    restaurant_id: str
    events: list[RawEvent]


def pos(
    restaurant_id: str,
    n: int,
    type_: str,
    when: str,
    *,
    order_id: str | None = None,
    table_id: str | None = None,
    **data: Any,
) -> RawEvent:
    event_id = f"pos-{n:03d}"
    body = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": at(when).isoformat(),
        "restaurant_id": restaurant_id,
        "order_id": order_id,
        "table_id": table_id,
        "data": data,
    }
    return RawEvent("pos", event_id, type_, at(when), body, restaurant_id=restaurant_id)


def service_day(company_id: str, restaurant_id: str) -> Day:
    r = restaurant_id
    item = {
        "burger": ("Burger", "45.00"),
        "salad": ("Salad", "30.00"),
        "dessert": ("Kunafa", "25.00"),
    }

    def line(
        n: int, type_: str, when: str, order: str, line_id: str, item_id: str, qty: int = 1
    ) -> RawEvent:
        name, price = item[item_id]
        return pos(
            r, n, type_, when, order_id=order, line_id=line_id, item_id=item_id,
            item_name=name, quantity=qty, unit_price=price,
        )  # fmt: skip

    events = [
        # Visit 1, table T1: two rounds, paid by Stripe and reported by the POS too.
        pos(r, 1, "table.seated", "08:00", table_id="T1", covers=2),
        pos(
            r,
            2,
            "order.created",
            "08:03",
            order_id="O1",
            table_id="T1",
            covers=2,
            channel="dine_in",
        ),
        line(3, "order.item_added", "08:04", "O1", "L1", "burger", 2),
        line(4, "order.item_added", "08:04", "O1", "L2", "salad"),
        line(5, "order.item_fired", "08:05", "O1", "L1", "burger", 2),
        line(6, "order.item_fired", "08:06", "O1", "L2", "salad"),
        line(7, "order.item_ready", "08:15", "O1", "L2", "salad"),
        line(8, "order.item_ready", "08:17", "O1", "L1", "burger", 2),
        line(9, "order.item_added", "08:40", "O1", "L3", "dessert"),
        line(10, "order.item_fired", "08:41", "O1", "L3", "dessert"),
        line(11, "order.item_ready", "08:47", "O1", "L3", "dessert"),
        pos(r, 12, "order.bill_requested", "09:00", order_id="O1", table_id="T1"),
        pos(
            r,
            13,
            "order.paid",
            "09:04",
            order_id="O1",
            amount="145.00",
            currency="AED",
            payment_ref="pi_O1",
        ),
        pos(r, 14, "table.cleared", "09:10", table_id="T1"),
        # Visit 2, table T2: paid by PayPal a minute before the bill was requested.
        pos(r, 15, "table.seated", "08:10", table_id="T2", covers=4),
        pos(
            r,
            16,
            "order.created",
            "08:20",
            order_id="O2",
            table_id="T2",
            covers=4,
            channel="dine_in",
        ),
        line(17, "order.item_added", "08:21", "O2", "L1", "burger", 4),
        line(18, "order.item_fired", "08:22", "O2", "L1", "burger", 4),
        line(19, "order.item_ready", "08:32", "O2", "L1", "burger", 4),
        pos(r, 20, "order.bill_requested", "09:30", order_id="O2", table_id="T2"),
        # Visit 3, table T3: bill requested, a failed card payment, still open; the table
        # is then seated again without a clear (visit 4).
        pos(r, 21, "table.seated", "08:30", table_id="T3", covers=3),
        pos(
            r,
            22,
            "order.created",
            "08:35",
            order_id="O3",
            table_id="T3",
            covers=3,
            channel="dine_in",
        ),
        line(23, "order.item_added", "08:35", "O3", "L1", "salad", 3),
        line(24, "order.item_fired", "08:36", "O3", "L1", "salad", 3),
        pos(r, 25, "order.bill_requested", "08:50", order_id="O3", table_id="T3"),
        pos(r, 26, "table.seated", "09:20", table_id="T3", covers=2),
        # Takeaway O4, cancelled after its burger was fired.
        pos(r, 27, "order.created", "08:45", order_id="O4", channel="takeaway"),
        line(28, "order.item_added", "08:45", "O4", "L1", "burger"),
        line(29, "order.item_fired", "08:46", "O4", "L1", "burger"),
        pos(r, 30, "order.cancelled", "08:48", order_id="O4"),
        line(31, "order.item_ready", "08:55", "O4", "L1", "burger"),
        # A type the signals do not know: landed, ignored.
        pos(r, 32, "order.flambeed", "08:50", order_id="O1"),
        # Payments.
        stripe("evt_O1_paid", "payment_intent.succeeded", "09:03:30", r, "O1", "pi_O1", 14500),
        stripe("evt_O3_failed", "payment_intent.payment_failed", "08:55", r, "O3", "pi_O3", 9000),
        paypal("WH-O2", "PAYMENT.CAPTURE.COMPLETED", "09:29", f"{r}:O2", "180.00"),
        # Delivery platforms.
        careem("crm-1", "order.created", "08:12", r, "CRM-1", "55.00"),
        careem("crm-2", "order.accepted", "08:13", r, "CRM-1", "55.00"),
        careem("crm-3", "order.delivered", "08:50", r, "CRM-1", "55.00"),
        careem("crm-ghost", "order.created", "08:12", "ghost-kitchen", "CRM-9", "10.00"),
        deliveroo("dro-1", "order_placed", "08:14", r, "DRO-1", 2550),
        jahez("jhz-1", "order_received", "08:16", r, 883412, "64.00"),
        talabat("tlb-1", "order_created", "08:38", r, "TLB-1", "5.500"),
        talabat("tlb-2", "order_cancelled", "08:39", r, "TLB-1", "5.500"),
    ]
    events = [e.received(e.occurred_at + timedelta(seconds=2)) for e in events]
    return Day(company_id=company_id, restaurant_id=restaurant_id, events=events)


def stripe(
    event_id: str, type_: str, when: str, r: str, order: str, intent: str, amount: int
) -> RawEvent:
    created = int(at(when).timestamp())
    body = {
        "id": event_id, "object": "event", "type": type_, "created": created,
        "livemode": False, "api_version": "2024-06-20",
        "data": {"object": {
            "id": intent, "object": "payment_intent", "amount": amount,
            "amount_received": amount if type_.endswith("succeeded") else 0,
            "currency": "aed", "created": created,
            "metadata": {"restaurant_id": r, "order_id": order},
        }},
    }  # fmt: skip
    return RawEvent("stripe", event_id, type_, at(when), body)


def paypal(event_id: str, type_: str, when: str, custom_id: str, value: str) -> RawEvent:
    body = {
        "id": event_id, "event_version": "1.0", "create_time": at(when).isoformat(),
        "resource_type": "capture", "event_type": type_,
        "resource": {
            "id": f"CAP-{event_id}", "status": "COMPLETED",
            "amount": {"currency_code": "AED", "value": value},
            "custom_id": custom_id, "create_time": at(when).isoformat(),
        },
    }  # fmt: skip
    return RawEvent("paypal", event_id, type_, at(when), body)


def careem(event_id: str, type_: str, when: str, store: str, order: str, total: str) -> RawEvent:
    body = {
        "event_id": event_id, "event_type": type_, "created_at": at(when).isoformat(),
        "order": {"id": order, "store_id": store, "status": type_.split(".")[-1],
                  "total": {"amount": total, "currency": "AED"}, "items": []},
    }  # fmt: skip
    return RawEvent("careem", event_id, type_, at(when), body)


def talabat(event_id: str, type_: str, when: str, vendor: str, code: str, total: str) -> RawEvent:
    body = {
        "eventId": event_id, "eventType": type_, "timestamp": at(when).isoformat(),
        "order": {"code": code, "vendorCode": vendor, "status": "NEW",
                  "price": {"grandTotal": total, "currency": "KWD"}, "products": []},
    }  # fmt: skip
    return RawEvent("talabat", event_id, type_, at(when), body)


def deliveroo(guid: str, type_: str, when: str, location: str, order: str, pence: int) -> RawEvent:
    body = {
        "event": type_,
        "body": {"occurred_at": at(when).isoformat(),
                 "order": {"id": order, "location_id": location, "status": "placed",
                           "total_price": {"fractional": pence, "currency_code": "GBP"},
                           "items": []}},
    }  # fmt: skip
    headers = {"x-deliveroo-sequence-guid": guid}
    return RawEvent("deliveroo", guid, type_, at(when), body, headers=headers)


def jahez(event_id: str, type_: str, when: str, branch: str, order: int, total: str) -> RawEvent:
    body = {
        "event_id": event_id, "event": type_, "timestamp": at(when).isoformat(),
        "branch_id": branch,
        "order": {"jahez_id": order, "status": "received", "total": total, "currency": "SAR",
                  "items": []},
    }  # fmt: skip
    return RawEvent("jahez", event_id, type_, at(when), body)


def register(conn: psycopg.Connection[Any], company_id: str, restaurant_id: str) -> None:
    conn.execute(
        "insert into ops.companies (company_id, name) values (%s, %s) on conflict do nothing",
        (company_id, company_id),
    )
    conn.execute(
        """
        insert into ops.restaurants (restaurant_id, company_id, name, timezone)
        values (%s, %s, %s, %s) on conflict do nothing
        """,
        (restaurant_id, company_id, restaurant_id, TIMEZONE),
    )


def land(conn: psycopg.Connection[Any], company_id: str, events: list[RawEvent]) -> int:
    """Insert raw rows the way ingest does: a duplicate is acknowledged and not stored."""
    stored = 0
    for event in events:
        received_at = event.received_at or datetime.now(UTC)
        body = json.dumps(event.body)
        headers = json.dumps(event.headers)
        if event.table == "order_events":
            cur = conn.execute(
                """
                insert into raw.order_events (source, company_id, restaurant_id, event_id,
                    event_type, occurred_at, received_at, headers, body)
                values (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)
                on conflict (company_id, source, event_id) do nothing
                """,
                (event.source, company_id, event.restaurant_id, event.event_id,
                 event.event_type, event.occurred_at, received_at, headers, body),
            )  # fmt: skip
        else:
            cur = conn.execute(
                """
                insert into raw.webhook_events (source, company_id, event_id, event_type,
                    received_at, headers, body)
                values (%s, %s, %s, %s, %s, %s::jsonb, %s)
                on conflict (company_id, source, event_id) do nothing
                """,
                (event.source, company_id, event.event_id, event.event_type, received_at,
                 headers, body),
            )  # fmt: skip
        stored += cur.rowcount
    return stored


def new_database(server_url: str, prefix: str) -> str:
    """A fresh migrated database on the same server; the caller drops it."""
    import sqlalchemy as sa

    from partner_signals.db import with_database
    from partner_signals.db.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    upgrade(engine)
    engine.dispose()
    return url


def drop_database(server_url: str, url: str) -> None:
    from urllib.parse import urlsplit

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
