"""Signals at a glance, for the console: each restaurant's "now" (open tables, active
orders, open bills and how long the oldest has waited) read from the same live views the
partner API serves, and each signal's lag behind the events that landed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import psycopg
import sqlalchemy as sa

from partner_signals.control.actor import Actor
from partner_signals.observability import SignalLag, signal_lags

LIVE_VIEWS = (
    "marts.current_occupied_tables",
    "marts.current_active_orders",
    "marts.current_open_bills",
)


@dataclass(frozen=True)
class RestaurantNow:
    restaurant_id: str
    name: str
    timezone: str
    tables_now: int
    covers_seated: int
    active_orders: int
    oldest_order_seconds: float | None
    open_bills: int
    longest_bill_wait_seconds: float | None


def restaurants_now(
    conn: sa.Connection, actor: Actor, company_id: str
) -> list[RestaurantNow] | None:
    """Every restaurant of the company with its live figures; None while the live views
    are not built yet (a deployment that never ran `materialize`)."""
    actor.require("viewer", company_id)
    built = conn.execute(
        sa.text("select bool_and(to_regclass(v) is not null) from unnest(cast(:v as text[])) v"),
        {"v": list(LIVE_VIEWS)},
    ).scalar()
    if not built:
        return None
    rows = conn.execute(
        sa.text(
            """
            select r.restaurant_id, coalesce(r.name, r.restaurant_id) as name, r.timezone,
                coalesce(o.tables_now, 0) as tables_now,
                coalesce(o.covers, 0) as covers_seated,
                coalesce(a.active, 0) as active_orders, a.oldest as oldest_order_seconds,
                coalesce(b.bills, 0) as open_bills, b.longest as longest_bill_wait_seconds
            from ops.restaurants r
            left join (
                select restaurant_id, count(*) as tables_now, sum(covers) as covers
                from marts.current_occupied_tables group by 1
            ) o using (restaurant_id)
            left join (
                select restaurant_id, count(*) as active, max(elapsed_seconds) as oldest
                from marts.current_active_orders group by 1
            ) a using (restaurant_id)
            left join (
                select restaurant_id, count(*) as bills, max(time_to_pay_seconds) as longest
                from marts.current_open_bills group by 1
            ) b using (restaurant_id)
            where r.company_id = :c
            order by r.restaurant_id
            """
        ),
        {"c": company_id},
    ).mappings()
    return [
        RestaurantNow(
            **{
                **r,
                "oldest_order_seconds": _float(r["oldest_order_seconds"]),
                "longest_bill_wait_seconds": _float(r["longest_bill_wait_seconds"]),
            }
        )
        for r in rows
    ]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def freshness(conn: sa.Connection, actor: Actor) -> list[SignalLag]:
    """Each signal's lag (observability.signal_lags: the same figure as the
    partner_signals_signal_lag_seconds gauge)."""
    actor.require("viewer")
    driver = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    return signal_lags(driver)
