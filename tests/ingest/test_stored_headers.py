"""What ingest stores of a request's headers: the few that matter, each cut short.

In process (no HTTP layer in front to refuse large heads), so these show the cap holds
on its own: the live limits are in tests/reliability/test_limits.py.
"""

from __future__ import annotations

import time
import uuid

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ingest.handlers import KEPT_HEADER_CHARS, KEPT_HEADERS
from partner_signals.catalogue.sources import sources
from partner_signals.providers import PROVIDERS
from tests.ingest.conftest import Tenant

MIB = 1024 * 1024


def stored(engine: sa.Engine, sql: str, company_id: str) -> list[dict[str, str]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), {"c": company_id}).scalars())


def test_every_signature_header_of_the_catalogue_is_kept() -> None:
    for source in sources():
        secret = {"authorization"}  # the POS key, never stored
        assert set(source.signature.headers) - secret <= KEPT_HEADERS[source.name], source.name
        assert "authorization" not in KEPT_HEADERS[source.name]


def test_webhook_keeps_signature_and_ids_not_the_rest(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    guid = uuid.uuid4().hex
    body = orjson.dumps(
        {"event": "order_placed", "body": {"order": {"location_id": tenant.restaurant_id}}}
    )
    signed = PROVIDERS["deliveroo"].sign(body, tenant.secret, time.time(), guid)
    response = client.post(
        f"/webhooks/deliveroo/{tenant.company_id}",
        content=body,
        headers={
            "Content-Type": "application/json",
            **signed,
            "User-Agent": "Deliveroo " + "u" * (2 * MIB),
            "X-Pad": "p" * (4 * MIB),
            "Cookie": "session=1",
        },
    )
    assert response.status_code == 200, response.text
    (headers,) = stored(
        engine, "select headers from raw.webhook_events where company_id = :c", tenant.company_id
    )
    assert set(headers) == {
        "content-type",
        "content-length",
        "user-agent",
        "x-deliveroo-sequence-guid",
        "x-deliveroo-hmac-sha256",
    }
    assert headers["x-deliveroo-sequence-guid"] == guid
    assert len(headers["user-agent"]) == KEPT_HEADER_CHARS


def test_refusal_with_megabytes_of_headers_is_a_small_row(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    """The issue's probe without the HTTP layer: megabytes of headers on a refused webhook."""
    response = client.post(
        f"/webhooks/careem/{tenant.company_id}",
        content=b"{}",
        headers={
            "Content-Type": "application/json",
            "X-Careem-Signature": "0" * (4 * MIB),
            **{f"X-Pad-{n}": "p" * 1000 for n in range(1000)},
        },
    )
    assert response.status_code == 401
    sizes = stored(
        engine,
        "select octet_length(path) + octet_length(reason) + octet_length(headers::text)"
        " + octet_length(body_excerpt) from raw.rejected_requests where company_id = :c",
        tenant.company_id,
    )
    assert len(sizes) == 1 and sizes[0] < 4096, sizes
