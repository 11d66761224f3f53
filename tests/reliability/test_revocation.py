"""A key revoked with the CLI is refused by every worker within a second.

Two servers of one worker each (separate processes with separate caches, so each
worker's answers can be told apart) keep using a key they have cached while
`partner-signals ingest-keys revoke` / `keys revoke` runs in another process. Ingest
trusts a cached key for 300 s here and the partner API for 10 s: only the NOTIFY of
the revocation can make them refuse it within the second.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import orjson
import psycopg
import pytest
import sqlalchemy as sa

from partner_signals.invalidation import APPLICATION_NAME, CHANNEL
from partner_signals.processes import (
    bin_path,
    child_env,
    free_port,
    start,
    stop,
    uvicorn_cmd,
    wait_ready,
)
from partner_signals.settings import Settings
from tests.api.conftest import make_company
from tests.ingest.conftest import make_tenant
from tests.reliability.conftest import record

WORKERS = 2
BOUND_SECONDS = 1.0
# Once every worker has served the key, how long they keep using it before it is revoked.
WARM_SECONDS = 0.3
# After the last worker's first refusal, how long to check none serves the key again.
AFTER_SECONDS = 0.3
APPS = {
    "ingest": ("ingest.app:app", {"PARTNER_SIGNALS_AUTH_CACHE_SECONDS": "300"}),
    # A rate no run reaches: answers are about the key, not 429s.
    "api": ("api.app:app", {"PARTNER_SIGNALS_API_RATE_PER_SECOND": "1e6"}),
}


@dataclass
class Worker:
    base: str
    pid: int
    # (sent, answered, status) per request, wall clock
    answers: list[tuple[float, float, int]] = field(default_factory=list)


@pytest.fixture(scope="module")
def fleets(settings: Settings, database_url: str) -> Iterator[dict[str, list[Worker]]]:
    """Both apps' workers, started together (a start costs seconds on a busy machine)."""
    with ExitStack() as stack:
        started: dict[str, list[tuple[int, subprocess.Popen[bytes]]]] = {}
        for side, (app, env) in APPS.items():
            for _ in range(WORKERS):
                port = free_port()
                cmd = uvicorn_cmd(app, host="127.0.0.1", port=port, workers=1)
                proc = start(cmd, child_env(settings, env), quiet=True)
                stack.callback(stop, proc)
                started.setdefault(side, []).append((port, proc))
        fleet = {
            side: [Worker(f"http://127.0.0.1:{port}", proc.pid) for port, proc in procs]
            for side, procs in started.items()
        }
        for procs in started.values():
            for port, proc in procs:
                wait_ready(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        wait_listening(database_url, [w.pid for ws in fleet.values() for w in ws])
        yield fleet


def wait_listening(database_url: str, pids: list[int]) -> None:
    """Until each worker's listener has LISTEN in place (its connection names its pid)."""
    wanted = {f"{APPLICATION_NAME} {pid}" for pid in pids}
    deadline = time.monotonic() + 20
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            names = {
                r[0]
                for r in conn.execute(
                    "select application_name from pg_stat_activity "
                    "where datname = current_database()"
                )
            }
            if wanted <= names:
                return
            time.sleep(0.05)
    raise TimeoutError(f"listeners of {sorted(wanted)} not connected")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


def hammer(worker: Worker, call: Call, stop_at: threading.Event) -> None:
    with httpx.Client(timeout=5.0) as client:
        request = client.build_request(
            call.method, worker.base + call.path, headers=call.headers, content=call.body
        )
        while not stop_at.is_set():
            sent = time.time()
            status = client.send(request).status_code
            worker.answers.append((sent, time.time(), status))
            time.sleep(0.002)


def hear_one(database_url: str, ready: threading.Event, heard: list[float]) -> None:
    """When this process hears the revocation's NOTIFY: about when it was committed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"listen {CHANNEL}")
        ready.set()
        for _ in conn.notifies(timeout=30, stop_after=1):
            heard.append(time.time())


def refused_everywhere(fleet: list[Worker], since: float) -> float | None:
    """When the last worker first refused the key (None while one still serves it)."""
    firsts = []
    for w in fleet:
        refused = [answered for _, answered, s in list(w.answers) if s == 401 and answered > since]
        if not refused:
            return None
        firsts.append(min(refused))
    return max(firsts)


def revoke_and_watch(
    settings: Settings, database_url: str, fleet: list[Worker], call: Call, cli: list[str]
) -> dict[str, object]:
    """Keep every worker busy with the key, revoke it through the CLI, and measure
    when each worker first refused it: from the revocation's transaction start (its
    revoked_at: before its commit, so those figures err long) and from when this
    process heard its NOTIFY (about its commit)."""
    stop_at, ready, heard = threading.Event(), threading.Event(), []
    threads = [threading.Thread(target=hammer, args=(w, call, stop_at)) for w in fleet]
    threads.append(threading.Thread(target=hear_one, args=(database_url, ready, heard)))
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while not all(any(a[2] == 200 for a in w.answers) for w in fleet):
            assert time.monotonic() < deadline, [w.answers[-1:] for w in fleet]
            time.sleep(0.01)
        ready.wait(10)
        time.sleep(WARM_SECONDS)
        asked = time.time()
        done = subprocess.run(
            [bin_path("partner-signals"), *cli],
            env=child_env(settings),
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + BOUND_SECONDS
        while refused_everywhere(fleet, asked) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(AFTER_SECONDS)
    finally:
        stop_at.set()
        for t in threads:
            t.join()
    table = "ingest_keys" if cli[0] == "ingest-keys" else "partner_keys"
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"select extract(epoch from revoked_at) from ops.{table} where key_prefix = %s",
            (cli[-1],),
        ).fetchone()
    assert row is not None and row[0] is not None, "the CLI revoked nothing"
    revoked = float(row[0])
    assert heard, "no NOTIFY heard for the revocation"
    committed = heard[0]
    figures: dict[str, object] = {"cli_process_seconds": round(committed - asked, 3)}
    for i, w in enumerate(fleet):
        before = [s for sent, _, s in w.answers if sent < revoked]
        refused = [answered for _, answered, s in w.answers if s == 401 and answered >= revoked]
        assert before and set(before) == {200}, f"worker {i} did not serve the key before"
        assert refused, f"worker {i} never refused the revoked key"
        first = min(refused)
        served_after = [s for sent, _, s in w.answers if sent > first and s != 401]
        assert not served_after, f"worker {i} served the revoked key again: {served_after}"
        figures[f"worker_{i}_ms_from_revoked_at"] = round((first - revoked) * 1000, 1)
        figures[f"worker_{i}_ms_from_notify"] = round((first - committed) * 1000, 1)
        figures[f"worker_{i}_requests"] = len(w.answers)
        assert first - revoked < BOUND_SECONDS, f"worker {i}: {first - revoked:.3f} s"
    return figures


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


@pytest.mark.parametrize("side", sorted(APPS))
def test_a_revoked_key_is_refused_by_every_worker_within_a_second(
    side: str,
    fleets: dict[str, list[Worker]],
    settings: Settings,
    engine: sa.Engine,
    database_url: str,
) -> None:
    suffix = f"revoke-{uuid.uuid4().hex[:8]}"
    if side == "ingest":
        tenant = make_tenant(engine, settings, suffix)
        key = tenant.ingest_key
        event = {
            "event_id": f"rev-{suffix}",
            "type": "table.seated",
            "occurred_at": "2026-11-23T19:04:05+04:00",
            "restaurant_id": tenant.restaurant_id,
            "table_id": "t-1",
            "data": {"covers": 2},
        }
        # The same event again and again: a duplicate, 200, while the key holds.
        call = Call("POST", "/events", bearer(key), orjson.dumps(event))
        cli = ["ingest-keys", "revoke", key[:10]]
    else:
        key = make_company(engine, suffix).full_key
        call = Call("GET", "/v1/exports", bearer(key))
        cli = ["keys", "revoke", key[:10]]
    figures = revoke_and_watch(settings, database_url, fleets[side], call, cli)
    record(f"revocation/{side}", workers=WORKERS, bound_ms=BOUND_SECONDS * 1000, **figures)
