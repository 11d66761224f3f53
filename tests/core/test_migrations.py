"""Database objects the migrations create, checked against a real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from partner_signals.db import with_database
from partner_signals.db.migrate import upgrade


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


@pytest.fixture
def at_0006(server_url: str) -> Iterator[tuple[str, sa.Engine]]:
    """A fresh database migrated to 0006: intermediates still in canonical."""
    name = f"ps_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server_url, name)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    upgrade(engine, "0006")
    try:
        yield url, engine
    finally:
        engine.dispose()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def int_tables(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute(
        "select schemaname || '.' || tablename from pg_tables where tablename like 'int\\_%'"
    ).fetchall()
    return {str(row[0]) for row in rows}


def test_intermediates_move_out_of_canonical_and_their_views_follow(
    at_0006: tuple[str, sa.Engine],
) -> None:
    url, engine = at_0006
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table canonical.int_visits (visit_id text)")
        conn.execute("insert into canonical.int_visits values ('v1')")
        conn.execute("create view marts.fct_table_occupancy as select * from canonical.int_visits")
        conn.execute("create table canonical.int_scope_orders__dbt_tmp (order_id text)")
    upgrade(engine)
    upgrade(engine)
    with psycopg.connect(url, autocommit=True) as conn:
        assert int_tables(conn) == {"intermediate.int_visits"}
        assert conn.execute("select visit_id from marts.fct_table_occupancy").fetchall() == [
            ("v1",)
        ]
        conn.execute("create table intermediate.int_orders (order_id text)")
        readable = conn.execute(
            "select has_table_privilege('partner_signals_reader', t, 'select') "
            "from unnest(array['intermediate.int_visits', 'intermediate.int_orders']) as t"
        ).fetchall()
    assert readable == [(True,), (True,)]


def test_an_intermediate_dbt_already_rebuilt_replaces_the_stale_one(
    at_0006: tuple[str, sa.Engine],
) -> None:
    url, engine = at_0006
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema intermediate")
        conn.execute("create table canonical.int_bills as select 'stale' as order_id")
        conn.execute("create table intermediate.int_bills as select 'fresh' as order_id")
    upgrade(engine)
    with psycopg.connect(url, autocommit=True) as conn:
        assert int_tables(conn) == {"intermediate.int_bills"}
        assert conn.execute("select order_id from intermediate.int_bills").fetchall() == [
            ("fresh",)
        ]


def test_prep_time_subscriptions_follow_the_signal_catalogue_name(server_url: str) -> None:
    """0008: a partner subscribed to `prep_time` keeps the signal under its one name,
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
        upgrade(engine, "0007")
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
