"""Test-wide fixtures: one fresh PostgreSQL database per run, dropped at the end.

The server is DATABASE_URL when set, otherwise the embedded pgserver. Tests keep
apart by using their own company and restaurant ids (see `ids`), never by ordering.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from partner_signals.db import libpq_url, to_libpq, with_database
from partner_signals.db.migrate import upgrade
from partner_signals.settings import Settings, get_settings

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The libpq URL of the server's maintenance database."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return to_libpq(env)
    data_dir = Path(os.environ.get("PARTNER_SIGNALS_TEST_DATA_DIR", ".data/test"))
    return libpq_url(Settings(database_url=None, data_dir=data_dir))


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A database made for this test run, migrated to head, dropped afterwards."""
    name = f"ps_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("data")
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        exports_dir=data_dir / "exports",
        secret_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield eng
    eng.dispose()


@pytest.fixture
def ids() -> str:
    """A short suffix unique to this test, for company and restaurant ids."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI in this process pointed at the test database and key."""
    monkeypatch.setenv("DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("PARTNER_SIGNALS_SECRET_KEY", str(settings.secret_key))
    monkeypatch.setenv("PARTNER_SIGNALS_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
