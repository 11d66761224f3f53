"""Fault: PostgreSQL hangs (a lock held on the raw tables) under load.

Ingest must refuse at once instead of queueing without bound, and every 503 must mean
"not committed": nothing answered 503 is in the raw tables after the hang, and a resend
of it is `accepted`, never `duplicate`. Requests whose commit had started wait for it and
are answered its outcome; one commit's connection is killed mid-hang, so the "did that
commit land?" check runs too.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import sqlalchemy as sa

from partner_signals.db import libpq_url
from partner_signals.settings import Settings
from tests.ingest.conftest import make_tenant
from tests.reliability.conftest import (
    Ledger,
    Outgoing,
    live_ingest,
    make_events,
    raw_counts,
    record,
    send_all,
)

HANG_SECONDS = 3.0
KILL_AFTER = 1.5
COMMIT_WAIT = 1.0


def test_a_hung_database_gets_503_that_did_not_commit(
    settings: Settings, engine: sa.Engine, ids: str
) -> None:
    tenant = make_tenant(engine, settings, f"bp{ids}")
    conninfo = libpq_url(settings)
    env = {
        "PARTNER_SIGNALS_INGEST_COMMIT_WAIT_SECONDS": str(COMMIT_WAIT),
        "PARTNER_SIGNALS_INGEST_COMMIT_TIMEOUT_SECONDS": "30",
        "PARTNER_SIGNALS_INGEST_QUEUE_MAX_ROWS": "50",
    }
    events = make_events(tenant, 4000, ["pos", "stripe", "pos", "careem"])
    warm = make_events(tenant, 4, ["pos", "stripe", "careem"])
    ledger = Ledger()
    marks: dict[str, float] = {}
    with live_ingest(settings, workers=1, extra_env=env) as server:
        # Keys, secrets and the writer's connections warm before the hang.
        send_all(server.base, warm, tenant, Ledger(), threads=2)
        database = psycopg.connect(conninfo)
        stop = threading.Event()
        try:
            database.execute("lock table raw.order_events in access exclusive mode")
            marks["hung"] = time.monotonic()

            def fault() -> None:
                time.sleep(KILL_AFTER)
                # One writer's connection dies mid-commit: its requests are in doubt
                # until ingest can look (after the hang) whether their rows landed.
                with psycopg.connect(conninfo, autocommit=True) as admin:
                    killed = admin.execute(
                        "select pg_terminate_backend(pid) from pg_stat_activity "
                        "where application_name = 'ingest-writer-0' and datname = "
                        "current_database()"
                    ).fetchall()
                marks["killed"] = float(len(killed))
                time.sleep(HANG_SECONDS - KILL_AFTER)
                database.rollback()  # the lock goes
                marks["released"] = time.monotonic()
                time.sleep(0.5)
                stop.set()

            faulting = threading.Thread(target=fault, daemon=True)
            faulting.start()
            send_all(server.base, events, tenant, ledger, threads=8, stop_event=stop, pace=0.05)
            faulting.join(30)
        finally:
            stop.set()
            database.close()
        assert "released" in marks, "the hang did not end"
        found_before_resend = raw_counts(conninfo, tenant.company_id)

        by_id = {e.event_id: e for e in events}
        refused = sorted({eid for _, _, code, eid in ledger.attempts if code == 503})
        acked = sorted(ledger.acked)
        resend = [by_id[eid] for eid in refused]
        with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:

            def post(event: Outgoing) -> str:
                path, body, headers = event.request(tenant)
                answer = client.post(server.base + path, content=body, headers=headers)
                return str(answer.json().get("status", answer.status_code))

            outcomes = list(pool.map(post, resend))
        answers = {o: outcomes.count(o) for o in set(outcomes)}

    found_ids = {eid for _, eid in found_before_resend}
    during = [a for a in ledger.attempts if marks["hung"] <= a[0] < marks["released"]]
    quick_503 = [a for a in during if a[2] == 503 and a[1] - a[0] < 0.25]
    # Sent well before the release, answered only after it: their commit had started.
    waited = [
        a
        for a in ledger.attempts
        if a[1] >= marks["released"] - 0.05 and a[0] < marks["released"] - 0.5
    ]
    waited_200 = [a for a in waited if 200 <= a[2] < 300]
    # Queued when the hang began: withdrawn when no commit started within the wait.
    withdrawn = [a for a in during if a[2] == 503 and COMMIT_WAIT - 0.05 <= a[1] - a[0] < 2.0]
    waited_503 = [a for a in waited if a[2] == 503]
    lost = [eid for eid in acked if eid not in found_ids]
    landed_though_503 = [eid for eid in refused if eid in found_ids]
    record(
        "hung_database",
        hang_seconds=HANG_SECONDS,
        commit_wait_seconds=COMMIT_WAIT,
        queue_max_rows=50,
        writer_connections_killed_mid_commit=int(marks.get("killed", 0)),
        sent_distinct=len({a[3] for a in ledger.attempts}),
        requests=len(ledger.attempts),
        answers=dict(ledger.statuses),
        requests_during_hang=len(during),
        answered_503_within_250ms_during_hang=len(quick_503),
        answered_2xx_after_waiting_for_the_hang=len(waited_200),
        answered_503_after_waiting_for_the_hang=len(waited_503),
        answered_503_after_the_commit_wait=len(withdrawn),
        acknowledged=len(acked),
        found=len(found_ids & set(by_id)),
        answered_503_but_found=len(landed_though_503),
        lost=len(lost),
        resent_503=len(resend),
        resend_answers=answers,
        duplicated=sum(n for n in found_before_resend.values() if n > 1),
    )
    assert refused, "the hang produced no 503"
    assert not lost, f"acknowledged but not stored: {lost[:5]}"
    assert not landed_though_503, f"answered 503 but committed: {landed_though_503[:5]}"
    assert answers == {"accepted": len(resend)}, answers
    assert set(ledger.statuses) <= {"200", "503"}, ledger.statuses
    # Refused at once while hung (the queue is bounded, the writers are known stuck)...
    assert len(quick_503) >= len(during) // 2, (len(quick_503), len(during))
    # ... and the requests whose commit had started were answered its outcome.
    assert withdrawn, "no queued request was withdrawn at its commit wait"
    assert waited_200, "no request waited for its commit through the hang"
    # The killed connection's requests were in doubt until the lock went: then found
    # not committed (503), not guessed.
    assert waited_503, "no request waited for the in-doubt check"
