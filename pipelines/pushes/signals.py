"""Which signal values are pushed to partners, and how a mart row becomes one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from partner_signals.adapters import ADAPTERS
from partner_signals.catalogue import signals as catalogue
from partner_signals.pushes.outbox import enqueue_signal


@dataclass(frozen=True)
class PushedSignal:
    """A signal adapters subscribe to: its mart, the column that keys one value, and
    the recent rows worth (re)checking each time."""

    name: str
    table: str
    key: tuple[str, ...]
    recent: str  # a SQL condition on the mart's columns


# The signal catalogue's pushed signals (each mart's yml says whether and which rows).
PUSHED_SIGNALS = tuple(
    PushedSignal(s.name, s.relation, s.key, s.push_recent)
    for s in catalogue.pushed()
    if s.push_recent is not None
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
        {"a": sorted(name for name, adapter in ADAPTERS.items() if adapter.signals)},
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
