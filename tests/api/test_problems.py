"""One error shape across the admin, partner and ingest APIs, served by the real uvicorn
(processes.start, processes.uvicorn_cmd and its logging.json): every refusal is
application/problem+json with its stable code and the X-Request-ID sent, and the server's
log line for the refusal carries that id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from api.keys import create_partner_key
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.settings import Settings
from tests.api.conftest import Company, bearer


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def logged(self, text: str, timeout: float = 5.0) -> str:
        """The server's log line holding `text` (waiting for it a little)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log.read_text(errors="replace").splitlines():
                if text in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log:\n{self.log.read_text()}")
            time.sleep(0.05)


def serve(app: str, settings: Settings, log: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    with log.open("wb") as sink:
        proc = start(
            uvicorn_cmd(app, host="127.0.0.1", port=port, workers=1),
            child_env(settings, env),
            output=sink,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/readyz", proc)
        yield Server(url, log)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def partner(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("api") / "api.log"
    # A small bucket, so the test reaches 429 in a few requests.
    yield from serve(
        "api.app:app",
        settings,
        log,
        PARTNER_SIGNALS_API_RATE_PER_SECOND="0.01",
        PARTNER_SIGNALS_API_RATE_BURST="3",
    )


@pytest.fixture(scope="module")
def ingest(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve("ingest.app:app", settings, tmp_path_factory.mktemp("ingest") / "i.log")


@pytest.fixture(scope="module")
def admin(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve("api.admin:app", settings, tmp_path_factory.mktemp("admin") / "a.log")


def refused(
    server: Server, method: str, path: str, status: int, code: str, **kwargs: object
) -> dict[str, object]:
    """Send with a fresh X-Request-ID; the answer is the problem, and the log has it."""
    rid = f"t-{uuid.uuid4().hex[:16]}"
    headers = {"X-Request-ID": rid, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    response = httpx.request(method, server.url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-request-id"] == rid
    body: dict[str, object] = response.json()
    assert (body["status"], body["code"], body["request_id"]) == (status, code, rid)
    assert body["type"] == f"https://partner-signals.dev/problems/{code}"
    assert body["detail"]
    line = server.logged(rid)
    assert str(status) in line and code in line, line
    return body


def test_partner_api_refusals(partner: Server, company: Company, engine: sa.Engine) -> None:
    r = company.restaurants[0]
    refused(partner, "GET", f"/v1/restaurants/{r}/workforce", 401, "missing_key")
    refused(
        partner, "GET", f"/v1/restaurants/{r}/workforce", 401, "invalid_key",
        headers=bearer("psk_nothing_like_a_key"),
    )  # fmt: skip
    one = company.one_restaurant_key
    refused(
        partner, "GET", f"/v1/restaurants/{company.restaurants[1]}/workforce", 403,
        "foreign_restaurant", headers=bearer(one),
    )  # fmt: skip
    refused(
        partner, "GET", f"/v1/restaurants/{r}/workforce", 403, "missing_scope",
        headers=bearer(company.events_only_key),
    )  # fmt: skip
    with engine.begin() as conn:
        key = create_partner_key(conn, company_id=company.company_id, scopes=["read:workforce"])
    body = refused(
        partner, "GET", f"/v1/restaurants/{r}/workforce?window=soon", 422, "invalid_span",
        headers=bearer(key),
    )  # fmt: skip
    assert body["errors"] == [
        {"field": "window", "message": "a number and a unit, e.g. 90m, 6h or 7d"}
    ]
    body = refused(
        partner, "GET", "/v1/events?cursor=!!", 422, "invalid_cursor",
        headers=bearer(company.events_only_key),
    )  # fmt: skip
    assert body["errors"][0]["field"] == "cursor"  # type: ignore[index]
    body = refused(
        partner, "GET", "/v1/events?limit=0", 422, "validation_failed",
        headers=bearer(company.events_only_key),
    )  # fmt: skip
    assert body["errors"][0]["field"] == "limit"  # type: ignore[index]
    with engine.begin() as conn:
        hasty = create_partner_key(conn, company_id=company.company_id, scopes=["read:events"])
    for _ in range(3):
        httpx.get(f"{partner.url}/v1/events", headers=bearer(hasty))
    limited = httpx.get(f"{partner.url}/v1/events", headers=bearer(hasty))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["code"] == "rate_limited"
    refused(partner, "GET", "/v1/nowhere", 404, "not_found")


def test_an_id_that_is_not_sane_is_replaced(partner: Server) -> None:
    response = httpx.get(f"{partner.url}/v1/events", headers={"X-Request-ID": "bad id;<x>" * 20})
    rid = response.headers["x-request-id"]
    assert response.json()["request_id"] == rid and " " not in rid and len(rid) <= 64


def test_ingest_refusals_keep_their_error_object_and_are_recorded(
    ingest: Server, engine: sa.Engine
) -> None:
    body = refused(ingest, "POST", "/events", 401, "missing_key", json={"a": 1})
    assert body["error"] == {"code": "missing_key", "message": body["detail"]}
    refused(
        ingest, "POST", "/events", 401, "invalid_key",
        headers={"Authorization": "Bearer psi_nothing"}, json={},
    )  # fmt: skip
    body = refused(ingest, "POST", "/webhooks/nosuch/acme", 404, "unknown_provider", json={})
    with engine.connect() as conn:
        reasons = conn.execute(
            sa.text(
                "select status_code, reason from raw.rejected_requests "
                "where headers::text like :rid"
            ),
            {"rid": f"%{body['request_id']}%"},
        ).all()
    assert [(s, r.split(":")[0]) for s, r in reasons] == [(404, "unknown_provider")]


def test_admin_refusals(admin: Server) -> None:
    refused(admin, "GET", "/admin/v1/companies", 401, "unauthenticated")
    refused(
        admin, "GET", "/admin/v1/companies", 401, "unauthenticated",
        headers={"Authorization": "Bearer pso_unknown"},
    )  # fmt: skip
