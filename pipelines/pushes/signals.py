"""Which signal values are pushed to partners, and how a mart row becomes one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from partner_signals.pushes.outbox import enqueue_signal


@dataclass(frozen=True)
class PushedSignal:
    """A signal adapters subscribe to: its mart, the column that keys one value, and
    the recent rows worth (re)checking each time."""

    name: str
    table: str
    key: tuple[str, ...]
    recent: str  # a SQL condition on the mart's columns


PUSHED_SIGNALS = (
    PushedSignal(
        "order_velocity",
        "marts.fct_order_velocity",
        ("interval_start",),
        "interval_start > now() - interval '2 days' and orders > 0",
    ),
    PushedSignal(
        "prep_time",
        "marts.fct_item_prep_times",
        ("item_id", "business_date"),
        "business_date >= current_date - 2",
    ),
    PushedSignal(
        "table_occupancy",
        "marts.fct_table_occupancy",
        ("visit_id",),
        "seated_at > now() - interval '2 days' and cleared_at is not null",
    ),
    PushedSignal(
        "order_pacing",
        "marts.fct_order_pacing",
        ("visit_id",),
        "seated_at > now() - interval '2 days' and cleared_at is not null",
    ),
    PushedSignal(
        "time_to_pay",
        "marts.fct_time_to_pay",
        ("order_id",),
        "bill_requested_at > now() - interval '2 days' and status = 'paid'",
    ),
)


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def signal_value(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in row.items() if k not in ("company_id",)}


def enqueue_signal_changes(conn: sa.Connection) -> int:
    """Compare recent signal values with what each partner was last sent; enqueue new
    values and versioned corrections. Unchanged values send nothing."""
    subscribed = conn.execute(
        sa.text(
            "select exists (select 1 from ops.integrations where enabled and provider = any(:a))"
        ),
        {"a": ["workforce", "crm", "webhook"]},
    ).scalar()
    if not subscribed:
        return 0
    enqueued = 0
    for signal in PUSHED_SIGNALS:
        if conn.execute(sa.text("select to_regclass(:t)"), {"t": signal.table}).scalar() is None:
            continue
        rows = conn.execute(sa.text(f"select * from {signal.table} where {signal.recent}"))
        for row in rows.mappings():
            enqueued += enqueue_signal(
                conn,
                company_id=str(row["company_id"]),
                restaurant_id=str(row["restaurant_id"]),
                signal=signal.name,
                key="/".join(str(jsonable(row[k])) for k in signal.key),
                value=signal_value(dict(row)),
            )
    return enqueued
