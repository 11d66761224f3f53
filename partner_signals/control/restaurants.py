"""Restaurants of a company: list, add, rename, and change the time zone while nothing
has landed for them yet.

A restaurant's time zone places its events in its local service day (15-minute buckets,
exports per day); once POS events have landed in raw.order_events, changing it would
silently move past days, so it is refused with the reason (add a new restaurant instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from partner_signals.control import audit
from partner_signals.control.actor import Actor
from partner_signals.control.errors import Conflict, Invalid, NotFound
from partner_signals.control.lookups import require_company
from partner_signals.ids import ID_PATTERN, is_id

NAME_MAX = 200


@dataclass(frozen=True)
class Restaurant:
    restaurant_id: str
    company_id: str
    name: str
    timezone: str
    created_at: datetime
    has_events: bool


_SELECT = """
    select r.restaurant_id, r.company_id, r.name, r.timezone, r.created_at,
           exists (select 1 from raw.order_events e where e.restaurant_id = r.restaurant_id)
               as has_events
    from ops.restaurants r
"""


def check_timezone(timezone: str) -> str:
    """`timezone` when it is an IANA zone name, else Invalid naming the field."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("timezone", f"{timezone[:64]!r} is not an IANA time zone") from None
    return timezone


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise Invalid("name", f"1 to {NAME_MAX} characters")
    return name


def list_restaurants(conn: sa.Connection, actor: Actor, company_id: str) -> list[Restaurant]:
    actor.require("viewer", company_id)
    require_company(conn, company_id)
    rows = conn.execute(
        sa.text(_SELECT + " where r.company_id = :c order by r.restaurant_id"), {"c": company_id}
    ).all()
    return [Restaurant(**r._asdict()) for r in rows]


def get_restaurant(
    conn: sa.Connection, actor: Actor, company_id: str, restaurant_id: str
) -> Restaurant:
    actor.require("viewer", company_id)
    row = conn.execute(
        sa.text(_SELECT + " where r.company_id = :c and r.restaurant_id = :r"),
        {"c": company_id, "r": restaurant_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no restaurant {restaurant_id!r} in company {company_id!r}")
    return Restaurant(**row._asdict())


def add_restaurant(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    *,
    restaurant_id: str,
    timezone: str,
    name: str | None = None,
) -> tuple[Restaurant, bool]:
    """Add a restaurant to an existing company: (the restaurant, True when it is new).
    Adding the same restaurant again with the same name and zone is a no-op; with another
    name or zone, or under another company, it is a Conflict."""
    actor.require("operator", company_id)
    if not is_id(restaurant_id):
        raise Invalid("restaurant_id", f"must match {ID_PATTERN}")
    check_timezone(timezone)
    name = _check_name(name if name is not None else restaurant_id)
    require_company(conn, company_id)
    existing = conn.execute(
        sa.text("select company_id, name, timezone from ops.restaurants where restaurant_id = :r"),
        {"r": restaurant_id},
    ).one_or_none()
    if existing is not None:
        if existing.company_id != company_id:
            raise Conflict(f"restaurant id {restaurant_id!r} is taken by another company")
        if (existing.name, existing.timezone) != (name, timezone):
            raise Conflict(
                f"restaurant {restaurant_id!r} exists (name {existing.name!r}, time zone "
                f"{existing.timezone}); change it with update"
            )
        return get_restaurant(conn, actor, company_id, restaurant_id), False
    conn.execute(
        sa.text(
            "insert into ops.restaurants (restaurant_id, company_id, name, timezone) "
            "values (:r, :c, :n, :tz)"
        ),
        {"r": restaurant_id, "c": company_id, "n": name, "tz": timezone},
    )
    audit.record(
        conn,
        actor,
        action="restaurants.add",
        target=f"company/{company_id}/restaurant/{restaurant_id}",
        company_id=company_id,
        after={"name": name, "timezone": timezone},
    )
    return get_restaurant(conn, actor, company_id, restaurant_id), True


def update_restaurant(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    restaurant_id: str,
    *,
    name: str | None = None,
    timezone: str | None = None,
) -> Restaurant:
    """Rename, or move to another time zone while no POS event has landed for it (after
    that, its past service days would move: Conflict saying so)."""
    actor.require("operator", company_id)
    if name is not None:
        name = _check_name(name)
    if timezone is not None:
        check_timezone(timezone)
    before = get_restaurant(conn, actor, company_id, restaurant_id)
    # Lock the row so a concurrent update cannot slip past the events check.
    conn.execute(
        sa.text("select 1 from ops.restaurants where restaurant_id = :r for update"),
        {"r": restaurant_id},
    )
    changes: dict[str, str] = {}
    if name is not None and name != before.name:
        changes["name"] = name
    if timezone is not None and timezone != before.timezone:
        if before.has_events:
            raise Conflict(
                f"restaurant {restaurant_id!r} already has events in raw.order_events: its "
                f"time zone ({before.timezone}) places them in their service days, and "
                "changing it would move past days and signals; add a new restaurant for the "
                "new zone instead"
            )
        changes["timezone"] = timezone
    if not changes:
        return before
    conn.execute(
        sa.text(
            "update ops.restaurants set name = coalesce(:n, name), "
            "timezone = coalesce(:tz, timezone) where restaurant_id = :r"
        ),
        {"n": changes.get("name"), "tz": changes.get("timezone"), "r": restaurant_id},
    )
    audit.record(
        conn,
        actor,
        action="restaurants.update",
        target=f"company/{company_id}/restaurant/{restaurant_id}",
        company_id=company_id,
        before={k: getattr(before, k) for k in changes},
        after=changes,
    )
    return get_restaurant(conn, actor, company_id, restaurant_id)
