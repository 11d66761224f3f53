"""The partner API's key and restaurant caches hear changes at once, not at the TTL."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from api.keys import create_partner_key
from api.state import ApiState
from partner_signals.registry import add_restaurant
from partner_signals.settings import Settings
from tests.ingest.test_directory import run_sql, within_a_second


def test_the_partner_api_hears_revoked_keys_and_moved_restaurants(
    engine: sa.Engine, settings: Settings, database_url: str, ids: str
) -> None:
    company, other, restaurant = f"dir-{ids}", f"dir-o-{ids}", f"dir-r-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=restaurant, timezone="UTC")
        add_restaurant(conn, company_id=other, restaurant_id=f"dir-s-{ids}", timezone="UTC")
        key = create_partner_key(conn, company_id=company, scopes=["read:events"])

    async def body() -> None:
        state = ApiState.create(settings, database_url)
        await state.open()
        try:
            await asyncio.wait_for(state.listener.listening.wait(), 5)
            principal = await state.principal(key)
            assert principal is not None and principal.company_id == company
            assert await state.restaurant_company(restaurant) == company
            run_sql(
                engine,
                "update ops.restaurants set company_id = :o where restaurant_id = :r",
                o=other,
                r=restaurant,
            )
            await within_a_second(lambda: state.restaurant_company(restaurant), other)
            run_sql(
                engine,
                "update ops.partner_keys set revoked_at = now() where company_id = :c",
                c=company,
            )
            await within_a_second(lambda: state.principal(key), None)
        finally:
            await state.close()

    asyncio.run(body())
