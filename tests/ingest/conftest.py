"""Fixtures for the ingest API: a running app and a company with every provider enabled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ingest.app import create_app
from partner_signals.providers import PROVIDERS
from partner_signals.providers.paypal import make_test_certificate
from partner_signals.registry import add_restaurant, create_ingest_key, enable_integration
from partner_signals.settings import Settings

PAYPAL_CERT, PAYPAL_KEY = make_test_certificate()


@dataclass(frozen=True)
class Tenant:
    company_id: str
    restaurant_id: str
    secret: str
    ingest_key: str
    paypal_webhook_id: str


def make_tenant(engine: sa.Engine, settings: Settings, suffix: str) -> Tenant:
    company, restaurant = f"co-{suffix}", f"r-{suffix}"
    secret = f"whsec_test_{suffix}"
    webhook_id = f"WH-{suffix}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=restaurant, timezone="Asia/Dubai")
        for provider in sorted(set(PROVIDERS) - {"paypal"}):
            enable_integration(
                conn,
                key=settings.master_key(),
                company_id=company,
                provider=provider,
                secrets={"webhook_secrets": [secret]},
            )
        enable_integration(
            conn,
            key=settings.master_key(),
            company_id=company,
            provider="paypal",
            config={"webhook_id": webhook_id, "certificates": [PAYPAL_CERT]},
        )
        key = create_ingest_key(conn, company_id=company)
    return Tenant(company, restaurant, secret, key, webhook_id)


@pytest.fixture
def tenant(engine: sa.Engine, settings: Settings, ids: str) -> Tenant:
    return make_tenant(engine, settings, ids)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
