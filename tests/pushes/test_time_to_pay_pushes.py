"""CRM time-to-pay pushes: the payment that settled a bill stops its clock whichever way
it arrived, and no clock is stopped that never started."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import sqlalchemy as sa

from partner_signals.pushes import enqueue_events
from partner_signals.settings import Settings
from tests.pushes.conftest import (
    API_KEY,
    Clock,
    Partner,
    Tenant,
    deliver,
    enable,
    event,
    outbox,
)


def _crm(engine: sa.Engine, settings: Settings, tenant: Tenant, url: str) -> int:
    return enable(engine, settings, tenant, "crm", {"url": url}, {"api_key": API_KEY})


def test_a_paid_invoice_stops_the_clock_once(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    _crm(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        assert enqueue_events(conn, [event(tenant, "order.bill_requested")]) == 1
    with engine.begin() as conn:
        # A later batch: the invoice settles it, the POS says so too, a voided invoice
        # for another bill stops nothing.
        queued = enqueue_events(
            conn,
            [
                event(tenant, "invoice.paid", source="stripe"),
                event(tenant, "order.paid"),
                event(tenant, "invoice.voided", source="stripe", order_id="o-2"),
            ],
        )
    assert queued == 1
    deliver(engine, settings, clock, tenant)
    bodies = [orjson.loads(r.body) for r in partner.received]
    assert sorted(b["type"] for b in bodies) == ["time_to_pay.started", "time_to_pay.stopped"]
    stopped = next(b for b in bodies if b["type"] == "time_to_pay.stopped")
    assert stopped["data"]["event"]["type"] == "invoice.paid"


def test_no_stop_for_a_bill_that_never_started(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    integration = _crm(engine, settings, tenant, partner.url)
    paid_only = [
        event(tenant, "order.paid", order_id="takeaway-1"),
        event(tenant, "payment.succeeded", source="stripe", order_id="takeaway-2"),
        event(tenant, "invoice.paid", source="stripe", order_id="takeaway-3"),
    ]
    with engine.begin() as conn:
        assert enqueue_events(conn, paid_only) == 0
        # Asked for and paid in one batch: both, the start first in the outbox.
        both = [
            event(tenant, "order.bill_requested", order_id="o-9"),
            event(tenant, "order.paid", order_id="o-9"),
        ]
        assert enqueue_events(conn, both) == 2
    assert [r["event_type"] for r in outbox(engine, integration)] == [
        "time_to_pay.started",
        "time_to_pay.stopped",
    ]
    deliver(engine, settings, clock, tenant)
    assert len(partner.received) == 2
