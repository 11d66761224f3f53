"""A restaurant excluded from a company-wide adapter gets nothing enqueued for it, by the
real outbox: events, signal changes and unpaid-bill nudges; and it comes back when included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from partner_signals.control import adapters
from partner_signals.control.actor import Actor
from partner_signals.pushes import enqueue_events, enqueue_signal
from partner_signals.pushes.outbox import enqueue_unpaid_bill_nudges
from partner_signals.settings import Settings
from tests.pushes.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    Clock,
    Partner,
    Tenant,
    deliver,
    enable,
    enable_webhook,
    event,
    insert_canonical,
    outbox,
)

CLI = Actor.cli()


def restaurants(engine: sa.Engine, integration_id: int, status: str = "pending") -> list[str]:
    return sorted(
        str(r["restaurant_id"]) for r in outbox(engine, integration_id) if r["status"] == status
    )


def test_an_excluded_restaurant_gets_no_events_until_included(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    company_wide = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        adapters.exclude(
            conn, CLI, tenant.company_id, "webhook", restaurant_id=tenant.other_restaurant_id
        )
        queued = enqueue_events(
            conn,
            [
                event(tenant, "order.created"),
                event(tenant, "order.created", restaurant_id=tenant.other_restaurant_id),
            ],
        )
    assert queued == 1
    assert restaurants(engine, company_wide) == [tenant.restaurant_id]
    assert deliver(engine, settings, clock, tenant).delivered == 1
    assert len(partner.received) == 1

    with engine.begin() as conn:
        adapters.include(
            conn, CLI, tenant.company_id, "webhook", restaurant_id=tenant.other_restaurant_id
        )
        enqueue_events(
            conn, [event(tenant, "order.created", restaurant_id=tenant.other_restaurant_id)]
        )
    assert restaurants(engine, company_wide) == [tenant.other_restaurant_id]


def test_excluding_cancels_what_waits_and_leaves_a_restaurants_own_adapter_alone(
    engine: sa.Engine, settings: Settings, tenant: Tenant, partners: Callable[..., Partner]
) -> None:
    partner = partners()
    company_wide = enable_webhook(engine, settings, tenant, partner.url)
    own = enable_webhook(
        engine, settings, tenant, partner.url, restaurant_id=tenant.other_restaurant_id
    )
    other = event(tenant, "order.created", restaurant_id=tenant.other_restaurant_id)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created"), other])
    assert restaurants(engine, company_wide) == sorted(
        [tenant.restaurant_id, tenant.other_restaurant_id]
    )
    with engine.begin() as conn:
        adapters.exclude(
            conn, CLI, tenant.company_id, "webhook", restaurant_id=tenant.other_restaurant_id
        )
        # twice is the same as once
        adapters.exclude(
            conn, CLI, tenant.company_id, "webhook", restaurant_id=tenant.other_restaurant_id
        )
        enqueue_events(
            conn, [event(tenant, "order.created", restaurant_id=tenant.other_restaurant_id)]
        )
    assert restaurants(engine, company_wide) == [tenant.restaurant_id]
    assert restaurants(engine, company_wide, "cancelled") == [tenant.other_restaurant_id]
    # the restaurant's own integration is not the company-wide one: it still gets both
    assert restaurants(engine, own) == [tenant.other_restaurant_id] * 2


def test_signal_changes_and_nudges_skip_an_excluded_restaurant(
    engine: sa.Engine, settings: Settings, tenant: Tenant, canonical_table: str
) -> None:
    webhook = enable_webhook(engine, settings, tenant, "http://127.0.0.1:9/hooks")
    messaging = enable(
        engine,
        settings,
        tenant,
        "messaging",
        # Nudges go to a staff number only (issue 15), never to the bill's guest.
        {"from": "+15550001111", "nudge_after_minutes": 10, "nudge_to": "+15550002222"},
        {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
    )
    now = datetime.now(UTC)
    bills = [
        event(
            tenant,
            "order.bill_requested",
            order_id=f"o-{r}",
            restaurant_id=r,
            data={"table_id": "t1", "guest_phone": "+15557654321"},
            occurred_at=now - timedelta(minutes=30),
        )
        for r in (tenant.restaurant_id, tenant.other_restaurant_id)
    ]
    insert_canonical(engine, canonical_table, bills)
    with engine.begin() as conn:
        for name in ("webhook", "messaging"):
            adapters.exclude(
                conn, CLI, tenant.company_id, name, restaurant_id=tenant.other_restaurant_id
            )
        for r in (tenant.restaurant_id, tenant.other_restaurant_id):
            enqueue_signal(
                conn,
                company_id=tenant.company_id,
                restaurant_id=r,
                signal="order_velocity",
                key="2026-03-14T12:00/15m",
                value={"orders": 3},
            )
        enqueue_unpaid_bill_nudges(conn, now=now, table=canonical_table)
    assert restaurants(engine, webhook) == [tenant.restaurant_id]
    assert restaurants(engine, messaging) == [tenant.restaurant_id]
