"""The admin API as operators meet it: a real uvicorn on 127.0.0.1 over the test database,
and tokens of each role, made by the same service the CLI calls."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from partner_signals.control import operators
from partner_signals.control.actor import Actor
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.registry import add_restaurant
from partner_signals.settings import Settings


@pytest.fixture(scope="session")
def admin_url(settings: Settings) -> Iterator[str]:
    """`uvicorn api.admin:app` on a free port, for the whole test session."""
    port = free_port()
    proc = start(
        uvicorn_cmd("api.admin:app", host="127.0.0.1", port=port, workers=1), child_env(settings)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/readyz", proc)
        yield url
    finally:
        stop(proc)


@dataclass(frozen=True)
class Tokens:
    company_id: str
    other_company_id: str
    restaurant_id: str
    admin: str  # every company
    operator: str  # every company
    viewer: str  # every company
    company_admin: str  # bound to company_id
    company_viewer: str  # bound to company_id


def make_tokens(engine: sa.Engine, suffix: str) -> Tokens:
    company, other = f"adm-{suffix}", f"adm-o-{suffix}"
    cli = Actor.cli()
    made: dict[str, str] = {}
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=f"adm-r-{suffix}", timezone="UTC")
        add_restaurant(conn, company_id=other, restaurant_id=f"adm-or-{suffix}", timezone="UTC")
        for label, role, bound in (
            ("admin", "admin", None),
            ("operator", "operator", None),
            ("viewer", "viewer", None),
            ("company_admin", "admin", company),
            ("company_viewer", "viewer", company),
        ):
            _, made[label] = operators.create(
                conn, cli, name=f"{label}-{suffix}", role=role, company_id=bound
            )
    return Tokens(company, other, f"adm-r-{suffix}", **made)


@pytest.fixture
def tokens(engine: sa.Engine, ids: str) -> Tokens:
    return make_tokens(engine, ids)


@pytest.fixture
def admin(admin_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    """The answer is application/problem+json with this status and code, and names the
    request id it was logged under."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture(scope="session")
def ingest_url(settings: Settings) -> Iterator[str]:
    """`uvicorn ingest.app:app` on a free port over the same database, for tests that send
    a real signed webhook or POS event and then read it back through the admin API."""
    port = free_port()
    proc = start(
        uvicorn_cmd("ingest.app:app", host="127.0.0.1", port=port, workers=1), child_env(settings)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/readyz", proc)
        yield url
    finally:
        stop(proc)
