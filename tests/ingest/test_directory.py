"""The ingest directory hears revoked keys, disabled providers and new restaurants at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from ingest.directory import Directory
from partner_signals.registry import add_restaurant, create_ingest_key, enable_integration
from partner_signals.settings import Settings

# Far past any test: an answer that changes within a second was told, not expired.
TTL = 300.0


async def within_a_second(read: Callable[[], Awaitable[Any]], expected: Any) -> float:
    start = time.monotonic()
    while (value := await read()) != expected:
        assert time.monotonic() - start < 1.0, f"still {value!r}"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def run_sql(engine: sa.Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_ingest_hears_revoked_keys_disabled_providers_and_new_restaurants(
    engine: sa.Engine, settings: Settings, database_url: str, ids: str
) -> None:
    company = f"dir-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=f"dir-a-{ids}", timezone="UTC")
        enable_integration(
            conn,
            key=settings.master_key(),
            company_id=company,
            provider="stripe",
            secrets={"webhook_secrets": ["whsec_dir"]},
        )
        key = create_ingest_key(conn, company_id=company)

    async def body() -> None:
        directory = Directory(database_url, settings.master_key(), ttl=TTL)
        await directory.start()
        try:
            await asyncio.wait_for(directory.listener.listening.wait(), 5)
            assert await directory.company_for_key(key) == company
            creds = await directory.credentials(company, "stripe")
            assert creds is not None and creds.secrets == ("whsec_dir",)
            assert await directory.restaurants(company) == {f"dir-a-{ids}"}
            # Cached: these reads no longer touch the database until told otherwise.
            run_sql(
                engine,
                "update ops.ingest_keys set revoked_at = now() where company_id = :c",
                c=company,
            )
            await within_a_second(lambda: directory.company_for_key(key), None)
            run_sql(
                engine,
                "update ops.integrations set enabled = false where company_id = :c",
                c=company,
            )
            await within_a_second(lambda: directory.credentials(company, "stripe"), None)
            with engine.begin() as conn:
                add_restaurant(
                    conn, company_id=company, restaurant_id=f"dir-b-{ids}", timezone="UTC"
                )
            await within_a_second(
                lambda: directory.restaurants(company), {f"dir-a-{ids}", f"dir-b-{ids}"}
            )
        finally:
            await directory.stop()

    asyncio.run(body())


def test_made_up_keys_cannot_grow_the_cache_past_its_limit(
    settings: Settings, database_url: str
) -> None:
    async def body() -> None:
        directory = Directory(database_url, settings.master_key(), ttl=TTL, limit=8)
        await directory.start()
        try:
            for i in range(50):
                assert await directory.company_for_key(f"psi_made_up_{i}") is None
            assert len(directory._cache) == 8
        finally:
            await directory.stop()

    asyncio.run(body())
