"""Claims and leases: a live worker keeps its claims by renewing them, a dead worker's
are taken over once its lease lapses, a run that stops early hands back what it held.
(The SIGKILL of a real worker process is tests/reliability/test_kill_push_worker.py.)"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from partner_signals.pushes import WorkerOptions, deliver_due, enqueue_events
from partner_signals.pushes.worker import RunSummary
from partner_signals.settings import Settings
from tests.pushes.conftest import Clock, Partner, Tenant, deliver, enable_webhook, event, outbox

LEASE = {"lease_seconds": 1.0, "renew_seconds": 0.2}


def test_a_live_worker_keeps_its_claims_past_the_lease(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    # One request at a time, 0.2 s each: the last of 12 waits about 2.4 s for its turn,
    # more than two leases, while a second worker keeps asking for whatever is due.
    partner = partners(delay=0.2)
    integration = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(12)])

    first: list[RunSummary] = []
    worker = threading.Thread(
        target=lambda: first.append(
            deliver(engine, settings, clock, tenant, per_endpoint=1, **LEASE)
        )
    )
    worker.start()
    time.sleep(0.1)
    taken_by_the_second = 0
    while worker.is_alive():
        taken_by_the_second += deliver(engine, settings, clock, tenant, **LEASE).claimed
        time.sleep(0.1)
    worker.join()

    assert first[0].delivered == 12 and taken_by_the_second == 0
    assert set(Counter(r.headers["webhook-id"] for r in partner.received).values()) == {1}
    assert [(r["status"], r["claimed_by"]) for r in outbox(engine, integration)] == [
        ("delivered", None)
    ] * 12


def test_a_dead_workers_claims_are_taken_over_once_their_lease_lapses(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners()
    integration = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(3)])
        # A worker that died: two claims whose lease lapsed, one still leased.
        conn.execute(
            sa.text(
                "update ops.outbox set claimed_by = :dead, next_attempt_at = case "
                "when delivery_id = (select min(delivery_id) from ops.outbox "
                "where integration_id = :i) then now() + interval '1 minute' "
                "else now() - interval '1 second' end where integration_id = :i"
            ),
            {"dead": uuid.uuid4(), "i": integration},
        )

    summary = deliver(engine, settings, clock, tenant)

    assert (summary.delivered, summary.reclaimed) == (2, 2)
    assert "2 taken over from a worker that died holding them" in summary.line()
    assert [r["status"] for r in outbox(engine, integration)] == [
        "pending",
        "delivered",
        "delivered",
    ]
    clock.advance(61)
    assert deliver(engine, settings, clock, tenant).reclaimed == 1


def test_a_run_cut_short_hands_back_what_it_held(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners(delay=2.0)
    integration = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(5)])

    async def cut_short() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await deliver_due(
                    engine,
                    key=settings.master_key(),
                    clock=clock,
                    company_id=tenant.company_id,
                    options=WorkerOptions(lease_seconds=60, renew_seconds=20),
                )

    asyncio.run(cut_short())

    rows = outbox(engine, integration)
    assert {(r["status"], r["claimed_by"]) for r in rows} == {("pending", None)}
    assert all(r["next_attempt_at"] <= clock() for r in rows)  # due now, not in a minute


def test_renewing_less_often_than_the_lease_is_refused() -> None:
    with pytest.raises(ValueError, match="renew"):
        WorkerOptions(lease_seconds=10, renew_seconds=10)
    with pytest.raises(ValueError, match="RENEW"):
        Settings(push_lease_seconds=5, push_lease_renew_seconds=6)
