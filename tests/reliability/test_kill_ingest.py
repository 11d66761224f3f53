"""Fault: the ingest process group is SIGKILLed in the middle of a load of signed events.

Every event that got a 2xx before the kill is in the raw tables exactly once; after a
restart the sender's retries of everything else land, each exactly once.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import sqlalchemy as sa

from partner_signals.settings import Settings
from tests.ingest.conftest import make_tenant
from tests.reliability.conftest import (
    Ledger,
    live_ingest,
    make_events,
    raw_counts,
    record,
    retry_until_acked,
    send_all,
)

EVENTS = 1200
SOURCES = ("pos", "stripe", "careem", "pos", "deliveroo", "talabat", "jahez", "paypal")


@pytest.mark.slow
def test_sigkill_mid_load_loses_nothing(engine: sa.Engine, settings: Settings, ids: str) -> None:
    started = time.monotonic()
    tenant = make_tenant(engine, settings, f"kill-{ids}")
    events = make_events(tenant, EVENTS, SOURCES)
    conninfo = str(settings.database_url)
    ledger = Ledger()

    with live_ingest(settings, workers=2) as server:
        t_up = time.monotonic()
        killed = threading.Event()

        def killer() -> None:
            # Kill once about a third of the load is acknowledged: mid-stream, with
            # requests in flight and group commits half-built.
            while len(ledger.acked) < EVENTS // 3 and time.monotonic() - started < 60:
                time.sleep(0.005)
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
            killed.set()

        k = threading.Thread(target=killer, daemon=True)
        k.start()
        send_all(server.base, events, tenant, ledger, threads=8, stop_event=killed)
        k.join(30)
        assert killed.is_set(), "the load finished before the kill"
        t_killed = time.monotonic()
        acked_before = set(ledger.acked)
        attempted_before = sum(ledger.statuses.values())

        # While ingest is dead: every acknowledged event is already durable, once.
        found = raw_counts(conninfo, tenant.company_id)
        found_ids = {eid for _, eid in found}
        assert acked_before <= found_ids, f"{len(acked_before - found_ids)} acked events lost"
        assert all(n == 1 for n in found.values())
        committed_unacked = len(found_ids - acked_before)

        # Restart on the same port; the sender retries everything not acknowledged.
        server.start()
        t_restarted = time.monotonic()
        retry_until_acked(
            server.base, events, tenant, ledger, deadline=time.monotonic() + 60, threads=8
        )
        t_done = time.monotonic()

    final = raw_counts(conninfo, tenant.company_id)
    missing = {e.event_id for e in events} - {eid for _, eid in final}
    assert not missing, f"{len(missing)} events never landed"
    assert len(final) == EVENTS
    assert all(n == 1 for n in final.values()), "an event landed twice"
    assert len(ledger.acked) == EVENTS
    record(
        "sigkill_ingest",
        events=EVENTS,
        sources=sorted(set(SOURCES)),
        workers=2,
        requests_before_kill=attempted_before,
        acknowledged_before_kill=len(acked_before),
        acknowledged_before_kill_found_once=len(acked_before & found_ids),
        committed_but_unacknowledged_at_kill=committed_unacked,
        requests_total=sum(ledger.statuses.values()),
        answers=dict(ledger.statuses),
        acknowledged_total=len(ledger.acked),
        found_after_retries=len(final),
        found_twice=sum(1 for n in final.values() if n > 1),
        seconds=round(time.monotonic() - started, 1),
        phases=[round(t - started, 1) for t in (t_up, t_killed, t_restarted, t_done)],
    )
