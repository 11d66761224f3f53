"""Workforce and CRM signals of one restaurant: "now" from what has landed, history from marts."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, create_model

from api.deps import ERRORS, RestaurantId, State, require
from api.state import ApiState, Principal
from partner_signals.catalogue import signals as catalogue
from partner_signals.problems import invalid

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
            raise invalid("window", "give either window or from/to, not both", "invalid_span")
        match = WINDOW.match(window)
        if not match:
            raise invalid("window", "a number and a unit, e.g. 90m, 6h or 7d", "invalid_span")
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
        raise invalid("from", "from and to need a UTC offset", "invalid_span")
    if start >= end:
        raise invalid("from", "from must be before to", "invalid_span")
    if end - start > MAX_SPAN:
        raise invalid("to", "at most 92 days per request", "invalid_span")
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


def served_sql(signal: catalogue.Signal) -> str:
    """The query that reads one served signal of one restaurant over a span."""
    column = signal.span.column
    if signal.span.kind == "business_date":
        # A business day overlaps a request if any of its hours do, in any time zone.
        within = (
            f"{column} between (%(start)s at time zone 'UTC')::date - 1 "
            f"and (%(end)s at time zone 'UTC')::date"
        )
    else:
        within = f"{column} >= %(start)s and {column} < %(end)s"
    return (
        f"select * from {signal.relation} where restaurant_id = %(r)s and {within} "
        f"order by {', '.join(signal.order_by)}"
    )


def summary(signal: catalogue.Signal) -> str:
    """The first sentence of the signal's definition in its yml, and where it lives."""
    first = signal.description.split(". ")[0].rstrip(".")
    return f"{first}. Rows of {signal.relation}; definition in its dbt yml."


# Each route serves the signals the catalogue assigns to it, under the signal's name.
SERVED: dict[str, tuple[tuple[str, str], ...]] = {
    route: tuple((s.name, served_sql(s)) for s in catalogue.served(route))
    for route in catalogue.ROUTES
}


def signals_model(name: str, now_description: str, route: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "restaurant_id": (str, ...),
        "as_of": (datetime, ...),
        "span": (Span, ...),
        "now": (dict[str, Any], Field(description=now_description)),
    }
    for signal in catalogue.served(route):
        fields[signal.name] = (list[dict[str, Any]], Field(description=summary(signal)))
    model: type[BaseModel] = create_model(name, **fields)
    return model


WorkforceSignals = signals_model(
    "WorkforceSignals", "Order velocity, active orders and occupied tables at as_of", "workforce"
)
CrmSignals = signals_model(
    "CrmSignals",
    "At as_of, from every event landed so far: time-to-pay clocks running since their bill "
    "was requested, and tables seated",
    "crm",
)


async def served_signals(
    state: ApiState, route: str, params: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    return {name: await rows(state, sql, params) for name, sql in SERVED[route]}


@router.get("/workforce", response_model=WorkforceSignals, response_model_by_alias=True)
async def workforce(
    state: State,
    restaurant_id: RestaurantId,
    principal: Annotated[Principal, require(catalogue.route_scope("workforce"))],
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
        **await served_signals(state, "workforce", p),
    }


@router.get("/crm", response_model=CrmSignals, response_model_by_alias=True)
async def crm(
    state: State,
    restaurant_id: RestaurantId,
    principal: Annotated[Principal, require(catalogue.route_scope("crm"))],
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
        **await served_signals(state, "crm", p),
    }
