"""Limits on what a sender controls, probed against a real ingest process over sockets.

Headers (count, bytes), the request target, the time to send the head and the body,
connections left idle or half-sent, the lines of a batch, and what is stored of a
refused or an accepted request. The server runs with short timeouts (0.5 s) so the
slow-client probes take about a second; the size limits are the defaults. Each probe's
figures go to .data/reliability/figures.json under "limits/..." (docs/bad-input.md).
"""

from __future__ import annotations

import selectors
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import sqlalchemy as sa

from partner_signals.settings import Settings
from tests.ingest.conftest import Tenant, make_tenant
from tests.reliability.conftest import LiveIngest, live_ingest, record, sign
from tests.reliability.conftest import Outgoing as Event

MIB = 1024 * 1024
SHORT = 0.5  # header, body and idle timeouts of the server under test
DEFAULTS = Settings()
SLOW_ENV = {
    "PARTNER_SIGNALS_HTTP_HEADER_TIMEOUT_SECONDS": str(SHORT),
    "PARTNER_SIGNALS_HTTP_BODY_TIMEOUT_SECONDS": str(SHORT),
    "PARTNER_SIGNALS_HTTP_IDLE_TIMEOUT_SECONDS": str(SHORT),
}


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveIngest]:
    with live_ingest(settings, workers=1, extra_env=SLOW_ENV) as live:
        yield live


@pytest.fixture
def tenant(engine: sa.Engine, settings: Settings, ids: str) -> Tenant:
    return make_tenant(engine, settings, f"lim{ids}")


# ---- a client that speaks HTTP/1.1 by hand


def connect(server: LiveIngest) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def head(
    method: str, target: str, headers: dict[str, str] | list[tuple[str, str]], body: bytes = b""
) -> bytes:
    """A request head announcing `body` (which is not included)."""
    fields = headers.items() if isinstance(headers, dict) else headers
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in fields]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_answer(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict[str, Any], bool]:
    """(status, JSON body or {}, whether the server closed the connection after it).
    Status 0: the connection was closed (or reset) without an answer."""
    sock.settimeout(timeout)
    data = b""
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
            if b"\r\n\r\n" in data:
                top, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in top.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                if len(rest) >= length:
                    close = b"connection: close" in top.lower()
                    if close:
                        closed = sock.recv(1) == b""
                    break
    except (ConnectionResetError, TimeoutError):
        closed = True
    if not data:
        return 0, {}, closed
    top, _, rest = data.partition(b"\r\n\r\n")
    status = int(top.split(b" ", 2)[1])
    return status, (orjson.loads(rest) if rest.startswith(b"{") else {}), closed


def send(sock: socket.socket, data: bytes) -> int:
    """Send what the server will take; the number of bytes it took before closing."""
    sent = 0
    try:
        for start in range(0, len(data), 65536):
            sock.sendall(data[start : start + 65536])
            sent = start + len(data[start : start + 65536])
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def request(
    method: str, target: str, headers: dict[str, str] | list[tuple[str, str]], body: bytes = b""
) -> bytes:
    return head(method, target, headers, body) + body


def exchange(server: LiveIngest, data: bytes) -> tuple[int, dict[str, Any], bool, int]:
    with connect(server) as sock:
        took = send(sock, data)
        status, body, closed = read_answer(sock)
    return status, body, closed, took


# ---- what the database holds


def rejected_rows(conninfo: str, company_id: str) -> tuple[int, int]:
    """(rows in raw.rejected_requests for the company, bytes of the largest one)."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "select count(*), coalesce(max(octet_length(path) + octet_length(reason)"
            " + octet_length(headers::text) + octet_length(body_excerpt)), 0)"
            " from raw.rejected_requests where company_id = %s",
            (company_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def all_rejected(server: LiveIngest) -> int:
    """Rows in raw.rejected_requests, whoever they name (the probes run one at a time, and
    a refusal is committed before it is answered)."""
    with psycopg.connect(server.settings.database_url or "") as conn:
        row = conn.execute("select count(*) from raw.rejected_requests").fetchone()
    assert row is not None
    return int(row[0])


def landed(conninfo: str, company_id: str) -> list[dict[str, Any]]:
    """The stored headers of every event landed for the company."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "select headers from raw.order_events where company_id = %s union all "
            "select headers from raw.webhook_events where company_id = %s",
            (company_id, company_id),
        ).fetchall()
    return [r[0] for r in rows]


