"""The worker's sender: keep-alive reuse, partners that close connections, TLS, proxies,
connections per endpoint, and two workers at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import httpcore
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from partner_signals.adapters import Outgoing
from partner_signals.adapters.webhook import WebhookAdapter
from partner_signals.pushes import enqueue_events
from partner_signals.pushes.policy import judge_exception
from partner_signals.pushes.transport import Answer, Sender, sends_itself
from partner_signals.pushes.worker import DeliveryRun, WorkerOptions, utc_now
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


def post(url: str, n: int = 0) -> Outgoing:
    return Outgoing(
        method="POST",
        url=f"{url}/hooks",
        headers={"content-type": "application/json", "webhook-id": f"m{n}"},
        content=b'{"n": %d}' % n,
    )


def send_all(sender: Sender, url: str, count: int, pause: float = 0.0) -> list[Answer]:
    async def go() -> list[Answer]:
        answers = []
        try:
            for n in range(count):
                answers.append(await sender.send(1, post(url, n)))
                await asyncio.sleep(pause)
        finally:
            await sender.aclose()
        return answers

    return asyncio.run(go())


def test_one_keep_alive_connection_carries_requests_one_after_another(
    partners: Callable[..., Partner],
) -> None:
    partner = partners(respond=lambda r: (201, {"retry-after": "7"}, b"made"))

    answers = send_all(Sender(timeout=5, connect_timeout=5), partner.url, 3)

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert {a.retry_after for a in answers} == {"7"}
    assert [r.body for r in partner.received] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert len({r.client_port for r in partner.received}) == 1
    assert partner.received[0].headers["webhook-id"] == "m0"


def test_a_connection_the_partner_closed_while_idle_is_replaced_not_failed(
    partners: Callable[..., Partner],
) -> None:
    partner = partners(idle_timeout=0.1)

    answers = send_all(Sender(timeout=5, connect_timeout=5), partner.url, 3, pause=0.4)

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({r.client_port for r in partner.received}) == 3


def test_connection_close_is_honoured_and_a_refusal_keeps_its_text(
    partners: Callable[..., Partner],
) -> None:
    partner = partners(respond=lambda r: (422, {"connection": "close"}, b"bad field: table_id"))

    answers = send_all(Sender(timeout=5, connect_timeout=5), partner.url, 2)

    assert [(a.status_code, a.text) for a in answers] == [(422, "bad field: table_id")] * 2
    assert len({r.client_port for r in partner.received}) == 2


def _certificates(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a client
    context that trusts only that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partner.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_https_partners_are_verified_and_kept_alive(
    partners: Callable[..., Partner], tmp_path: Path
) -> None:
    server, client = _certificates(tmp_path)
    partner = partners(tls=server)
    assert partner.url.startswith("https://")

    answers = send_all(Sender(timeout=5, connect_timeout=5, ssl_context=client), partner.url, 2)
    assert [a.status_code for a in answers] == [200, 200]
    assert len({r.client_port for r in partner.received}) == 1

    # Without the partner's certificate in the trust store the request never leaves.
    untrusting = Sender(timeout=5, connect_timeout=5, ssl_context=ssl.create_default_context())
    with pytest.raises(httpcore.ConnectError) as failed:
        send_all(untrusting, partner.url, 1)
    assert judge_exception(failed.value).fault == "partner"
    assert len(partner.received) == 2


def test_httpcore_failures_are_judged_like_their_httpx_counterparts() -> None:
    cases = {
        httpcore.ConnectError("refused"): ("retry", "partner"),
        httpcore.RemoteProtocolError("closed"): ("retry", "partner"),
        httpcore.ReadTimeout("slow"): ("retry", "partner"),
        httpcore.ConnectTimeout("slow"): ("retry", "partner"),
        httpcore.PoolTimeout("ours"): ("retry", "ours"),
        TimeoutError(): ("retry", "partner"),
    }
    for exc, expected in cases.items():
        verdict = judge_exception(exc)
        assert (verdict.kind, verdict.fault) == expected, exc
    assert judge_exception(httpcore.ReadTimeout("x")).reason == "no answer in time (ReadTimeout)"


def test_a_proxy_in_the_environment_is_still_used(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = partners()  # answers 200 to whatever it is asked to forward
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    integration = enable_webhook(engine, settings, tenant, "http://partner.invalid/hooks")
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created")])

    assert deliver(engine, settings, clock, tenant).delivered == 1

    (request,) = proxy.received
    assert request.path == "http://partner.invalid/hooks"  # absolute form: a proxy request
    assert {r["status"] for r in outbox(engine, integration)} == {"delivered"}


def test_adapters_that_send_their_own_way_keep_httpx() -> None:
    class Custom(WebhookAdapter):
        async def deliver(self, client, target, message, *, now):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    assert not sends_itself(WebhookAdapter())
    assert sends_itself(Custom())


def test_connections_to_an_endpoint_stay_within_its_limit(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners(delay=0.01)
    enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(120)])

    summary = deliver(engine, settings, clock, tenant, per_endpoint=4)

    assert summary.delivered == 120
    assert 1 < len({r.client_port for r in partner.received}) <= 4


def test_two_workers_at_once_send_each_message_once(
    engine: sa.Engine,
    settings: Settings,
    tenant: Tenant,
    partners: Callable[..., Partner],
    clock: Clock,
) -> None:
    partner = partners(delay=0.002)
    integration = enable_webhook(engine, settings, tenant, partner.url)
    with engine.begin() as conn:
        enqueue_events(conn, [event(tenant, "order.created") for _ in range(400)])
    start = threading.Barrier(2)
    delivered: list[int] = []

    def worker() -> None:
        start.wait()
        delivered.append(deliver(engine, settings, clock, tenant, batch_size=50).delivered)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = [r.headers["webhook-id"] for r in partner.received]
    assert len(ids) == len(set(ids)) == 400
    assert sum(delivered) == 400 and min(delivered) > 0  # both took a share
    assert {r["status"] for r in outbox(engine, integration)} == {"delivered"}


def test_the_sender_is_skipped_when_a_client_is_given(engine: sa.Engine) -> None:
    import httpx

    async def make() -> tuple[DeliveryRun, DeliveryRun]:
        options = WorkerOptions()
        async with httpx.AsyncClient() as client:
            given = DeliveryRun(
                engine, key=b"k" * 32, client=client, clock=utc_now, options=options
            )
        own = DeliveryRun(engine, key=b"k" * 32, client=None, clock=utc_now, options=options)
        return given, own

    given, own = asyncio.run(make())
    assert given.transport.sender is None and own.transport.sender is not None
