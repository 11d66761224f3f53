"""Database access shared by ingest, api and pipelines: URLs, engines and migrations."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from partner_signals.settings import Settings, get_settings


def libpq_url(settings: Settings | None = None) -> str:
    """The libpq URI of the store of record: DATABASE_URL, or the embedded server."""
    settings = settings or get_settings()
    if settings.database_url:
        return to_libpq(settings.database_url)
    from partner_signals.db.embedded import embedded_url

    return embedded_url(settings.data_dir)


def to_libpq(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit((scheme, *parts[1:]))


def to_sqlalchemy(url: str) -> str:
    parts = urlsplit(to_libpq(url))
    return urlunsplit(("postgresql+psycopg", *parts[1:]))


def with_database(url: str, database: str) -> str:
    """The same server, another database name."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@lru_cache(maxsize=8)
def _engine(url: str) -> sa.Engine:
    return sa.create_engine(to_sqlalchemy(url), pool_pre_ping=True, future=True)


def get_engine(settings: Settings | None = None) -> sa.Engine:
    return _engine(libpq_url(settings))
