"""Database objects the migrations create, checked against a real server."""

from __future__ import annotations

import psycopg
import pytest


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2026-02-28T19:30:00+04:00", "2026-02-28 15:30:00+00"), ("2026-02-30T19:30:00Z", None)],
)
def test_try_timestamptz_survives_a_forced_parallel_plan(
    database_url: str, value: str, expected: str | None
) -> None:
    """The planner may run any parallel-safe expression in a parallel worker; one with
    an exception block then fails the whole query. Force parallel mode, as a big table
    would, and the function must still answer."""
    with psycopg.connect(database_url) as conn:
        conn.execute("set timezone = 'UTC'")
        version = conn.info.server_version
        conn.execute(
            "set debug_parallel_query = on" if version >= 160000 else "set force_parallel_mode = on"
        )
        conn.execute("set parallel_setup_cost = 0")
        conn.execute("set parallel_tuple_cost = 0")
        row = conn.execute(
            "select ops.try_timestamptz(v)::text from (values (%s)) as t(v)", (value,)
        ).fetchone()
    assert row is not None
    assert row[0] == expected


def test_prep_time_subscriptions_follow_the_signal_catalogue_name(server_url: str) -> None:
    """0007: a partner subscribed to `prep_time` keeps the signal under its one name,
    `item_prep_times`, and its sync state (the version sequence) goes with it."""
    import uuid

    import sqlalchemy as sa

    from partner_signals.db import with_database
    from partner_signals.db.migrate import upgrade

    name = f"ps_test_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server_url, name).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(sa.text("insert into ops.companies (company_id, name) values ('c', 'c')"))
            iid = conn.execute(
                sa.text(
                    "insert into ops.integrations (company_id, provider, config) values "
                    """('c', 'workforce', '{"url": "http://x", "signals": ["prep_time", "order_velocity"]}')"""
                    " returning integration_id"
                )
            ).scalar()
            conn.execute(
                sa.text(
                    "insert into ops.adapter_sync_state (integration_id, signal, key, version, value)"
                    " values (:i, 'prep_time', 'burger/2026-03-14', 3, '{}')"
                ),
                {"i": iid},
            )
        upgrade(engine)
        upgrade(engine)  # safe to run twice
        with engine.connect() as conn:
            config = conn.execute(sa.text("select config from ops.integrations")).scalar()
            state = conn.execute(
                sa.text("select signal, version from ops.adapter_sync_state")
            ).one()
        assert config == {"url": "http://x", "signals": ["item_prep_times", "order_velocity"]}
        assert tuple(state) == ("item_prep_times", 3)
    finally:
        engine.dispose()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
