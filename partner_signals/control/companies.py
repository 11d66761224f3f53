"""Companies and their plan tier (the plan gates which partner adapters they may enable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from partner_signals.adapters import PLAN_ADAPTERS
from partner_signals.control import audit
from partner_signals.control.actor import Actor
from partner_signals.control.errors import Conflict, Invalid, NotFound

PLANS = tuple(PLAN_ADAPTERS)


@dataclass(frozen=True)
class Company:
    company_id: str
    name: str
    plan: str
    created_at: datetime
    restaurants: int
    integrations_enabled: int


_SELECT = """
    select c.company_id, c.name, c.plan, c.created_at,
           (select count(*) from ops.restaurants r where r.company_id = c.company_id)
               as restaurants,
           (select count(*) from ops.integrations i
             where i.company_id = c.company_id and i.enabled) as integrations_enabled
    from ops.companies c
"""


def list_companies(conn: sa.Connection, actor: Actor) -> list[Company]:
    actor.require("viewer")
    rows = conn.execute(
        sa.text(
            _SELECT + " where cast(:scope as text) is null or c.company_id = :scope "
            "order by c.company_id"
        ),
        {"scope": actor.company_id},
    ).all()
    return [Company(**r._asdict()) for r in rows]


def get_company(conn: sa.Connection, actor: Actor, company_id: str) -> Company:
    actor.require("viewer", company_id)
    row = conn.execute(
        sa.text(_SELECT + " where c.company_id = :c"), {"c": company_id}
    ).one_or_none()
    if row is None:
        raise NotFound(f"no company {company_id!r}")
    return Company(**row._asdict())


def set_plan(conn: sa.Connection, actor: Actor, company_id: str, plan: str) -> Company:
    """Change the plan. Refused while an enabled adapter is outside the new plan: the
    message names them, to disable first (nothing is switched off behind a partner's back)."""
    actor.require_unbound("admin")
    if plan not in PLANS:
        raise Invalid("plan", f"one of {', '.join(PLANS)}")
    before = get_company(conn, actor, company_id)
    if before.plan == plan:
        return before
    outside: list[str] = sorted(
        conn.execute(
            sa.text(
                "select distinct provider from ops.integrations "
                "where company_id = :c and enabled and provider = any(:adapters)"
            ),
            {
                "c": company_id,
                "adapters": [
                    a for a in PLAN_ADAPTERS["enterprise"] if a not in PLAN_ADAPTERS[plan]
                ],
            },
        ).scalars()
    )
    if outside:
        raise Conflict(
            f"the {plan} plan does not include {', '.join(outside)}, enabled for "
            f"{company_id}: disable them first"
        )
    conn.execute(
        sa.text("update ops.companies set plan = :p where company_id = :c"),
        {"p": plan, "c": company_id},
    )
    audit.record(
        conn,
        actor,
        action="companies.set_plan",
        target=f"company/{company_id}",
        company_id=company_id,
        before={"plan": before.plan},
        after={"plan": plan},
    )
    return get_company(conn, actor, company_id)
