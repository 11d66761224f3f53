"""Partner keys: who may read what, across every endpoint and parameter."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from partner_signals.settings import Settings
from tests.api.conftest import Company, bearer

SIGNAL_PATHS = ("/v1/restaurants/{r}/workforce", "/v1/restaurants/{r}/crm")


@pytest.mark.parametrize("path", [*SIGNAL_PATHS, "/v1/events", "/v1/exports"])
def test_no_key_is_401(api: TestClient, company: Company, path: str) -> None:
    response = api.get(path.format(r=company.restaurants[0]))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", SIGNAL_PATHS)
def test_unknown_key_is_401(api: TestClient, company: Company, path: str) -> None:
    response = api.get(path.format(r=company.restaurants[0]), headers=bearer("psk_guess"))
    assert response.status_code == 401


@pytest.mark.parametrize("path", SIGNAL_PATHS)
def test_another_companys_restaurant_is_403(
    api: TestClient, company: Company, other: Company, path: str
) -> None:
    response = api.get(path.format(r=other.restaurants[0]), headers=bearer(company.full_key))
    assert response.status_code == 403


@pytest.mark.parametrize("path", SIGNAL_PATHS)
def test_unknown_restaurant_is_403_not_404(api: TestClient, company: Company, path: str) -> None:
    response = api.get(path.format(r="no-such-place"), headers=bearer(company.full_key))
    assert response.status_code == 403


@pytest.mark.parametrize("path", SIGNAL_PATHS)
def test_restaurant_key_cannot_read_its_sibling(
    api: TestClient, company: Company, path: str
) -> None:
    response = api.get(
        path.format(r=company.restaurants[1]), headers=bearer(company.one_restaurant_key)
    )
    assert response.status_code == 403


@pytest.mark.parametrize("path", SIGNAL_PATHS)
def test_missing_scope_is_403(api: TestClient, company: Company, path: str) -> None:
    response = api.get(
        path.format(r=company.restaurants[0]), headers=bearer(company.events_only_key)
    )
    assert response.status_code == 403
    assert "scope" in response.json()["detail"]


def test_events_filter_cannot_reach_another_company(
    api: TestClient, company: Company, other: Company
) -> None:
    response = api.get(
        "/v1/events",
        params={"restaurant_id": other.restaurants[0]},
        headers=bearer(company.full_key),
    )
    # Filtering by a foreign restaurant narrows the key's own company: nothing, never theirs.
    assert response.status_code in (200, 503)
    if response.status_code == 200:
        assert response.json()["events"] == []


def test_restaurant_key_events_filter_is_403(api: TestClient, company: Company) -> None:
    response = api.get(
        "/v1/events",
        params={"restaurant_id": company.restaurants[1]},
        headers=bearer(company.one_restaurant_key),
    )
    assert response.status_code == 403


def test_rate_limit_is_429_with_retry_after(settings: Settings, company: Company) -> None:
    limited = settings.model_copy(update={"api_rate_per_second": 0.5, "api_rate_burst": 3})
    with TestClient(create_app(limited)) as client:
        codes = [
            client.get("/v1/exports", headers=bearer(company.full_key)).status_code
            for _ in range(5)
        ]
        last = client.get("/v1/exports", headers=bearer(company.full_key))
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    assert int(last.headers["retry-after"]) >= 1


def test_openapi_is_served(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert "/v1/restaurants/{restaurant_id}/workforce" in spec["paths"]
    assert "/v1/events" in spec["paths"]


def test_reader_role_cannot_write(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("set role partner_signals_reader"))
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text("insert into ops.companies (company_id, name) values ('x', 'x')"))
        conn.rollback()


def test_keys_are_stored_hashed(engine: sa.Engine, company: Company) -> None:
    with engine.connect() as conn:
        dump = conn.execute(
            sa.text("select string_agg(t::text, '') from ops.partner_keys t")
        ).scalar_one()
        audit = conn.execute(
            sa.text("select string_agg(details::text, '') from ops.audit_log")
        ).scalar_one()
    for key in (company.full_key, company.one_restaurant_key):
        assert key not in dump and key not in audit
