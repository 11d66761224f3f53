"""Landed events that map to nothing: marts.unmapped_events as rows the CLI, the Dagster
check and the metrics read the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

# The dbt model (dbt_project/models/marts/ops/unmapped_events.sql) and its schema.
UNMAPPED_EVENTS_RELATION = "marts.unmapped_events"
# The reason of an event quarantined for naming a restaurant that is not its company's
# (dbt_project/macros/unmapped.sql, staged_events).
FOREIGN_RESTAURANT = "foreign_restaurant"


@dataclass(frozen=True)
class UnmappedName:
    """One company's events of one source and provider event name that map to nothing."""

    company_id: str
    source: str
    provider_event_type: str
    reason: str
    events: int
    first_received_at: datetime
    last_received_at: datetime
    raw_table: str
    sample_raw_id: int
    provider_statuses: tuple[str, ...] = ()


def read_unmapped(
    conn: sa.Connection, *, company_id: str | None = None
) -> list[UnmappedName] | None:
    """Every row of marts.unmapped_events (most events first), or None when the model has
    not been built yet (nothing materialized on this database)."""
    exists: bool = conn.execute(
        sa.text("select to_regclass(:relation) is not null"),
        {"relation": UNMAPPED_EVENTS_RELATION},
    ).scalar_one()
    if not exists:
        return None
    rows = conn.execute(
        sa.text(
            f"""
            select company_id, source, provider_event_type, reason, events,
                first_received_at, last_received_at, raw_table, sample_raw_id,
                coalesce(provider_statuses, '{{}}') as provider_statuses
            from {UNMAPPED_EVENTS_RELATION}
            where cast(:company_id as text) is null or company_id = :company_id
            order by events desc, company_id, source, provider_event_type
            """  # a constant relation name, no input
        ),
        {"company_id": company_id},
    ).mappings()
    return [
        UnmappedName(
            company_id=r["company_id"],
            source=r["source"],
            provider_event_type=r["provider_event_type"],
            reason=r["reason"],
            events=int(r["events"]),
            first_received_at=r["first_received_at"],
            last_received_at=r["last_received_at"],
            raw_table=r["raw_table"],
            sample_raw_id=int(r["sample_raw_id"]),
            provider_statuses=tuple(r["provider_statuses"]),
        )
        for r in rows
    ]


def describe(name: UnmappedName) -> str:
    """`careem order.refunded: 3 events (unknown_event), latest raw webhook_events id 42`."""
    words = f" with status {', '.join(name.provider_statuses)}" if name.provider_statuses else ""
    return (
        f"{name.source} {name.provider_event_type!r}{words}: {name.events} events "
        f"({name.reason}) for {name.company_id}, latest raw.{name.raw_table} id "
        f"{name.sample_raw_id}"
    )
