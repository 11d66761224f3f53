"""The existence checks every control service starts with: a company, and a restaurant of
that company. Unknown ids are NotFound (404) with the same words everywhere."""

from __future__ import annotations

import sqlalchemy as sa

from partner_signals.control.errors import NotFound


def require_company(conn: sa.Connection, company_id: str) -> None:
    if not conn.execute(
        sa.text("select 1 from ops.companies where company_id = :c"), {"c": company_id}
    ).scalar():
        raise NotFound(f"no company {company_id!r}")


def require_restaurant(conn: sa.Connection, company_id: str, restaurant_id: str) -> None:
    owner = conn.execute(
        sa.text("select company_id from ops.restaurants where restaurant_id = :r"),
        {"r": restaurant_id},
    ).scalar()
    if owner != company_id:
        raise NotFound(f"no restaurant {restaurant_id[:64]!r} in company {company_id!r}")
