"""Operator views of deliveries: re-queue dead letters, count outcomes per adapter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from partner_signals.control.actor import Actor
from partner_signals.registry import audit

FILTERS = """
    d.replayed_at is null and o.status = 'dead'
    and (cast(:adapter as text) is null or o.adapter = :adapter)
    and (cast(:company as text) is null or o.company_id = :company)
    and (cast(:restaurant as text) is null or o.restaurant_id = :restaurant)
    and (cast(:event_type as text) is null or o.event_type = :event_type)
    and (cast(:ids as bigint[]) is null or d.dead_letter_id = any(cast(:ids as bigint[])))
    and (cast(:fault as text) is null or d.fault = :fault)
    and (cast(:since as timestamptz) is null or d.at >= :since)
    and (cast(:until as timestamptz) is null or d.at < :until)
"""


@dataclass(frozen=True)
class ReplayResult:
    requeued: int
    # Dead letters of disabled integrations stay put: re-enable first, then replay.
    skipped_disabled: int


def replay_dead_letters(
    conn: sa.Connection,
    *,
    adapter: str | None = None,
    company_id: str | None = None,
    restaurant_id: str | None = None,
    fault: Literal["partner", "ours", "credentials"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    ids: list[int] | None = None,
    event_type: str | None = None,
    actor: Actor | None = None,
    action: str = "deliveries.replay",
) -> ReplayResult:
    """Put matching dead letters back in the outbox with a fresh retry schedule. The
    window is on when the delivery was dead-lettered; `ids` picks dead letters by
    dead_letter_id. Same idempotency key, so a partner that did get an earlier try can
    tell it is a repeat. Audited as `action` by `actor` (the command line when None),
    with the filters and the count."""
    params: dict[str, Any] = {
        "adapter": adapter,
        "company": company_id,
        "restaurant": restaurant_id,
        "fault": fault,
        "since": since,
        "until": until,
        "now": now,
        "event_type": event_type,
        "ids": ids,
    }
    requeued: int = conn.execute(
        sa.text(
            f"""
            with picked as (
                select d.dead_letter_id, d.delivery_id
                from ops.dead_letters d
                join ops.outbox o on o.delivery_id = d.delivery_id
                join ops.integrations i on i.integration_id = o.integration_id
                where {FILTERS} and i.enabled
                for update of d, o
            ),
            marked as (
                update ops.dead_letters d set replayed_at = now()
                from picked where d.dead_letter_id = picked.dead_letter_id
            ),
            requeued as (
                update ops.outbox o set status = 'pending', attempts = 0,
                    next_attempt_at = coalesce(cast(:now as timestamptz), now()),
                    last_error = null, claimed_by = null, updated_at = now()
                from (select distinct delivery_id from picked) p
                where o.delivery_id = p.delivery_id
                returning 1
            )
            select count(*) from requeued
            """
        ),
        params,
    ).scalar_one()
    skipped: int = conn.execute(
        sa.text(
            f"""
            select count(*) from ops.dead_letters d
            join ops.outbox o on o.delivery_id = d.delivery_id
            join ops.integrations i on i.integration_id = o.integration_id
            where {FILTERS} and not i.enabled
            """
        ),
        params,
    ).scalar_one()
    if requeued:
        audit(
            conn,
            action=action,
            company_id=company_id,
            details={k: (v if k == "ids" or v is None else str(v)) for k, v in params.items()}
            | {"requeued": requeued},
            actor=actor,
        )
    return ReplayResult(int(requeued), int(skipped))


def adapter_counts(conn: sa.Connection) -> list[dict[str, Any]]:
    """Attempts per adapter (delivered, failed and why) plus what is waiting and dead now;
    the same numbers the metrics and the Dagster UI show."""
    rows = conn.execute(
        sa.text(
            """
            with queue as (
                select adapter,
                    count(*) filter (where status = 'pending') as pending,
                    count(*) filter (where status = 'dead') as dead
                from ops.outbox group by adapter
            )
            select coalesce(c.adapter, q.adapter) as adapter,
                coalesce(c.delivered, 0) as delivered, coalesce(c.failed, 0) as failed,
                coalesce(c.retried, 0) as retried, coalesce(c.deferred, 0) as deferred,
                coalesce(c.rejected, 0) as rejected,
                coalesce(q.pending, 0) as pending, coalesce(q.dead, 0) as dead,
                c.last_delivered_at, c.last_failed_at
            from ops.adapter_delivery_counts c
            full join queue q on q.adapter = c.adapter
            order by 1
            """
        )
    ).mappings()
    return [dict(r) for r in rows]
