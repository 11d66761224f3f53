"""Workforce and CRM signals of one restaurant: "now" from what has landed, history from marts."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from api.deps import ERRORS, RestaurantId, State, require
from api.state import ApiState, Principal

router = APIRouter(
    prefix="/v1/restaurants/{restaurant_id}",
    tags=["signals"],
    responses={**ERRORS, 400: {"description": "from/to/window that do not make a span"}},
)

WINDOW = re.compile(r"^(\d{1,4})([mhd])$")
MAX_SPAN = timedelta(days=92)


class Span(BaseModel):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")

    model_config = {"populate_by_name": True}


def resolve_span(start: datetime | None, end: datetime | None, window: str | None) -> Span:
    now = datetime.now(UTC)
    if window is not None:
        if start is not None or end is not None:
            raise HTTPException(400, "give either window or from/to, not both")
        match = WINDOW.match(window)
        if not match:
            raise HTTPException(400, "window is a number and a unit, e.g. 90m, 6h or 7d")
        amount, unit = int(match[1]), match[2]
        span = (
            timedelta(minutes=amount)
            if unit == "m"
            else timedelta(hours=amount)
            if unit == "h"
            else timedelta(days=amount)
        )
        start, end = now - span, now
    end = end or now
    start = start or end - timedelta(hours=24)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(400, "from and to need a UTC offset")
    if start >= end:
        raise HTTPException(400, "from must be before to")
    if end - start > MAX_SPAN:
        raise HTTPException(400, "at most 92 days per request")
    return Span.model_validate({"from": start, "to": end})


FromQ = Annotated[datetime | None, Query(alias="from", description="ISO 8601 with offset")]
ToQ = Annotated[datetime | None, Query(alias="to", description="ISO 8601 with offset; default now")]
WindowQ = Annotated[
    str | None, Query(max_length=8, description="Instead of from/to: the last 90m, 6h, 7d...")
]


async def rendered(signals: Awaitable[dict[str, Any]]) -> bytes:
    """The answer serialised once (orjson, in C), so a shared snapshot costs each reader
    nothing but sending it and a refresh holds the event loop as briefly as possible.
    The route's response_model documents the shape; the fuzz tests check answers
    against it."""
    answer = await signals
    answer["span"] = answer["span"].model_dump(by_alias=True)
    return orjson.dumps(answer)


async def rows(state: State, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with state.pool.connection() as conn:
        result: list[dict[str, Any]] = await (await conn.execute(sql, params)).fetchall()
        return result


class WorkforceSignals(BaseModel):
    restaurant_id: str
    as_of: datetime
    span: Span
    now: dict[str, Any] = Field(
        description="Order velocity, active orders and occupied tables at as_of"
    )
    velocity: list[dict[str, Any]] = Field(
        description="Orders, covers and net sales per 15-minute interval"
    )
    prep_times: list[dict[str, Any]] = Field(description="Fired to ready per item and business day")
    occupancy: list[dict[str, Any]] = Field(description="Seated to cleared per visit")


class CrmSignals(BaseModel):
    restaurant_id: str
    as_of: datetime
    span: Span
    now: dict[str, Any] = Field(
        description="At as_of, from every event landed so far: time-to-pay clocks running "
        "since their bill was requested, and tables seated"
    )
    pacing: list[dict[str, Any]] = Field(
        description="Seated to first order, rounds, spend per visit"
    )
    time_to_pay: list[dict[str, Any]] = Field(description="Bill requested to paid per bill")


@router.get("/workforce", response_model=WorkforceSignals, response_model_by_alias=True)
async def workforce(
    state: State,
    restaurant_id: RestaurantId,
    principal: Annotated[Principal, require("read:workforce")],
    start: FromQ = None,
    end: ToQ = None,
    window: WindowQ = None,
) -> Response:
    """Order velocity, prep times by item and table occupancy. Computed at most once a
    second per restaurant and span (`PARTNER_SIGNALS_API_SNAPSHOT_SECONDS`); `as_of`
    says when."""
    span = resolve_span(start, end, window)
    key = ("workforce", restaurant_id, window, start, end)
    body = await state.snapshot(
        key, lambda: rendered(workforce_signals(state, restaurant_id, span))
    )
    return Response(body, media_type="application/json")


async def workforce_signals(state: ApiState, restaurant_id: str, span: Span) -> dict[str, Any]:
    p = {"r": restaurant_id, "start": span.start, "end": span.end}
    # "Now" reads live views: what has landed, materialized or not.
    velocity_now = await rows(
        state, "select * from marts.current_order_velocity where restaurant_id = %(r)s", p
    )
    occupied = await rows(
        state,
        "select * from marts.current_occupied_tables where restaurant_id = %(r)s order by seated_at",
        p,
    )
    active = await rows(
        state,
        "select * from marts.current_active_orders where restaurant_id = %(r)s order by opened_at",
        p,
    )
    return {
        "restaurant_id": restaurant_id,
        "as_of": datetime.now(UTC),
        "span": span,
        "now": {
            "velocity": velocity_now[0] if velocity_now else None,
            "occupied_tables": occupied,
            "active_orders": active,
        },
        "velocity": await rows(
            state,
            "select * from marts.fct_order_velocity where restaurant_id = %(r)s "
            "and interval_start >= %(start)s and interval_start < %(end)s order by interval_start",
            p,
        ),
        "prep_times": await rows(
            state,
            "select * from marts.fct_item_prep_times where restaurant_id = %(r)s and business_date "
            "between (%(start)s at time zone 'UTC')::date - 1 and (%(end)s at time zone 'UTC')::date "
            "order by business_date, item_id",
            p,
        ),
        "occupancy": await rows(
            state,
            "select * from marts.fct_table_occupancy where restaurant_id = %(r)s "
            "and seated_at >= %(start)s and seated_at < %(end)s order by seated_at",
            p,
        ),
    }


@router.get("/crm", response_model=CrmSignals, response_model_by_alias=True)
async def crm(
    state: State,
    restaurant_id: RestaurantId,
    principal: Annotated[Principal, require("read:crm")],
    start: FromQ = None,
    end: ToQ = None,
    window: WindowQ = None,
) -> Response:
    """In-meal pacing and time-to-pay, with the clocks still running. Computed at most
    once a second per restaurant and span, like /workforce."""
    span = resolve_span(start, end, window)
    key = ("crm", restaurant_id, window, start, end)
    body = await state.snapshot(key, lambda: rendered(crm_signals(state, restaurant_id, span)))
    return Response(body, media_type="application/json")


async def crm_signals(state: ApiState, restaurant_id: str, span: Span) -> dict[str, Any]:
    p = {"r": restaurant_id, "start": span.start, "end": span.end}
    return {
        "restaurant_id": restaurant_id,
        "as_of": datetime.now(UTC),
        "span": span,
        "now": {
            "open_bills": await rows(
                state,
                "select * from marts.current_open_bills where restaurant_id = %(r)s "
                "order by bill_requested_at",
                p,
            ),
            "occupied_tables": await rows(
                state,
                "select * from marts.current_occupied_tables where restaurant_id = %(r)s "
                "order by seated_at",
                p,
            ),
        },
        "pacing": await rows(
            state,
            "select * from marts.fct_order_pacing where restaurant_id = %(r)s "
            "and seated_at >= %(start)s and seated_at < %(end)s order by seated_at",
            p,
        ),
        "time_to_pay": await rows(
            state,
            "select * from marts.fct_time_to_pay where restaurant_id = %(r)s "
            "and bill_requested_at >= %(start)s and bill_requested_at < %(end)s "
            "order by bill_requested_at",
            p,
        ),
    }
