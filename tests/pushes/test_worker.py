"""The worker: retries with Retry-After, 410, dead letters and replay, slow partners."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import sqlalchemy as sa

from partner_signals.pushes import enqueue_events, replay_dead_letters
from partner_signals.pushes.policy import RetryPolicy, parse_retry_after
from partner_signals.settings import Settings
from tests.pushes.conftest import (
    Clock,
    Partner,
    Tenant,
    deliver,
    enable_webhook,
    event,
    outbox,
)


def attempts(engine: sa.Engine, integration_id: int) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select attempt, outcome, response_code, latency_ms, error "
                    "from ops.delivery_attempts where integration_id = :i order by attempt_id"
                ),
                {"i": integration_id},
            ).mappings()
        ]


def dead_letters(engine: sa.Engine, integration_id: int) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select d.fault, d.reason, d.replayed_at from ops.dead_letters d "
                    "join ops.outbox o using (delivery_id) where o.integration_id = :i "
                    "order by d.dead_letter_id"
                ),
                {"i": integration_id},
            ).mappings()
        ]


def test_the_schedule_outlasts_a_partner_down_for_an_hour() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 8
    assert policy.min_span_seconds() > 3600
    assert all(policy.delay(n) <= policy.cap_seconds for n in range(1, 20))


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(format_datetime(now + timedelta(minutes=5), usegmt=True), now) == 300
    assert parse_retry_after("soon", now) is None


def test_retry_after_is_honoured_and_every_attempt_is_logged(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    answers = iter([(503, {"retry-after": "120"}, b"busy"), (200, {}, b"ok")])
    partner = partners(respond=lambda r: next(answers))
    integration = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created")])

    assert deliver(engine, settings, clock, tenant).retried == 1
    (row,) = outbox(engine, integration)
    wait = (row["next_attempt_at"] - clock()).total_seconds()
    assert 115 < wait <= 120  # the partner's 120 s, not our 5 s first backoff

    clock.advance(60)
    assert deliver(engine, settings, clock, tenant).claimed == 0
    clock.advance(61)
    assert deliver(engine, settings, clock, tenant).delivered == 1

    log = attempts(engine, integration)
    assert [(a["attempt"], a["outcome"], a["response_code"]) for a in log] == [
        (1, "retry", 503),
        (2, "delivered", 200),
    ]
    assert all(isinstance(a["latency_ms"], float) for a in log)
    # the retry is the same message: same webhook-id both times
    assert partner.received[0].headers["webhook-id"] == partner.received[1].headers["webhook-id"]


def test_410_disables_the_endpoint_and_dead_letters_what_waits(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    gone = partners(respond=lambda r: (410, {}, b"gone"))
    integration = enable_webhook(engine, settings, tenant, gone.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(30)])

    deliver(engine, settings, clock, tenant, per_endpoint=1, batch_size=5, limit=5)

    with engine.connect() as conn:
        enabled: bool = conn.execute(
            sa.text("select enabled from ops.integrations where integration_id = :i"),
            {"i": integration},
        ).scalar_one()
    assert enabled is False
    assert {r["status"] for r in outbox(engine, integration)} == {"dead"}
    letters = dead_letters(engine, integration)
    assert len(letters) == 30  # five tried in the run, the other 25 swept
    assert {d["fault"] for d in letters} == {"partner"}
    assert all(str(d["reason"]).startswith("endpoint gone (410)") for d in letters)
    assert len(gone.received) == 1  # the rest of the run did not knock again

    with engine.begin() as conn:
        result = replay_dead_letters(conn, adapter="webhook", company_id=tenant.company_id)
    assert (result.requeued, result.skipped_disabled) == (0, 30)


def test_a_partner_down_for_an_hour_loses_nothing(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    state = {"down": True}
    partner = partners(respond=lambda r: (503, {}, b"down") if state["down"] else (200, {}, b""))
    integration = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(20)])

    started = clock()
    while clock() - started < timedelta(hours=1):
        deliver(engine, settings, clock, tenant)
        due = min(r["next_attempt_at"] for r in outbox(engine, integration))
        clock.advance(max(1.0, (due - clock()).total_seconds() + 0.1))
    tries_while_down = len(partner.received)
    state["down"] = False
    for _ in range(3):
        deliver(engine, settings, clock, tenant)
        clock.advance(3600)

    rows = outbox(engine, integration)
    assert {r["status"] for r in rows} == {"delivered"}, [
        (r["status"], r["attempts"], r["next_attempt_at"], clock(), r["last_error"]) for r in rows
    ]
    assert dead_letters(engine, integration) == []
    # while it was down, each round sent one probe, not all twenty messages
    assert tries_while_down <= 8


def test_dead_letters_say_whose_fault_and_replay_picks_by_fault(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    refusing = partners(respond=lambda r: (400, {}, b"bad request"))
    theirs = enable_webhook(engine, settings, tenant, refusing.url)
    fine = partners()
    ours = enable_webhook(
        engine, settings, tenant, fine.url, restaurant_id=tenant.other_restaurant_id
    )
    # Credentials sealed for another integration do not open here: our failure.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update ops.integrations set secret_ciphertext = "
                "(select secret_ciphertext from ops.integrations where integration_id = :a) "
                "where integration_id = :b"
            ),
            {"a": theirs, "b": ours},
        )
        enqueue_events(
            conn,
            [
                event(tenant, "order.created"),
                event(tenant, "order.created", restaurant_id=tenant.other_restaurant_id),
            ],
        )

    summary = deliver(engine, settings, clock, tenant)

    assert summary.dead == 3  # 400 at once, no retry; the other integration gets it too
    assert {d["fault"] for d in dead_letters(engine, theirs)} == {"partner"}
    assert "HTTP 400" in str(dead_letters(engine, theirs)[0]["reason"])
    (mine,) = dead_letters(engine, ours)
    assert mine["fault"] == "ours" and "credentials" in str(mine["reason"])
    assert len(refusing.received) == 2 and fine.received == []

    later = clock() + timedelta(hours=1)
    with engine.begin() as conn:
        nothing = replay_dead_letters(conn, company_id=tenant.company_id, since=later)
        replayed = replay_dead_letters(conn, company_id=tenant.company_id, fault="partner")
        again = replay_dead_letters(conn, company_id=tenant.company_id, fault="partner")
    assert (nothing.requeued, replayed.requeued, again.requeued) == (0, 2, 0)

    refusing.respond = lambda r: (200, {}, b"")
    assert deliver(engine, settings, clock, tenant).delivered == 2
    assert {r["status"] for r in outbox(engine, theirs)} == {"delivered"}
    assert {r["status"] for r in outbox(engine, ours)} == {"dead"}


def test_the_last_try_dead_letters_and_replay_by_restaurant_sends_again(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners(respond=lambda r: (500, {}, b"oops"))
    integration = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.paid")])
    for _ in range(8):
        deliver(engine, settings, clock, tenant)
        clock.advance(3 * 3600)
    (row,) = outbox(engine, integration)
    assert (row["status"], row["attempts"]) == ("dead", 8)
    (letter,) = dead_letters(engine, integration)
    assert letter["fault"] == "partner" and "gave up after 8 attempts" in str(letter["reason"])

    partner.respond = lambda r: (200, {}, b"")
    with engine.begin() as conn:
        other = replay_dead_letters(conn, restaurant_id=tenant.other_restaurant_id)
        mine = replay_dead_letters(conn, restaurant_id=tenant.restaurant_id, adapter="webhook")
    assert (other.requeued, mine.requeued) == (0, 1)
    assert deliver(engine, settings, clock, tenant).delivered == 1
    assert len(partner.received) == 9


def test_a_slow_partner_does_not_hold_up_the_others(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    slow = partners(delay=3.0)
    fast = partners()
    slow_id = enable_webhook(engine, settings, tenant, slow.url)
    fast_id = enable_webhook(
        engine, settings, tenant, fast.url, restaurant_id=tenant.other_restaurant_id
    )
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(40)])
        enqueue_events(
            conn,
            [
                event(tenant, "order.created", restaurant_id=tenant.other_restaurant_id)
                for _ in range(40)
            ],
        )

    started = time.monotonic()
    summary = deliver(engine, settings, clock, tenant, timeout=0.5, per_endpoint=4)
    took = time.monotonic() - started

    assert len(fast.received) == 40
    assert max(r.at for r in fast.received) - started < 0.5 + 0.4
    assert {r["status"] for r in outbox(engine, fast_id)} == {"delivered"}
    assert {r["status"] for r in outbox(engine, slow_id)} == {"pending"}
    assert summary.deferred >= 30  # once it timed out, the rest waited for the next round
    assert took < 2.5
    assert len(slow.received) <= 8
