"""The "now" marts read live_events: an event posted seconds ago counts before any dbt run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.pipelines.conftest import BuiltDay
from tests.pipelines.service_day import register


def post(conn: psycopg.Connection[Any], company_id: str, restaurant_id: str, **event: Any) -> None:
    body = {k: v for k, v in event.items() if k in {"order_id", "table_id", "data"}}
    conn.execute(
        """
        insert into raw.order_events (source, company_id, restaurant_id, event_id,
            event_type, occurred_at, received_at, headers, body)
        values ('pos', %s, %s, %s, %s, %s, now(), '{}', %s)
        """,
        (company_id, restaurant_id, event["event_id"], event["type"], event["at"],
         json.dumps(body)),
    )  # fmt: skip


def test_events_posted_since_the_last_run_show_in_the_now_views(
    built_day: BuiltDay, ids: str
) -> None:
    company_id, restaurant_id = f"co-now-{ids}", f"r-now-{ids}"
    now = datetime.now(UTC)
    with psycopg.connect(built_day.url) as conn:
        register(conn, company_id, restaurant_id)
        for n, (type_, minutes_ago, extra) in enumerate(
            [
                ("table.seated", 30, {"table_id": "T1", "data": {"covers": 2}}),
                ("order.created", 25, {"order_id": "O1", "table_id": "T1", "data": {"covers": 2}}),
                ("order.bill_requested", 3, {"order_id": "O1", "table_id": "T1", "data": {}}),
                ("order.created", 1, {"order_id": "O2", "data": {"channel": "takeaway"}}),
            ]
        ):
            post(
                conn, company_id, restaurant_id, event_id=f"e{n}", type=type_,
                at=now - timedelta(minutes=minutes_ago), **extra,
            )  # fmt: skip

    def one(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(built_day.url) as conn:
            return [tuple(r) for r in conn.execute(sql, (restaurant_id,))]

    assert one(
        "select orders_last_5m, orders_last_60m from marts.current_order_velocity "
        "where restaurant_id = %s"
    ) == [(1, 2)]
    assert one(
        "select table_id, covers from marts.current_occupied_tables where restaurant_id = %s"
    ) == [("T1", 2)]
    assert one(
        "select order_id, table_id from marts.current_open_bills where restaurant_id = %s"
    ) == [("O1", "T1")]
    assert one(
        "select order_id, status from marts.current_active_orders "
        "where restaurant_id = %s order by order_id"
    ) == [("O1", "bill_requested"), ("O2", "open")]
    # Not materialized yet: only live_events has them.
    assert one(
        "select count(*), count(loaded_at) from canonical.live_events where restaurant_id = %s"
    ) == [(4, 0)]
