"""Keys' last use written in batches: one statement per flush, never earlier than what is
stored, kept across a failed write, and silent towards the caches (no NOTIFY)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import psycopg
import sqlalchemy as sa

from partner_signals.control import keys
from partner_signals.control.actor import Actor
from partner_signals.crypto import hash_api_key
from partner_signals.key_usage import KeyUsage
from partner_signals.registry import add_restaurant
from tests.core.test_invalidation import heard


def _make(engine: sa.Engine, ids: str) -> tuple[str, str, str]:
    company = f"use-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=f"use-r-{ids}", timezone="UTC")
        _, partner = keys.create_partner_key(conn, Actor.cli(), company, scopes=["read:crm"])
        _, ingest = keys.create_ingest_key(conn, Actor.cli(), company)
    return company, partner, ingest


def _last_used(engine: sa.Engine, table: str, secret: str) -> datetime | None:
    with engine.connect() as conn:
        value: datetime | None = conn.execute(
            sa.text(f"select last_used_at from ops.{table} where key_hash = :h"),
            {"h": hash_api_key(secret)},
        ).scalar_one()
    return value


def test_a_flush_writes_each_used_key_once_and_wakes_no_cache(
    engine: sa.Engine, database_url: str, ids: str
) -> None:
    _, partner, ingest = _make(engine, ids)
    partners = KeyUsage(database_url, "partner_keys", interval=3600)
    ingests = KeyUsage(database_url, "ingest_keys", interval=3600)
    before = time.time()
    for _ in range(1000):
        partners.touch(hash_api_key(partner))
    ingests.touch(hash_api_key(ingest))
    assert _last_used(engine, "partner_keys", partner) is None  # nothing until the flush

    def flush() -> None:
        assert asyncio.run(partners.flush()) == 1
        assert asyncio.run(ingests.flush()) == 1

    # Only last_used_at changed: the workers' caches are not told (migration 0015).
    assert heard(database_url, flush) == []
    used = _last_used(engine, "partner_keys", partner)
    assert used is not None and before - 1 <= used.timestamp() <= time.time()
    assert _last_used(engine, "ingest_keys", ingest) is not None
    # Nothing noted since: the next flush writes nothing.
    assert asyncio.run(partners.flush()) == 0


def test_a_later_flush_never_moves_last_use_back(
    engine: sa.Engine, database_url: str, ids: str
) -> None:
    _, partner, _ = _make(engine, ids)
    usage = KeyUsage(database_url, "partner_keys", interval=3600)
    usage.touch(hash_api_key(partner))
    asyncio.run(usage.flush())
    newest = _last_used(engine, "partner_keys", partner)
    # A worker whose note is older (its flush was late) does not undo a newer one.
    usage._used[hash_api_key(partner)] = time.time() - 3600
    asyncio.run(usage.flush())
    assert _last_used(engine, "partner_keys", partner) == newest


def test_a_failed_flush_keeps_the_uses_for_the_next(
    engine: sa.Engine, database_url: str, ids: str
) -> None:
    _, partner, _ = _make(engine, ids)
    broken = KeyUsage("postgresql://nobody@127.0.0.1:1/none", "partner_keys", interval=3600)
    broken.touch(hash_api_key(partner))
    try:
        asyncio.run(broken.flush())
    except psycopg.OperationalError:
        pass
    else:
        raise AssertionError("a flush to no database succeeded")
    broken._conninfo = database_url
    assert asyncio.run(broken.flush()) == 1
    assert _last_used(engine, "partner_keys", partner) is not None


def test_revoking_still_notifies(engine: sa.Engine, database_url: str, ids: str) -> None:
    company, partner, _ = _make(engine, ids)

    def revoke() -> None:
        with engine.begin() as conn:
            keys.revoke_partner_key(conn, Actor.cli(), company, partner[:10])

    got = heard(database_url, revoke)
    assert got == [
        {"table": "partner_keys", "row": {"key_hash": "\\x" + hash_api_key(partner).hex()}}
    ]
