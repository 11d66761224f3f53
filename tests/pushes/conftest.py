"""Fixtures for pushes: real partner HTTP servers on 127.0.0.1, tenants, a settable clock."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from partner_signals.pushes.worker import RunSummary, WorkerOptions, deliver_due_sync
from partner_signals.registry import add_restaurant, enable_adapter, ensure_company
from partner_signals.settings import Settings

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_SECRET_NEXT = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-7f3e9a1c55d2"
API_KEY = "nory-api-key-4b8c9d0e1f2a3b4c"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    client_port: int = 0  # which connection it came on


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Partner:
    """A partner's HTTP server: records every request and answers with `respond`."""

    respond: Callable[[Received], Reply] = lambda r: (200, {}, b"ok")
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    server: ThreadingHTTPServer | None = None
    # Close a keep-alive connection after this long without a request (None: keep it).
    idle_timeout: float | None = None
    tls: ssl.SSLContext | None = None  # serve HTTPS with this context

    def start(self) -> Partner:
        partner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = partner.idle_timeout

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                record = Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                    self.client_address[1],
                )
                partner.received.append(record)
                if partner.delay:
                    time.sleep(partner.delay)
                status, headers, payload = partner.respond(record)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the slow-partner test)

            do_POST = _handle
            do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def partners() -> Iterator[Callable[..., Partner]]:
    started: list[Partner] = []

    def make(**kwargs: Any) -> Partner:
        partner = Partner(**kwargs).start()
        started.append(partner)
        return partner

    yield make
    for partner in started:
        partner.stop()


class Clock:
    """Wall-clock time plus an offset that tests move forward, so retries come due
    without sleeping and rows enqueued with the database's now() are due too."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass(frozen=True)
class Tenant:
    company_id: str
    restaurant_id: str
    other_restaurant_id: str


@pytest.fixture
def tenant(engine: sa.Engine, ids: str) -> Tenant:
    company = f"pd-{ids}"
    with engine.begin() as conn:
        ensure_company(conn, company_id=company, plan="enterprise")
        for r in ("a", "b"):
            add_restaurant(
                conn, company_id=company, restaurant_id=f"{r}-{ids}", timezone="Asia/Dubai"
            )
    return Tenant(company, f"a-{ids}", f"b-{ids}")


def enable(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    adapter: str,
    config: dict[str, Any],
    secrets: dict[str, Any],
    restaurant_id: str | None = None,
) -> int:
    with engine.begin() as conn:
        enable_adapter(
            conn,
            key=settings.master_key(),
            company_id=tenant.company_id,
            adapter=adapter,
            config=config,
            secrets=secrets,
            restaurant_id=restaurant_id,
        )
        return int(
            conn.execute(
                sa.text(
                    "select integration_id from ops.integrations where company_id = :c "
                    "and provider = :p and coalesce(restaurant_id, '') = coalesce(:r, '')"
                ),
                {"c": tenant.company_id, "p": adapter, "r": restaurant_id},
            ).scalar_one()
        )


def enable_webhook(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    url: str,
    *,
    restaurant_id: str | None = None,
    events: list[str] | None = None,
) -> int:
    config: dict[str, Any] = {"url": url}
    if events is not None:
        config["events"] = events
    return enable(
        engine, settings, tenant, "webhook", config, {"secrets": [WEBHOOK_SECRET]}, restaurant_id
    )


def event(
    tenant: Tenant,
    kind: str,
    *,
    order_id: str | None = "o-1",
    restaurant_id: str | None = None,
    data: dict[str, Any] | None = None,
    source: str = "pos",
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A canonical event row as the dbt model produces it."""
    at = occurred_at or datetime.now(UTC)
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "occurred_at": at,
        "received_at": at + timedelta(seconds=1),
        "source": source,
        "company_id": tenant.company_id,
        "restaurant_id": restaurant_id or tenant.restaurant_id,
        "order_id": order_id,
        "data": data or {},
    }


def deliver(
    engine: sa.Engine, settings: Settings, clock: Clock, tenant: Tenant, **options: Any
) -> RunSummary:
    """One worker run over this test's company only (tests share one database)."""
    limit = options.pop("limit", None)
    return deliver_due_sync(
        engine,
        key=settings.master_key(),
        clock=clock,
        limit=limit,
        company_id=tenant.company_id,
        options=WorkerOptions(**options),
    )


def outbox(engine: sa.Engine, integration_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text("select * from ops.outbox where integration_id = :i order by delivery_id"),
                {"i": integration_id},
            ).mappings()
        ]


CANONICAL_DDL = """
create table {table} (
    id uuid primary key,
    type text not null,
    schema_version integer not null default 1,
    occurred_at timestamptz not null,
    received_at timestamptz not null,
    source text not null,
    company_id text not null,
    restaurant_id text not null,
    order_id text,
    data jsonb not null default '{{}}',
    loaded_at timestamptz not null default clock_timestamp()
)
"""


@pytest.fixture
def canonical_table(engine: sa.Engine, ids: str) -> str:
    """A canonical_events table of this test's own (the real one belongs to dbt)."""
    schema = f"canon_{ids}"
    table = f"{schema}.canonical_events"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
        conn.execute(sa.text(CANONICAL_DDL.format(table=table)))
    return table


def insert_canonical(engine: sa.Engine, table: str, events: list[dict[str, Any]]) -> None:
    import orjson

    with engine.begin() as conn:
        for e in events:
            conn.execute(
                sa.text(
                    f"insert into {table} (id, type, occurred_at, received_at, source, "
                    "company_id, restaurant_id, order_id, data) values (:id, :type, "
                    ":occurred_at, :received_at, :source, :company_id, :restaurant_id, "
                    ":order_id, cast(:data as jsonb))"
                ),
                {**e, "data": orjson.dumps(e["data"]).decode()},
            )
