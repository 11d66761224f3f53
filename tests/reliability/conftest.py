"""Shared pieces of the reliability suite: live ingest processes, signed traffic, figures.

Every fault and bad-input test records what it sent, what was acknowledged and what
was found in the raw tables with `record(...)`; the figures land in
`.data/reliability/figures.json`, which docs/reliability.md quotes.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from filelock import FileLock

from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.providers import PROVIDERS
from partner_signals.settings import Settings
from tests.ingest.conftest import PAYPAL_KEY, Tenant

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / ".data" / "reliability" / "figures.json"


def record(name: str, **figures: Any) -> None:
    """Merge one test's figures into .data/reliability/figures.json (and print them)."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    figures["recorded_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"\n[reliability] {name}: {json.dumps(figures, default=str)}")
    with FileLock(str(FIGURES.with_suffix(".lock"))):
        current: dict[str, Any] = {}
        if FIGURES.exists():
            with contextlib.suppress(ValueError):
                current = json.loads(FIGURES.read_text())
        current[name] = figures
        FIGURES.write_text(json.dumps(current, indent=2, sort_keys=True, default=str) + "\n")


# ---- signed traffic


@dataclass(frozen=True)
class Outgoing:
    """One event a sender would post, with what it needs to sign it at send time."""

    source: str  # "pos" or a provider name
    event_id: str
    body: bytes

    def request(self, tenant: Tenant) -> tuple[str, bytes, dict[str, str]]:
        """(path, body, headers), signed now (so a retry minutes later is still in tolerance)."""
        if self.source == "pos":
            headers = {
                "Authorization": f"Bearer {tenant.ingest_key}",
                "Content-Type": "application/json",
            }
            return "/events", self.body, headers
        return f"/webhooks/{self.source}/{tenant.company_id}", self.body, sign(self, tenant)


def sign(event: Outgoing, tenant: Tenant, now: float | None = None) -> dict[str, str]:
    now = time.time() if now is None else now
    provider = PROVIDERS[event.source]
    if event.source == "paypal":
        signed = provider.sign(event.body, PAYPAL_KEY, now, tenant.paypal_webhook_id)
    else:
        signed = provider.sign(event.body, tenant.secret, now, event.event_id)
    return {"Content-Type": "application/json", **signed}


def make_events(tenant: Tenant, count: int, sources: Iterable[str]) -> list[Outgoing]:
    """`count` distinct events cycling through `sources` (pos, stripe, careem, ...)."""
    cycle = list(sources)
    events = []
    for n in range(count):
        source = cycle[n % len(cycle)]
        eid = uuid.uuid4().hex
        r = tenant.restaurant_id
        body: dict[str, Any]
        if source == "pos":
            body = {
                "event_id": eid,
                "type": "order.item_fired",
                "occurred_at": "2026-11-23T19:04:05+04:00",
                "restaurant_id": r,
                "order_id": f"o-{n}",
                "table_id": "t-1",
                "data": {"line_id": "l1", "item_id": "burger", "quantity": 1},
            }
        elif source == "stripe":
            eid = f"evt_{eid}"
            body = {
                "id": eid,
                "object": "event",
                "type": "payment_intent.succeeded",
                "data": {"object": {"id": f"pi_{n}", "metadata": {"restaurant_id": r}}},
            }
        elif source == "paypal":
            eid = f"WH-{eid}"
            body = {
                "id": eid,
                "event_type": "PAYMENT.CAPTURE.COMPLETED",
                "resource": {"custom_id": f"{r}:o-{n}"},
            }
        elif source == "careem":
            body = {"event_id": eid, "event_type": "order.created", "order": {"store_id": r}}
        elif source == "talabat":
            body = {"eventId": eid, "eventType": "order_created", "order": {"vendorCode": r}}
        elif source == "deliveroo":
            body = {"event": "order_placed", "body": {"order": {"location_id": r}}}
        elif source == "jahez":
            body = {"event_id": eid, "event": "order_received", "branch_id": r}
        else:
            raise ValueError(source)
        events.append(Outgoing(source, eid, orjson.dumps(body)))
    return events


def raw_counts(conninfo: str, company_id: str) -> dict[tuple[str, str], int]:
    """(source, event_id) -> rows in raw.webhook_events and raw.order_events."""
    with psycopg.connect(conninfo, connect_timeout=5) as conn:
        rows = conn.execute(
            "select source, event_id, count(*) from raw.webhook_events where company_id = %s "
            "group by 1, 2 union all "
            "select source, event_id, count(*) from raw.order_events where company_id = %s "
            "group by 1, 2",
            (company_id, company_id),
        ).fetchall()
    return {(s, e): int(n) for s, e, n in rows}


# ---- a sender that remembers what was acknowledged


@dataclass
class Ledger:
    """What a sender knows: which events got a 2xx, and every answer it saw."""

    acked: set[str] = field(default_factory=set)
    statuses: dict[str, int] = field(default_factory=dict)  # status code (0: no answer) -> count
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (sent at, answered at, status) for every attempt, monotonic clock
    attempts: list[tuple[float, float, int, str]] = field(default_factory=list)

    def note(self, event: Outgoing, status: int, sent: float, answered: float) -> None:
        with self.lock:
            key = str(status)
            self.statuses[key] = self.statuses.get(key, 0) + 1
            self.attempts.append((sent, answered, status, event.event_id))
            if 200 <= status < 300:
                self.acked.add(event.event_id)


def post_once(
    client: httpx.Client, base: str, event: Outgoing, tenant: Tenant, ledger: Ledger
) -> int:
    path, body, headers = event.request(tenant)
    sent = time.monotonic()
    try:
        status = client.post(base + path, content=body, headers=headers).status_code
    except httpx.HTTPError:
        status = 0
    ledger.note(event, status, sent, time.monotonic())
    return status


def send_all(
    base: str,
    events: list[Outgoing],
    tenant: Tenant,
    ledger: Ledger,
    *,
    threads: int = 8,
    stop_event: threading.Event | None = None,
    pace: float = 0.0,
) -> None:
    """Post each event once from `threads` senders (no retries), recording the answers."""
    queue = list(reversed(events))
    qlock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0)) as client:
            while not (stop_event and stop_event.is_set()):
                with qlock:
                    if not queue:
                        return
                    event = queue.pop()
                post_once(client, base, event, tenant, ledger)
                if pace:
                    time.sleep(pace)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def retry_until_acked(
    base: str,
    events: list[Outgoing],
    tenant: Tenant,
    ledger: Ledger,
    *,
    deadline: float,
    threads: int = 8,
) -> None:
    """The sender's retries: every event without a 2xx is sent again until it gets one."""
    while time.monotonic() < deadline:
        pending = [e for e in events if e.event_id not in ledger.acked]
        if not pending:
            return
        send_all(base, pending, tenant, ledger, threads=threads)
        if any(e.event_id not in ledger.acked for e in pending):
            time.sleep(0.2)


# ---- a real ingest process


@dataclass
class LiveIngest:
    settings: Settings
    port: int
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: Any = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = child_env(self.settings, self.extra_env)
        cmd = uvicorn_cmd("ingest.app:app", host="127.0.0.1", port=self.port, workers=self.workers)
        self.proc = start(cmd, env, quiet=True)
        wait_ready(f"{self.base}/healthz", self.proc, timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@contextlib.contextmanager
def live_ingest(
    settings: Settings, *, workers: int = 2, extra_env: dict[str, str] | None = None
) -> Iterator[LiveIngest]:
    server = LiveIngest(settings, free_port(), workers, dict(extra_env or {}))
    server.start()
    try:
        yield server
    finally:
        server.stop()
