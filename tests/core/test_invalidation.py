"""Cache invalidation by NOTIFY: what the triggers send, and a listener that reconnects."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import psycopg
import sqlalchemy as sa

from api.keys import create_partner_key, revoke_partner_key
from partner_signals.crypto import hash_api_key
from partner_signals.invalidation import APPLICATION_NAME, CHANNEL, Change, ChangeListener
from partner_signals.registry import (
    add_restaurant,
    create_ingest_key,
    enable_integration,
    revoke_ingest_key,
)
from partner_signals.settings import Settings


def heard(database_url: str, change: Any) -> list[dict[str, Any]]:
    """The notifications `change(conn)` causes, as sent (payloads parsed)."""
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"listen {CHANNEL}")
        change()
        return [json.loads(n.payload) for n in listener.notifies(timeout=0.5)]


def test_revoking_a_key_names_its_hash_and_nothing_else(
    engine: sa.Engine, database_url: str, ids: str
) -> None:
    company = f"inv-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=f"inv-r-{ids}", timezone="UTC")
        ingest = create_ingest_key(conn, company_id=company)
        partner = create_partner_key(conn, company_id=company, scopes=["read:events"])

    def revoke() -> None:
        with engine.begin() as conn:
            revoke_ingest_key(conn, prefix=ingest[:10])
            revoke_partner_key(conn, prefix=partner[:10])

    got = heard(database_url, revoke)
    assert got == [
        {"table": "ingest_keys", "row": {"key_hash": "\\x" + hash_api_key(ingest).hex()}},
        {"table": "partner_keys", "row": {"key_hash": "\\x" + hash_api_key(partner).hex()}},
    ]
    assert Change.parse(json.dumps(got[0])).row == {"key_hash": hash_api_key(ingest).hex()}


def test_an_integration_change_sends_its_ids_never_its_secrets(
    engine: sa.Engine, database_url: str, settings: Settings, ids: str
) -> None:
    company = f"inv-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=f"inv-r-{ids}", timezone="UTC")

    def enable() -> None:
        with engine.begin() as conn:
            enable_integration(
                conn,
                key=settings.master_key(),
                company_id=company,
                provider="stripe",
                secrets={"webhook_secrets": [f"whsec_{ids}"]},
            )

    got = heard(database_url, enable)
    assert got == [{"table": "integrations", "row": {"company_id": company, "provider": "stripe"}}]


def test_a_restaurant_moved_to_another_company_names_both(
    engine: sa.Engine, database_url: str, ids: str
) -> None:
    first, second, restaurant = f"inv-a-{ids}", f"inv-b-{ids}", f"inv-r-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=first, restaurant_id=restaurant, timezone="UTC")
        add_restaurant(conn, company_id=second, restaurant_id=f"inv-s-{ids}", timezone="UTC")

    def move() -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.text("update ops.restaurants set company_id = :c where restaurant_id = :r"),
                {"c": second, "r": restaurant},
            )

    rows = [n["row"] for n in heard(database_url, move)]
    assert rows == [
        {"company_id": first, "restaurant_id": restaurant},
        {"company_id": second, "restaurant_id": restaurant},
    ]


def test_a_listener_that_loses_its_connection_reconnects_and_forgets_everything(
    database_url: str,
) -> None:
    """The notifications sent while it was away are lost: on_connect (the caches'
    clear) must run again once LISTEN is back, and changes are heard again after."""

    async def body() -> None:
        changes: list[Change] = []
        connects: list[int] = []
        listener = ChangeListener(
            database_url,
            on_change=changes.append,
            on_connect=lambda: connects.append(1),
            retry_seconds=0.05,
        )
        listener.start()
        try:
            await asyncio.wait_for(listener.listening.wait(), 5)
            assert len(connects) == 1
            async with await psycopg.AsyncConnection.connect(
                database_url, autocommit=True
            ) as admin:
                await admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where application_name = %s and datname = current_database()",
                    (f"{APPLICATION_NAME} {os.getpid()}",),
                )
                for _ in range(100):  # the loss is noticed, then LISTEN is back
                    if len(connects) == 2 and listener.listening.is_set():
                        break
                    await asyncio.sleep(0.05)
                assert len(connects) == 2
                payload = json.dumps({"table": "ingest_keys", "row": {"key_hash": "\\xab"}})
                await admin.execute("select pg_notify(%s, %s)", (CHANNEL, payload))
                for _ in range(100):
                    if changes:
                        break
                    await asyncio.sleep(0.01)
            assert changes == [Change("ingest_keys", {"key_hash": "ab"})]
        finally:
            await listener.stop()

    asyncio.run(body())


def test_a_malformed_notification_is_ignored(database_url: str) -> None:
    async def body() -> None:
        changes: list[Change] = []
        listener = ChangeListener(database_url, on_change=changes.append, on_connect=lambda: None)
        listener.start()
        try:
            await asyncio.wait_for(listener.listening.wait(), 5)
            async with await psycopg.AsyncConnection.connect(
                database_url, autocommit=True
            ) as admin:
                await admin.execute("select pg_notify(%s, 'not json')", (CHANNEL,))
                good = json.dumps({"table": "restaurants", "row": {"restaurant_id": "r"}})
                await admin.execute("select pg_notify(%s, %s)", (CHANNEL, good))
            for _ in range(100):
                if changes:
                    break
                await asyncio.sleep(0.01)
            assert changes == [Change("restaurants", {"restaurant_id": "r"})]
        finally:
            await listener.stop()

    asyncio.run(body())