def pos_event(tenant: Tenant) -> bytes:
    return orjson.dumps(
        {
            "event_id": uuid.uuid4().hex,
            "type": "order.created",
            "occurred_at": "2026-11-23T19:04:05+04:00",
            "restaurant_id": tenant.restaurant_id,
            "order_id": "o-1",
            "data": {"channel": "takeaway"},
        }
    )


def pos_headers(tenant: Tenant, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.ingest_key}", "Content-Type": content_type}


def padding(total: int, *, size: int = 1000) -> list[tuple[str, str]]:
    """Header fields of `size` bytes each adding up to about `total` bytes."""
    return [(f"X-Pad-{n}", "p" * (size - 12)) for n in range(max(1, total // size))]


# ---- heads over the limits


def test_four_mib_of_headers_to_an_unknown_company(server: LiveIngest, settings: Settings) -> None:
    """The issue's probe: 4 MiB in one header got a 404 and a 4 MB refusal row."""
    company = f"nosuch-{uuid.uuid4().hex[:8]}"
    data = request(
        "POST",
        f"/webhooks/careem/{company}",
        {"Content-Type": "application/json", "X-Pad": "p" * (4 * MIB)},
        b"{}",
    )
    before = all_rejected(server)
    status, body, closed, took = exchange(server, data)
    rows, largest = rejected_rows(server.settings.database_url or "", company)
    written = all_rejected(server) - before
    record(
        "limits/headers_4mib_one_field",
        what="webhook to an unknown company with one 4 MiB header",
        sent=1,
        answers=[status],
        error=body.get("error", {}).get("code"),
        bytes_sent=len(data),
        bytes_read_before_answer=took,
        recorded_as_rejected=written,
    )
    assert (status, body["error"]["code"], closed) == (431, "headers_too_large", True)
    assert rows == 0 and largest == 0 and written == 0


def test_many_header_fields(server: LiveIngest) -> None:
    company = f"nosuch-{uuid.uuid4().hex[:8]}"
    fields = [(f"X-N{n}", "1") for n in range(4000)]
    before = all_rejected(server)
    status, body, closed, _ = exchange(
        server, request("POST", f"/webhooks/careem/{company}", fields, b"{}")
    )
    rows = all_rejected(server) - before
    record(
        "limits/headers_4000_fields",
        what="webhook with 4,000 short header fields",
        sent=1,
        answers=[status],
        error=body.get("error", {}).get("code"),
        recorded_as_rejected=rows,
    )
    assert (status, body["error"]["code"], closed, rows) == (431, "too_many_headers", True, 0)


def test_two_mib_of_headers_on_a_valid_pos_event(server: LiveIngest, tenant: Tenant) -> None:
    """The issue's probe: 2 MiB of headers on a valid event landed in raw.order_events."""
    body = pos_event(tenant)
    fields = list(pos_headers(tenant).items()) + padding(2 * MIB)
    before = all_rejected(server)
    status, answer, closed, _ = exchange(server, request("POST", "/events", fields, body))
    found = landed(server.settings.database_url or "", tenant.company_id)
    written = all_rejected(server) - before
    record(
        "limits/headers_2mib_valid_pos",
        what="valid POS event with 2 MiB of headers (2,000 fields of 1,000 bytes)",
        sent=1,
        answers=[status],
        error=answer.get("error", {}).get("code"),
        found=len(found),
        recorded_as_rejected=written,
    )
    assert (status, closed, len(found), written) == (431, True, 0, 0)
    assert answer["error"]["code"] in {"too_many_headers", "headers_too_large"}


def test_headers_just_over_the_byte_limit(server: LiveIngest, tenant: Tenant) -> None:
    body = pos_event(tenant)
    fields = list(pos_headers(tenant).items()) + padding(DEFAULTS.http_max_header_bytes + 1000)
    status, answer, _, _ = exchange(server, request("POST", "/events", fields, body))
    assert (status, answer["error"]["code"]) == (431, "headers_too_large")
    assert landed(server.settings.database_url or "", tenant.company_id) == []


def test_url_too_long(server: LiveIngest) -> None:
    company = "c" * 5000
    before = all_rejected(server)
    status, body, closed, _ = exchange(
        server, request("POST", f"/webhooks/careem/{company}", {"Content-Type": "a/b"}, b"{}")
    )
    record(
        "limits/url_5000",
        what="webhook whose path carries a 5,000-character company id",
        sent=1,
        answers=[status],
        error=body.get("error", {}).get("code"),
        recorded_as_rejected=all_rejected(server) - before,
    )
    assert (status, body["error"]["code"], closed) == (414, "url_too_long", True)
    assert all_rejected(server) == before


# ---- what is stored of heads within the limits


def test_what_is_kept_of_a_refusal_is_small(server: LiveIngest) -> None:
    """Headers at the limits (100 fields, 16 KiB) on a refused request: one small row."""
    company = f"nosuch-{uuid.uuid4().hex[:8]}"
    fields = [("Content-Type", "application/json"), ("User-Agent", "u" * 4000)]
    # Host and Content-Length are added: 100 fields, a little under 16 KiB in all.
    room = DEFAULTS.http_max_header_bytes - 4200
    pads = DEFAULTS.http_max_header_count - 4
    fields += [(f"X-P{n:03d}", "p" * (room // pads - 6)) for n in range(pads)]
    status, _, _, _ = exchange(
        server, request("POST", f"/webhooks/careem/{company}", fields, b"{}")
    )
    rows, largest = rejected_rows(server.settings.database_url or "", company)
    record(
        "limits/refusal_with_headers_at_limit",
        what="webhook to an unknown company with 100 header fields, ~16 KiB in all",
        sent=1,
        answers=[status],
        recorded_as_rejected=rows,
        largest_row_bytes=largest,
    )
    assert (status, rows) == (404, 1)
    assert largest < 4096


def test_accepted_event_keeps_only_the_headers_that_matter(
    server: LiveIngest, tenant: Tenant
) -> None:
    event_id = f"evt_{uuid.uuid4().hex}"
    body = orjson.dumps(
        {
            "id": event_id,
            "type": "payment_intent.succeeded",
            "data": {"object": {"metadata": {"restaurant_id": tenant.restaurant_id}}},
        }
    )
    signed = sign(Event("stripe", event_id, body), tenant)
    fields = [
        *signed.items(),
        ("User-Agent", "Stripe/1.0 " + "u" * 5000),
        ("X-Request-Id", "req-1"),
        ("Cookie", "session=secret"),
        *padding(8_000),
    ]
    status, _, _, _ = exchange(
        server, request("POST", f"/webhooks/stripe/{tenant.company_id}", fields, body)
    )
    pos = pos_event(tenant)
    pos_status, _, _, _ = exchange(
        server, request("POST", "/events", [*pos_headers(tenant).items(), *padding(12_000)], pos)
    )
    stored = landed(server.settings.database_url or "", tenant.company_id)
    record(
        "limits/accepted_event_headers",
        what="signed Stripe webhook (~13 KiB of headers) and POS event (~12 KiB)",
        sent=2,
        answers=sorted({status, pos_status}),
        found=len(stored),
        stored_header_bytes=sorted(len(orjson.dumps(h)) for h in stored),
    )
    assert (status, pos_status, len(stored)) == (200, 200, 2)
    webhook = next(h for h in stored if "stripe-signature" in h)
    assert set(webhook) == {
        "content-type",
        "content-length",
        "stripe-signature",
        "user-agent",
        "x-request-id",
    }
    assert webhook["stripe-signature"] == signed["Stripe-Signature"]
    assert len(webhook["user-agent"]) == 1024
    pos_kept = next(h for h in stored if "stripe-signature" not in h)
    assert set(pos_kept) == {"content-type", "content-length"}  # never the key


# ---- slow and idle clients


def test_header_trickle_is_answered_408(server: LiveIngest, tenant: Tenant) -> None:
    """A byte every 50 ms (each byte used to restart uvicorn's only timer)."""
    data = head("POST", "/events", pos_headers(tenant), pos_event(tenant))
    before = all_rejected(server)
    started = time.monotonic()
    with connect(server) as sock:
        sock.settimeout(0.05)
        for byte in data[: len(data) - 4]:
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except TimeoutError:
                pass
        status, body, closed = read_answer(sock)
    elapsed = time.monotonic() - started
    record(
        "limits/header_trickle",
        what=f"POS request head sent a byte every 50 ms (header timeout {SHORT} s)",
        sent=1,
        answers=[status],
        error=body.get("error", {}).get("code"),
        answered_after_s=round(elapsed, 2),
        recorded_as_rejected=all_rejected(server) - before,
    )
    assert (status, body["error"]["code"], closed) == (408, "header_timeout", True)
    assert all_rejected(server) == before
    assert SHORT <= elapsed < SHORT + 1.0


@pytest.mark.parametrize("trickle", [False, True], ids=["stalled", "trickled"])
def test_slow_body_is_answered_408(server: LiveIngest, tenant: Tenant, trickle: bool) -> None:
    body = pos_event(tenant)
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(head("POST", "/events", pos_headers(tenant), body) + body[:10])
        if trickle:
            sock.settimeout(0.05)
            for byte in body[10:-1]:
                sock.send(bytes([byte]))
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break
                except TimeoutError:
                    pass
        status, answer, closed = read_answer(sock)
    elapsed = time.monotonic() - started
    dsn = server.settings.database_url or ""
    rows, _ = rejected_rows(dsn, tenant.company_id)
    name = "body_trickle" if trickle else "body_stalled"
    record(
        f"limits/{name}",
        what=f"POS event whose body {'comes a byte every 50 ms' if trickle else 'stops after 10 bytes'}"
        f" (body timeout {SHORT} s)",
        sent=1,
        answers=[status],
        error=answer.get("error", {}).get("code"),
        answered_after_s=round(elapsed, 2),
        found=len(landed(dsn, tenant.company_id)),
        recorded_as_rejected=rows,
    )
    assert (status, answer["error"]["code"], closed) == (408, "body_timeout", True)
    assert SHORT <= elapsed < SHORT + 1.0
    assert landed(dsn, tenant.company_id) == [] and rows == 1


def hold(server: LiveIngest, count: int, first_bytes: bytes) -> tuple[list[float], list[int]]:
    """Open `count` connections, send each `first_bytes`, wait until the server closes
    them all: (seconds from the start until each closed, the status each got, 0 for none)."""
    selector = selectors.DefaultSelector()
    socks = []
    started = time.monotonic()
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if first_bytes:
            sock.sendall(first_bytes)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        socks.append(sock)
    closed_after: list[float] = []
    statuses: list[int] = []
    received: dict[socket.socket, bytes] = {}
    deadline = started + SHORT + 5.0
    while len(closed_after) < count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[sock] = received.get(sock, b"") + chunk
                continue
            selector.unregister(sock)
            closed_after.append(time.monotonic() - started)
            data = received.get(sock, b"")
            statuses.append(int(data.split(b" ", 2)[1]) if data else 0)
    for sock in socks:
        sock.close()
    selector.close()
    return closed_after, statuses


@pytest.mark.parametrize(
    ("name", "first_bytes", "status"),
    [
        ("idle_connections", b"", 0),
        ("half_sent_heads", b"POST /events HTTP/1.1\r\nHost: x\r\n", 408),
    ],
)
def test_a_thousand_held_connections_are_closed(
    server: LiveIngest, name: str, first_bytes: bytes, status: int
) -> None:
    """The issue's probe: 1,000 connections held open for 10 s and more."""
    count = 1000
    before = all_rejected(server)
    closed_after, statuses = hold(server, count, first_bytes)
    ok = httpx.get(f"{server.base}/healthz", timeout=5).status_code
    record(
        f"limits/{name}",
        what=f"{count} connections that send "
        + ("nothing" if not first_bytes else "half a request head")
        + f" (timeout {SHORT} s)",
        sent=count,
        closed_by_server=len(closed_after),
        answers=sorted(set(statuses)),
        last_closed_after_s=round(max(closed_after, default=0.0), 2),
        healthz_after=ok,
        recorded_as_rejected=all_rejected(server) - before,
    )
    assert len(closed_after) == count
    assert set(statuses) == {status}
    assert max(closed_after) < SHORT + 3.0
    assert ok == 200


def test_kept_alive_connection_is_closed_when_idle(server: LiveIngest, tenant: Tenant) -> None:
    body = pos_event(tenant)
    with connect(server) as sock:
        sock.sendall(head("POST", "/events", pos_headers(tenant), body) + body)
        status, _, closed = read_answer(sock)
        assert (status, closed) == (200, False)
        started = time.monotonic()
        sock.settimeout(SHORT + 2.0)
        assert sock.recv(1) == b""
        assert time.monotonic() - started < SHORT + 1.0


# ---- the lines of a batch


@pytest.mark.parametrize(
    ("name", "lines", "expect"),
    [
        ("batch_at_line_limit", DEFAULTS.ingest_max_batch_events, 200),
        ("batch_over_line_limit", DEFAULTS.ingest_max_batch_events + 1, 413),
    ],
)
def test_batch_line_limit(
    server: LiveIngest, tenant: Tenant, name: str, lines: int, expect: int
) -> None:
    body = b"\n".join(pos_event(tenant) for _ in range(lines))
    response = httpx.post(
        f"{server.base}/events",
        content=body,
        headers=pos_headers(tenant, "application/x-ndjson"),
        timeout=30,
    )
    found = len(landed(server.settings.database_url or "", tenant.company_id))
    rows, _ = rejected_rows(server.settings.database_url or "", tenant.company_id)
    record(
        f"limits/{name}",
        what=f"NDJSON batch of {lines} valid POS events",
        sent=1,
        events=lines,
        answers=[response.status_code],
        error=response.json().get("error", {}).get("code"),
        found=found,
        recorded_as_rejected=rows,
    )
    assert response.status_code == expect, response.text
    assert (found, rows) == ((lines, 0) if expect == 200 else (0, 1))


def test_batch_of_empty_objects_is_refused_before_parsing(
    server: LiveIngest, tenant: Tenant
) -> None:
    """The issue's noisy neighbour: 1 MiB of `{}` lines, about 340,000 of them."""
    body = b"{}\n" * (MIB // 3 - 1)
    started = time.monotonic()
    response = httpx.post(
        f"{server.base}/events",
        content=body,
        headers=pos_headers(tenant, "application/x-ndjson"),
        timeout=30,
    )
    elapsed = time.monotonic() - started
    rows, largest = rejected_rows(server.settings.database_url or "", tenant.company_id)
    record(
        "limits/batch_340k_empty_lines",
        what="NDJSON batch of 349,524 lines of {} (just under 1 MiB)",
        sent=1,
        answers=[response.status_code],
        error=response.json()["error"]["code"],
        answered_after_s=round(elapsed, 3),
        recorded_as_rejected=rows,
        largest_row_bytes=largest,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "too_many_events")
    assert rows == 1 and largest < 4096
