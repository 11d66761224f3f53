"""Fault: the push worker (`deliveries run --forever`) is SIGKILLed mid-batch.

The dead worker's claims come due again within one lease, a worker started right after
takes them over, every push reaches the partner, and a push the partner acknowledged
before the kill is sent again at most once, with the same webhook-id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from partner_signals.processes import bin_path, child_env, stop
from partner_signals.pushes import enqueue_events
from partner_signals.registry import add_restaurant, ensure_company
from partner_signals.settings import Settings
from tests.pushes.conftest import Partner, Received, Reply, Tenant, enable_webhook, event
from tests.reliability.conftest import record

PUSHES = 600
KILL_AFTER = PUSHES // 3  # acknowledged by the partner
# Short leases so the test takes seconds; the defaults are 30 s and 10 s.
LEASE_SECONDS = 3.0
RENEW_SECONDS = 1.0
# A worker process needs this long to start (imports, first connection) on a loaded
# 2-core machine; the lease is what is measured, this only keeps the wait bounded.
STARTUP_SECONDS = 15.0


def start_worker(settings: Settings, company: str, log: Path) -> subprocess.Popen[bytes]:
    env = child_env(
        settings,
        {
            "PARTNER_SIGNALS_PUSH_LEASE_SECONDS": str(LEASE_SECONDS),
            "PARTNER_SIGNALS_PUSH_LEASE_RENEW_SECONDS": str(RENEW_SECONDS),
        },
    )
    cmd = [bin_path("partner-signals"), "deliveries", "run", "--forever", "--no-nudges"]
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*cmd, "--company", company],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(
    condition: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    timeout: float,
    every: float = 0.005,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the worker exited with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def outbox_state(engine: sa.Engine, company: str) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "select idempotency_key, status, claimed_by, "
                    "extract(epoch from next_attempt_at - clock_timestamp()) as ahead "
                    "from ops.outbox where company_id = :c"
                ),
                {"c": company},
            ).all()
        )


def test_sigkill_of_the_push_worker_leaves_no_claim_past_a_lease(
    engine: sa.Engine, settings: Settings, ids: str, tmp_path: Path
) -> None:
    tenant = Tenant(f"pk-{ids}", f"a-{ids}", f"b-{ids}")
    with engine.begin() as conn:
        ensure_company(conn, company_id=tenant.company_id, plan="enterprise")
        add_restaurant(
            conn,
            company_id=tenant.company_id,
            restaurant_id=tenant.restaurant_id,
            timezone="Asia/Dubai",
        )

    lock = threading.Lock()
    answered: list[tuple[str, float]] = []  # (webhook-id, when the 2xx was given)

    def respond(r: Received) -> Reply:
        with lock:
            answered.append((r.headers["webhook-id"], time.monotonic()))
        return 200, {}, b"ok"

    partner = Partner(respond=respond, delay=0.02).start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        enable_webhook(engine, settings, tenant, partner.url)
        with engine.begin() as conn:
            assert enqueue_events(conn, [event(tenant, "order.created") for _ in range(PUSHES)])
        keys = {r.idempotency_key for r in outbox_state(engine, tenant.company_id)}
        assert len(keys) == PUSHES

        first = start_worker(settings, tenant.company_id, tmp_path / "first.log")
        workers.append(first)
        wait_for(lambda: len(answered) >= KILL_AFTER, first, STARTUP_SECONDS + 30)
        killed_at = time.monotonic()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        with lock:
            acked_before = {key for key, at in answered if at < killed_at}
        received_before = len(partner.received)

        # What the dead worker left: claims, none of them leased past one lease from now.
        left = outbox_state(engine, tenant.company_id)
        pending = [r for r in left if r.status == "pending"]
        held = [r for r in pending if r.claimed_by is not None]
        lease_ahead = max((float(r.ahead) for r in held), default=0.0)
        assert held, "the kill came after the worker had finished: nothing to take over"
        assert lease_ahead <= LEASE_SECONDS + 0.1, lease_ahead

        second = start_worker(settings, tenant.company_id, tmp_path / "second.log")
        workers.append(second)

        def all_delivered() -> bool:
            return all(r.status == "delivered" for r in outbox_state(engine, tenant.company_id))

        wait_for(all_delivered, second, LEASE_SECONDS + STARTUP_SECONDS, every=0.05)
        done_at = time.monotonic()
        stop(second)  # SIGTERM: finishes, prints its summary
        summary = " ".join((tmp_path / "second.log").read_text().split())  # rich wraps it
        after = partner.received[received_before:]
        first_after = min((r.at for r in after), default=done_at)

        received = Counter(r.headers["webhook-id"] for r in partner.received)
        acked = {key for key, _ in answered}
        resent_after_ack = [key for key in acked_before if received[key] > 1]
        duplicated = {key for key, n in received.items() if n > 1}
        final = outbox_state(engine, tenant.company_id)
        figures = {
            "pushes": PUSHES,
            "lease_seconds": LEASE_SECONDS,
            "renew_seconds": RENEW_SECONDS,
            "sent_requests": len(partner.received),
            "acknowledged": len(acked),
            "acknowledged_before_kill": len(acked_before),
            "held_by_the_dead_worker": len(held),
            "pending_at_kill": len(pending),
            "furthest_lease_after_kill_s": round(lease_ahead, 2),
            "first_push_after_kill_s": round(first_after - killed_at, 2),
            "all_delivered_after_kill_s": round(done_at - killed_at, 2),
            "found": len(set(received) & keys),
            "duplicated": len(duplicated),
            "resent_after_ack": len(resent_after_ack),
            "lost": len(keys - acked),
            "claims_left_after_stop": sum(r.claimed_by is not None for r in final),
        }
        record("push_worker_sigkill", **figures)

        # Every push reached the partner and was acknowledged; nothing else was sent.
        assert set(received) == keys and acked == keys
        assert {r.status for r in final} == {"delivered"}
        # Acknowledged before the kill: sent again at most once (same webhook-id, as
        # counted above); nothing was sent more than twice.
        assert all(received[key] <= 2 for key in acked_before)
        assert max(received.values()) <= 2
        # Only what the dead worker held can have been sent twice.
        held_keys = {r.idempotency_key for r in held}
        assert duplicated <= held_keys
        # Nothing waited a full old-style lease: the new worker took over within one lease
        # of the kill, give or take its start-up.
        assert first_after - killed_at <= LEASE_SECONDS + STARTUP_SECONDS
        assert all(float(r.ahead) <= LEASE_SECONDS + 0.1 for r in held)
        # A stopped worker leaves no claim, and says what it took over.
        assert figures["claims_left_after_stop"] == 0
        assert "taken over from a worker that died holding them" in summary, summary
    finally:
        for proc in workers:
            stop(proc)
        partner.stop()
