"""Fixtures for the partner API: an app, two companies, and keys with different reach."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import create_partner_key
from partner_signals.registry import add_restaurant
from partner_signals.settings import Settings


@dataclass(frozen=True)
class Company:
    company_id: str
    restaurants: tuple[str, str]
    full_key: str  # every scope, whole company
    one_restaurant_key: str  # every scope, first restaurant only
    events_only_key: str


def make_company(engine: sa.Engine, suffix: str) -> Company:
    company = f"api-{suffix}"
    restaurants = (f"api-a-{suffix}", f"api-b-{suffix}")
    scopes = ["read:workforce", "read:crm", "read:events", "read:exports"]
    with engine.begin() as conn:
        for r in restaurants:
            add_restaurant(conn, company_id=company, restaurant_id=r, timezone="Asia/Dubai")
        full = create_partner_key(conn, company_id=company, scopes=scopes)
        one = create_partner_key(
            conn, company_id=company, scopes=scopes, restaurant_id=restaurants[0]
        )
        events = create_partner_key(conn, company_id=company, scopes=["read:events"])
    return Company(company, restaurants, full, one, events)


@pytest.fixture
def company(engine: sa.Engine, ids: str) -> Company:
    return make_company(engine, ids)


@pytest.fixture
def other(engine: sa.Engine, ids: str) -> Company:
    return make_company(engine, ids + "x")


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
