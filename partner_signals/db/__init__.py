"""Database access shared by ingest, api and pipelines: URLs, engines and migrations."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from partner_signals.settings import Settings, get_settings

if TYPE_CHECKING:
    import sqlalchemy as sa


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
    # Imported here: SQLAlchemy takes 0.6 s to import, and `ingest FILE` (libpq_url
    # only) should not pay it at every start.
    import sqlalchemy as sa

    return sa.create_engine(to_sqlalchemy(url), pool_pre_ping=True, future=True)


def get_engine(settings: Settings | None = None) -> sa.Engine:
    return _engine(libpq_url(settings))
