"""Delivery platforms' orders (scope read:orders): each platform order with its POS link,
its canonical and platform status, and whether the platform has our latest status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import ERRORS, State, require
from api.state import Principal
from partner_signals.control.errors import Invalid
from partner_signals.control.platforms import decode_cursor, encode_cursor
from partner_signals.ids import ID_PATTERN
from partner_signals.problems import ProblemError, invalid

router = APIRouter(prefix="/v1/external-orders", tags=["orders"], responses=ERRORS)
Status = Literal[
    "received", "accepted", "rejected", "preparing", "ready", "picked_up", "delivered", "cancelled"
]
Platform = Literal["careem", "deliverect", "deliveroo", "jahez", "talabat"]
# Which columns a partner sees: not the platform's raw body (it carries the guest's details).
COLUMNS = (
    "platform, external_order_id, restaurant_id, pos_order_id, status, platform_status, "
    "received_at, updated_at, synced_at, synced_status"
)


class ExternalOrder(BaseModel):
    platform: str
    external_order_id: str
    restaurant_id: str | None
    pos_order_id: str | None = Field(description="The POS order, once the POS named it")
    status: Status
    platform_status: str | None = Field(description="The platform's own last word")
    received_at: datetime
    updated_at: datetime
    synced_at: datetime | None = Field(description="When the platform took our last status")
    synced_status: Status | None


class ExternalOrderPage(BaseModel):
    orders: list[ExternalOrder]
    next_cursor: str | None


def _scope(principal: Principal, restaurant_id: str | None) -> str | None:
    if principal.restaurant_id is not None:
        if restaurant_id not in (None, principal.restaurant_id):
            raise ProblemError(403, "foreign_restaurant", "this key is for another restaurant")
        return principal.restaurant_id
    return restaurant_id


def _sql(where: list[str]) -> str:
    return f"select {COLUMNS} from ops.external_orders o where {' and '.join(where)}"


@router.get("", response_model=ExternalOrderPage, summary="Platform orders, newest first")
async def list_orders(
    state: State,
    principal: Annotated[Principal, require("read:orders")],
    platform: Platform | None = None,
    status: Status | None = None,
    restaurant_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    since: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Follow next_cursor to the end of the list."""
    where = ["o.company_id = %(company)s"]
    params: dict[str, Any] = {"company": principal.company_id, "limit": limit + 1}
    restaurant = _scope(principal, restaurant_id)
    for column, value in (
        ("platform", platform),
        ("status", status),
        ("restaurant_id", restaurant),
    ):
        if value is not None:
            where.append(f"o.{column} = %({column})s")
            params[column] = value
    if since is not None:
        where.append("o.received_at >= %(since)s")
        params["since"] = since
    if cursor:
        try:
            params["at"], params["cp"], params["cx"] = decode_cursor(cursor)
        except Invalid:
            raise invalid("cursor", "not one this API issued", "invalid_cursor") from None
        where.append("(o.received_at, o.platform, o.external_order_id) < (%(at)s, %(cp)s, %(cx)s)")
    sql = _sql(where) + (
        " order by o.received_at desc, o.platform desc, o.external_order_id desc limit %(limit)s"
    )
    async with state.pool.connection() as conn:
        rows = await (await conn.execute(sql, params)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    following = (
        encode_cursor(last["received_at"], last["platform"], last["external_order_id"])
        if more and last
        else None
    )
    return {"orders": rows, "next_cursor": following}


@router.get("/{platform}/{external_order_id}", response_model=ExternalOrder)
async def show_order(
    state: State,
    principal: Annotated[Principal, require("read:orders")],
    platform: Platform,
    external_order_id: Annotated[str, Path(max_length=256)],
) -> dict[str, Any]:
    where = ["o.company_id = %(company)s", "o.platform = %(p)s", "o.external_order_id = %(x)s"]
    params: dict[str, Any] = {
        "company": principal.company_id,
        "p": platform,
        "x": external_order_id,
    }
    if principal.restaurant_id is not None:
        where.append("o.restaurant_id = %(r)s")
        params["r"] = principal.restaurant_id
    async with state.pool.connection() as conn:
        row = await (await conn.execute(_sql(where), params)).fetchone()
    if row is None:
        raise ProblemError(404, "not_found", f"no {platform} order {external_order_id[:64]!r}")
    result: dict[str, Any] = row
    return result
