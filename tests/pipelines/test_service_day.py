"""Every signal of the scripted service day (tests/pipelines/service_day.py), by hand.

Dubai is UTC+4: 08:00 UTC is 12:00 local; the whole day is business day 2026-03-14.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.pipelines.conftest import BuiltDay
from tests.pipelines.service_day import at


def rows(built: BuiltDay, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(built.url) as conn:
        cur = conn.execute(sql, {"r": built.day.restaurant_id, "c": built.day.company_id})
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur]


def local(hhmm: str) -> datetime:
    h, m = (int(p) for p in hhmm.split(":"))
    return datetime(2026, 3, 14, h, m)


def test_canonical_events_one_envelope_per_event(built_day: BuiltDay) -> None:
    counts = {
        r["type"]: r["n"]
        for r in rows(
            built_day,
            "select type, count(*) as n from canonical.canonical_events "
            "where company_id = %(c)s group by type",
        )
    }
    assert counts == {
        "table.seated": 4,
        "table.cleared": 1,
        "order.created": 4,
        "order.item_added": 6,
        "order.item_fired": 6,
        "order.item_ready": 5,
        "order.bill_requested": 3,
        "order.paid": 1,
        "order.cancelled": 1,
        "payment.succeeded": 2,
        "payment.failed": 1,
        # Careem 3, Deliveroo, Jahez, Talabat 2. Careem's event for an unregistered
        # restaurant is quarantined (foreign_restaurant), not here.
        "delivery.status_changed": 7,
    }
    (stripe,) = rows(
        built_day,
        "select * from canonical.canonical_events "
        "where company_id = %(c)s and type = 'payment.succeeded' and source = 'stripe'",
    )
    assert stripe["schema_version"] == 1
    assert stripe["restaurant_id"] == built_day.day.restaurant_id
    assert stripe["order_id"] == "O1"
    assert stripe["occurred_at"] == at("09:03:30")
    assert stripe["data"]["amount"] == 145
    assert stripe["data"]["payment_ref"] == "pi_O1"
    statuses = rows(
        built_day,
        "select source, data ->> 'status' as status from canonical.canonical_events "
        "where company_id = %(c)s and restaurant_id = %(r)s "
        "and type = 'delivery.status_changed' order by occurred_at",
    )
    assert [(s["source"], s["status"]) for s in statuses] == [
        ("careem", "received"),
        ("careem", "accepted"),
        ("deliveroo", "received"),
        ("jahez", "received"),
        ("talabat", "received"),
        ("talabat", "cancelled"),
        ("careem", "delivered"),
    ]


def test_order_velocity(built_day: BuiltDay) -> None:
    got = rows(
        built_day,
        "select * from marts.fct_order_velocity where restaurant_id = %(r)s "
        "order by interval_start",
    )
    # 12:00 O1 12:03 (2 covers, 145), Careem 12:12 (55), Deliveroo 12:14 (25.50)
    # 12:15 Jahez 12:16 (64), O2 12:20 (4 covers, 180)
    # 12:30 O3 12:35 (3 covers, 90), Talabat 12:38 (cancelled: 0)
    # 12:45 O4 12:45 (takeaway, cancelled: 0)
    expected = [
        # local start, orders, covers, net, per minute over 5 / 15 / 60 minutes
        ("12:00", 3, 2, "225.50", "0.4000", "0.2000", "0.0500"),
        ("12:15", 2, 4, "244.00", "0.0000", "0.1333", "0.0833"),
        ("12:30", 2, 3, "90.00", "0.0000", "0.1333", "0.1167"),
        ("12:45", 1, 0, "0.00", "0.0000", "0.0667", "0.1333"),
    ]
    assert [
        (
            r["interval_start_local"],
            r["orders"],
            r["covers"],
            r["net_sales"],
            r["orders_per_minute_5m"],
            r["orders_per_minute_15m"],
            r["orders_per_minute_60m"],
        )
        for r in got
    ] == [
        (local(t), o, c, Decimal(n), Decimal(a), Decimal(b), Decimal(d))
        for t, o, c, n, a, b, d in expected
    ]
    assert {r["business_date"] for r in got} == {date(2026, 3, 14)}
    assert got[0]["interval_start"] == at("08:00")
    assert got[0]["interval_end"] == at("08:15")


def test_item_prep_times(built_day: BuiltDay) -> None:
    got = rows(
        built_day,
        "select * from marts.fct_item_prep_times where restaurant_id = %(r)s order by item_id",
    )
    # burger: O1 08:05->08:17 720 s, O2 08:22->08:32 600 s, O4 08:46->08:55 540 s
    #   p50 600; p90 = 600 + 0.8 x (720 - 600) = 696. salad: O1 540 s (O3's never ready).
    assert [
        (
            r["item_id"],
            r["item_name"],
            r["sample_count"],
            r["p50_prep_seconds"],
            r["p90_prep_seconds"],
            r["window_sample_count"],
            r["window_p50_prep_seconds"],
            r["window_p90_prep_seconds"],
        )
        for r in got
    ] == [
        ("burger", "Burger", 3, 600, 696, 3, 600, 696),
        ("dessert", "Kunafa", 1, 360, 360, 1, 360, 360),
        ("salad", "Salad", 1, 540, 540, 1, 540, 540),
    ]


def test_table_occupancy(built_day: BuiltDay) -> None:
    got = rows(
        built_day,
        "select * from marts.fct_table_occupancy where restaurant_id = %(r)s order by seated_at",
    )
    now = datetime.now(UTC)
    closed = [
        (r["table_id"], r["covers"], r["occupancy_seconds"], r["cleared_implicitly"])
        for r in got
        if r["status"] == "cleared"
    ]
    # T1 08:00 -> 09:10 = 4200 s; T3 08:30 -> re-seated 09:20 = 3000 s.
    assert closed == [("T1", 2, 4200, False), ("T3", 3, 3000, True)]
    occupied = {r["table_id"]: r for r in got if r["status"] == "occupied"}
    assert set(occupied) == {"T2", "T3"}
    for table_id, seated in (("T2", at("08:10")), ("T3", at("09:20"))):
        running = float(occupied[table_id]["occupancy_seconds"])
        assert running == pytest.approx((now - seated).total_seconds(), abs=120)


def test_order_pacing(built_day: BuiltDay) -> None:
    got = rows(
        built_day,
        "select * from marts.fct_order_pacing where restaurant_id = %(r)s order by seated_at",
    )
    # T1: first order 08:03 (180 s); rounds 08:05+08:06, 08:41 -> gap 2160 s; 145 / 2 covers.
    # T2: 08:20 (600 s); one round; 180 / 4. T3: 08:35 (300 s); one round; 90 / 3.
    # T3 again at 09:20: nothing ordered yet.
    assert [
        (
            r["table_id"],
            r["covers"],
            r["orders"],
            r["seated_to_first_order_seconds"],
            r["rounds"],
            r["mean_round_gap_seconds"],
            r["max_round_gap_seconds"],
            r["spend"],
            r["spend_per_cover"],
        )
        for r in got
    ] == [
        ("T1", 2, 1, 180, 2, 2160, 2160, Decimal("145.00"), Decimal("72.50")),
        ("T2", 4, 1, 600, 1, None, None, Decimal("180.00"), Decimal("45.00")),
        ("T3", 3, 1, 300, 1, None, None, Decimal("90.00"), Decimal("30.00")),
        ("T3", 2, 0, None, 0, None, None, Decimal("0"), Decimal("0.00")),
    ]


def test_time_to_pay(built_day: BuiltDay) -> None:
    got = {
        r["order_id"]: r
        for r in rows(built_day, "select * from marts.fct_time_to_pay where restaurant_id = %(r)s")
    }
    assert set(got) == {"O1", "O2", "O3"}
    # O1: bill 09:00; Stripe 09:03:30 and the POS's own order.paid 09:04 -> 210 s, once.
    o1 = got["O1"]
    assert (o1["status"], o1["paid_via"], o1["payment_events"]) == ("paid", "stripe", 2)
    assert (o1["paid_at"], o1["time_to_pay_seconds"]) == (at("09:03:30"), 210)
    assert o1["paid_before_bill_request"] is False
    # O2: PayPal captured 09:29, bill requested 09:30 -> paid at once, 0 s.
    o2 = got["O2"]
    assert (o2["status"], o2["paid_via"], o2["time_to_pay_seconds"]) == ("paid", "paypal", 0)
    assert o2["paid_before_bill_request"] is True
    # O3: bill 08:50, only a failed card payment -> the clock is still running.
    o3 = got["O3"]
    assert (o3["status"], o3["paid_at"], o3["payment_events"]) == ("open", None, 0)
    elapsed = (datetime.now(UTC) - at("08:50")).total_seconds()
    assert float(o3["time_to_pay_seconds"]) == pytest.approx(elapsed, abs=120)
    # Visits link the bill to its table.
    assert o1["visit_id"] and o1["table_id"] == "T1"


def test_unregistered_restaurant_stays_out_of_the_marts(built_day: BuiltDay) -> None:
    ghost = rows(
        built_day,
        "select count(*) as n from marts.fct_order_velocity where restaurant_id = 'ghost-kitchen'",
    )
    assert ghost == [{"n": 0}]
    # Quarantined in staging, not only dropped by the marts' joins: counted, with its reason.
    quarantined = rows(
        built_day,
        "select source, provider_event_type, reason, events from marts.unmapped_events "
        "where company_id = %(c)s and reason = 'foreign_restaurant'",
    )
    assert quarantined == [
        {
            "source": "careem",
            "provider_event_type": "order.created",
            "reason": "foreign_restaurant",
            "events": 1,
        }
    ]
