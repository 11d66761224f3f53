"""Stripe invoices are bills with a lifecycle of their own, and a paid one stops time-to-pay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.pipelines.conftest import run_dbt
from tests.pipelines.service_day import (
    RawEvent,
    at,
    drop_database,
    land,
    new_database,
    pos,
    register,
)

COMPANY, RESTAURANT = "co-invoices", "dxb-invoices"
# Stripe's status word on the invoice object after each event.
STATUS = {
    "invoice.created": "draft",
    "invoice.finalized": "open",
    "invoice.payment_failed": "open",
    "invoice.paid": "paid",
    "invoice.voided": "void",
    "invoice.marked_uncollectible": "uncollectible",
}


def invoice(
    event_id: str, type_: str, when: str | datetime, invoice_id: str, due: int, **metadata: str
) -> RawEvent:
    """A Stripe invoice event as Stripe sends it (amounts in fils)."""
    paid = due if type_ == "invoice.paid" else 0
    moment = at(when) if isinstance(when, str) else when
    created = int(moment.timestamp())
    body = {
        "id": event_id, "object": "event", "type": type_, "created": created,
        "livemode": False, "api_version": "2024-06-20",
        "data": {"object": {
            "id": invoice_id, "object": "invoice", "status": STATUS[type_],
            "number": None if type_ == "invoice.created" else f"INV-{invoice_id}",
            "amount_due": due, "amount_paid": paid, "amount_remaining": due - paid,
            "currency": "aed", "created": created,
            "metadata": {"restaurant_id": RESTAURANT, **metadata},
        }},
    }  # fmt: skip
    return RawEvent("stripe", event_id, type_, moment, body)


def pos_now(n: int, type_: str, minutes_ago: int, order_id: str) -> RawEvent:
    """A POS event some minutes ago, for the views of what is open now."""
    moment = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)
    event = pos(RESTAURANT, n, type_, "00:00", order_id=order_id, channel="takeaway")
    body = {**event.body, "occurred_at": moment.isoformat()}
    return replace(event, occurred_at=moment, body=body)


def now_events() -> list[RawEvent]:
    """Two bills asked for minutes ago: one settled by an invoice, one whose invoice was
    voided (still open)."""
    ago = datetime.now(UTC).replace(microsecond=0)
    return [
        pos_now(20, "order.created", 30, "N1"),
        pos_now(21, "order.bill_requested", 20, "N1"),
        invoice("evt_n1", "invoice.paid", ago - timedelta(minutes=5), "in_n1", 1000, order_id="N1"),
        pos_now(22, "order.created", 30, "N2"),
        pos_now(23, "order.bill_requested", 20, "N2"),
        invoice(
            "evt_n2", "invoice.voided", ago - timedelta(minutes=5), "in_n2", 1000, order_id="N2"
        ),
    ]


def events() -> list[RawEvent]:
    r = RESTAURANT
    return [
        # O1: the bill is settled by a Stripe invoice, 4 minutes after it was asked for.
        pos(r, 1, "table.seated", "08:00", table_id="T1", covers=2),
        pos(r, 2, "order.created", "08:01", order_id="O1", table_id="T1", covers=2),
        pos(r, 3, "order.bill_requested", "08:30", order_id="O1", table_id="T1"),
        invoice("evt_1a", "invoice.created", "08:31", "in_1", 4500, order_id="O1"),
        invoice("evt_1b", "invoice.finalized", "08:31", "in_1", 4500, order_id="O1"),
        invoice("evt_1c", "invoice.paid", "08:34", "in_1", 4500, order_id="O1"),
        # O2: an attempt fails, then the invoice is voided: void, not a failed payment,
        # and the bill stays open.
        pos(r, 4, "order.created", "08:40", order_id="O2", channel="takeaway"),
        pos(r, 5, "order.bill_requested", "09:00", order_id="O2"),
        invoice("evt_2a", "invoice.finalized", "09:01", "in_2", 3000, order_id="O2"),
        invoice("evt_2b", "invoice.payment_failed", "09:02", "in_2", 3000, order_id="O2"),
        invoice("evt_2c", "invoice.voided", "09:05", "in_2", 3000, order_id="O2"),
        # O3: the POS says paid first; a later paid invoice for it changes nothing.
        pos(r, 6, "order.created", "09:05", order_id="O3", channel="takeaway"),
        pos(r, 7, "order.bill_requested", "09:10", order_id="O3"),
        pos(r, 8, "order.paid", "09:12", order_id="O3", amount="25.00"),
        invoice("evt_3a", "invoice.paid", "09:20", "in_3", 2500, order_id="O3"),
        # A visit's invoice nobody pays: finalized, then written off.
        invoice("evt_4a", "invoice.finalized", "09:30", "in_4", 9900, visit_id="V9"),
        invoice("evt_4b", "invoice.marked_uncollectible", "10:30", "in_4", 9900, visit_id="V9"),
    ]


@pytest.fixture(scope="module")
def built(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = new_database(server_url, "ps_invoices")
    try:
        with psycopg.connect(url) as conn:
            register(conn, COMPANY, RESTAURANT)
            land(conn, COMPANY, [e.received(e.occurred_at) for e in events() + now_events()])
        run_dbt(
            url,
            [
                "build",
                "--select",
                "+fct_invoices +fct_time_to_pay +unmapped_events"
                " +current_open_bills +current_active_orders",
                "--indirect-selection",
                "cautious",
            ],
            Path(tmp_path_factory.mktemp("invoices")),
        )
        yield url
    finally:
        drop_database(server_url, url)


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return list(conn.execute(sql).fetchall())


def test_each_invoice_has_its_lifecycle_status_amounts_and_bill(built: str) -> None:
    got = {
        r["invoice_id"]: r
        for r in rows(built, f"select * from marts.fct_invoices where company_id = '{COMPANY}'")
    }
    assert {k: v["status"] for k, v in got.items()} == {
        "in_1": "paid",
        "in_2": "void",
        "in_3": "paid",
        "in_4": "uncollectible",
        "in_n1": "paid",
        "in_n2": "void",
    }
    one, two, four = got["in_1"], got["in_2"], got["in_4"]
    # The metadata names only the order: its visit and table come from the POS.
    assert (one["order_id"], one["table_id"]) == ("O1", "T1")
    assert one["visit_id"] is not None
    assert (one["amount_due"], one["amount_paid"], one["amount_remaining"]) == (45, 45, 0)
    assert one["currency"] == "AED" and one["invoice_number"] == "INV-in_1"
    assert one["created_at"] == at("08:31") and one["paid_at"] == at("08:34")
    assert (two["voided_at"], two["payment_failures"], two["paid_at"]) == (at("09:05"), 1, None)
    assert (four["order_id"], four["visit_id"], four["amount_remaining"]) == (None, "V9", 99)
    assert four["marked_uncollectible_at"] == at("10:30")


def test_a_voided_invoice_is_no_failed_payment(built: str) -> None:
    types = rows(
        built,
        f"""
        select provider_event_type, type from canonical.canonical_events
        where company_id = '{COMPANY}' and source = 'stripe' order by 1
        """,
    )
    # Stripe's invoice events keep their names as canonical invoice.* types.
    assert {r["provider_event_type"]: r["type"] for r in types} == {t: t for t in STATUS}
    assert not [r for r in types if r["type"].startswith("payment.")]
    unmapped = rows(built, f"select * from marts.unmapped_events where company_id = '{COMPANY}'")
    assert unmapped == []


def test_time_to_pay_stops_at_the_payment_that_settled_the_bill(built: str) -> None:
    bills = {
        r["order_id"]: r
        for r in rows(built, f"select * from marts.fct_time_to_pay where company_id = '{COMPANY}'")
    }
    assert (bills["O1"]["status"], bills["O1"]["paid_at"], bills["O1"]["paid_via"]) == (
        "paid",
        at("08:34"),
        "stripe",
    )
    assert bills["O1"]["time_to_pay_seconds"] == 240
    # Voided is not paid: the bill is still open and its clock runs.
    assert (bills["O2"]["status"], bills["O2"]["paid_at"]) == ("open", None)
    # The POS was first; the invoice paid later is a second payment event, no new time.
    assert (bills["O3"]["paid_at"], bills["O3"]["paid_via"]) == (at("09:12"), "pos")
    assert bills["O3"]["payment_events"] == 2


def test_a_bill_paid_by_invoice_is_neither_open_nor_active_now(built: str) -> None:
    open_bills = rows(
        built, f"select order_id from marts.current_open_bills where company_id = '{COMPANY}'"
    )
    active = rows(
        built, f"select order_id from marts.current_active_orders where company_id = '{COMPANY}'"
    )
    # N1 was settled by its invoice; N2's invoice was voided, so its bill still runs.
    assert [r["order_id"] for r in open_bills] == ["N2"]
    assert [r["order_id"] for r in active] == ["N2"]


def test_the_payments_index_of_the_older_predicate_is_replaced(
    built: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A database built before paid invoices settled a bill has a partial index that no
    longer serves int_bills' probe; the next canonical_events run replaces it."""
    indexes = """
        select indexdef from pg_indexes
        where schemaname = 'canonical' and tablename = 'canonical_events'
            and indexdef like '%order.paid%'
    """
    with psycopg.connect(built, autocommit=True) as conn:
        conn.execute(
            """
            create index payments_before_invoices on canonical.canonical_events
                (restaurant_id, order_id)
            where (source = 'pos' and type = 'order.paid')
                or (source in ('stripe', 'paypal') and type = 'payment.succeeded')
            """
        )
        assert len(conn.execute(indexes).fetchall()) == 2
    run_dbt(
        built,
        ["run", "--select", "canonical_events"],
        Path(tmp_path_factory.mktemp("reindex")),
    )
    with psycopg.connect(built) as conn:
        (only,) = conn.execute(indexes).fetchall()
    assert "invoice.paid" in only[0]
