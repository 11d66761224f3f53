"""Outbound partner adapters under operator control.

`push_backlog` is the one place that answers "what is waiting to be pushed, for whom":
the adapter status answer, the health summary (`GET /admin/v1/status`) and the console
read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa


@dataclass(frozen=True)
class Backlog:
    company_id: str
    adapter: str
    pending: int
    oldest_pending_at: datetime | None
    dead_letters_waiting: int


def push_backlog(conn: sa.Connection, company_id: str | None = None) -> list[Backlog]:
    """Pushes not delivered yet and dead letters not replayed, per company and adapter
    (only pairs with something waiting). Reads the outbox's partial indexes only."""
    rows = conn.execute(
        sa.text(
            """
            with pending as (
                select company_id, adapter, count(*) as n, min(created_at) as oldest
                from ops.outbox
                where status = 'pending' and (cast(:c as text) is null or company_id = :c)
                group by 1, 2
            ), dead as (
                select o.company_id, o.adapter, count(*) as n
                from ops.dead_letters d join ops.outbox o using (delivery_id)
                where d.replayed_at is null and o.status = 'dead'
                  and (cast(:c as text) is null or o.company_id = :c)
                group by 1, 2
            )
            select coalesce(p.company_id, d.company_id) as company_id,
                   coalesce(p.adapter, d.adapter) as adapter,
                   coalesce(p.n, 0) as pending, p.oldest as oldest_pending_at,
                   coalesce(d.n, 0) as dead_letters_waiting
            from pending p full join dead d using (company_id, adapter)
            order by 1, 2
            """
        ),
        {"c": company_id},
    ).mappings()
    return [Backlog(**r) for r in rows]
