"""Workforce and CRM signals of one restaurant: "now" from what has landed, history from marts."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, create_model

from api.deps import ERRORS, RestaurantId, State, require
from api.representation import Rendered, render, respond
from api.state import ApiState, Principal
from partner_signals.catalogue import signals as catalogue
from partner_signals.problems import invalid

router = APIRouter(
    prefix="/v1/restaurants/{restaurant_id}",
    tags=["signals"],
    responses={
        **ERRORS,
        304: {"description": "If-None-Match holds the current tag: no body, the ETag again"},
        400: {"description": "from/to/window that do not make a span"},
    },
)


def answered(route: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a signals route: its headers, and an OpenAPI link to its next page."""
    return {
        200: {
            "description": "The signals. `ETag` is a weak tag over the data (not `as_of`, "
            "`span` or running clocks): send it back in `If-None-Match` for a 304 while "
            "nothing changed. gzip when asked (`Accept-Encoding`) for answers of 4 KiB or more.",
            "links": {
                "next_page": {
                    "operationRef": f"#/paths/~1v1~1restaurants~1{{restaurant_id}}~1{route}/get",
                    "description": "The rest of each signal: the same route with next_cursor",
                    "parameters": {
                        "restaurant_id": "$request.path.restaurant_id",
                        "cursor": "$response.body#/next_cursor",
                        "limit": "$request.query.limit",
                    },
                }
            },
        }
    }


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
# A page holds at most `limit` rows of each served signal. The default is above what a
# day of a busy restaurant holds (96 velocity intervals, a few hundred visits), so the
# default 24 h answer is one page; a 92-day span is walked with next_cursor.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000
LimitQ = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_LIMIT,
        description="At most this many rows of each signal; next_cursor continues the rest",
    ),
]
CursorQ = Annotated[
    str | None,
    Query(
        max_length=2000,
        description="next_cursor of the previous answer: the rows after it, over the span "
        "it was issued for (from/to/window are then not read)",
    ),
]


async def rendered(signals: Awaitable[dict[str, Any]]) -> Rendered:
    """The answer serialised, tagged and gzipped once (orjson, in C; zlib), so a shared
    snapshot costs each reader nothing but picking and sending it, and a refresh holds
    the event loop as briefly as possible. The route's response_model documents the
    shape; the fuzz tests check answers against it."""
    answer = await signals
    answer["span"] = answer["span"].model_dump(by_alias=True)
    return render(answer)


async def rows(state: State, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with state.pool.connection() as conn:
        result: list[dict[str, Any]] = await (await conn.execute(sql, params)).fetchall()
        return result


def page_order(signal: catalogue.Signal) -> tuple[str, ...]:
    """The signal's order, then its key: a total order, so a page ends at one row."""
    return (*signal.order_by, *(k for k in signal.key if k not in signal.order_by))


def served_sql(signal: catalogue.Signal, *, after: bool = False) -> str:
    """The query that reads one page of one served signal of one restaurant over a span:
    from the first row, or `after` the row whose page_order values are %(k0)s, %(k1)s..."""
    order = page_order(signal)
    column = signal.span.column
    if signal.span.kind == "business_date":
        # A business day overlaps a request if any of its hours do, in any time zone.
        within = (
            f"{column} between (%(start)s at time zone 'UTC')::date - 1 "
            f"and (%(end)s at time zone 'UTC')::date"
        )
    else:
        within = f"{column} >= %(start)s and {column} < %(end)s"
    if after:
        keys = ", ".join(f"%(k{i})s" for i in range(len(order)))
        within += f" and ({', '.join(order)}) > ({keys})"
    return (
        f"select * from {signal.relation} where restaurant_id = %(r)s and {within} "
        f"order by {', '.join(order)} limit %(limit)s"
    )


def summary(signal: catalogue.Signal) -> str:
    """The first sentence of the signal's definition in its yml, and where it lives."""
    first = signal.description.split(". ")[0].rstrip(".")
    return f"{first}. Rows of {signal.relation}; definition in its dbt yml."


@dataclass(frozen=True)
class Served:
    name: str
    order: tuple[str, ...]
    first: str  # the first page's query
    after: str  # a following page's


# Each route serves the signals the catalogue assigns to it, under the signal's name.
SERVED: dict[str, tuple[Served, ...]] = {
    route: tuple(
        Served(s.name, page_order(s), served_sql(s), served_sql(s, after=True))
        for s in catalogue.served(route)
    )
    for route in catalogue.ROUTES
}

# Where each served signal's next page starts: after these page_order values, or None
# when the signal has no more rows.
Positions = dict[str, list[Any] | None]


def encode_cursor(route: str, restaurant_id: str, span: Span, after: Positions) -> str:
    raw = orjson.dumps(
        {"route": route, "r": restaurant_id, "from": span.start, "to": span.end, "after": after}
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, route: str, restaurant_id: str) -> tuple[Span, Positions]:
    """The span and positions of a cursor this route issued for this restaurant; 422
    invalid_cursor for anything else."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["route"] != route or data["r"] != restaurant_id:
            raise ValueError("another route's or restaurant's cursor")
        span = Span.model_validate({"from": data["from"], "to": data["to"]})
        after: Positions = {}
        for served in SERVED[route]:
            position = data["after"][served.name]
            if position is not None and (
                not isinstance(position, list)
                or len(position) != len(served.order)
                or not all(isinstance(v, str | int | float) for v in position)
            ):
                raise ValueError("not a position")
            after[served.name] = position
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise invalid("cursor", "not one this API issued", "invalid_cursor") from exc
    if span.start.tzinfo is None or span.end.tzinfo is None:
        raise invalid("cursor", "not one this API issued", "invalid_cursor")
    return span, after


def signals_model(name: str, now_description: str, route: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "restaurant_id": (str, ...),
        "as_of": (datetime, ...),
        "span": (Span, ...),
        "now": (dict[str, Any], Field(description=now_description)),
    }
    for signal in catalogue.served(route):
        fields[signal.name] = (list[dict[str, Any]], Field(description=summary(signal)))
    fields["next_cursor"] = (
        str | None,
        Field(
            description="Set when a signal has more rows than `limit`: pass it as `cursor` "
            "for the next page (signals already complete come back empty there)"
        ),
    )
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


@dataclass(frozen=True)
class Page:
    """Which page of a route's signals to read: the span, rows per signal, and where each
    signal resumes (None: every signal from its first row)."""

    span: Span
    limit: int
    after: Positions | None


def page_of(
    route: str,
    restaurant_id: str,
    start: datetime | None,
    end: datetime | None,
    window: str | None,
    limit: int,
    cursor: str | None,
) -> Page:
    if cursor:
        span, after = decode_cursor(cursor, route, restaurant_id)
        return Page(span, limit, after)
    return Page(resolve_span(start, end, window), limit, None)


async def served_signals(
    state: ApiState, route: str, restaurant_id: str, page: Page, params: dict[str, Any]
) -> dict[str, Any]:
    """Each served signal's rows on this page, and next_cursor when any has more."""
    answer: dict[str, Any] = {}
    following: Positions = {}
    for served in SERVED[route]:
        position = [] if page.after is None else page.after[served.name]
        if position is None:
            answer[served.name], following[served.name] = [], None
            continue
        p = {**params, "limit": page.limit + 1}
        p.update((f"k{i}", value) for i, value in enumerate(position))
        found = await rows(state, served.after if position else served.first, p)
        if len(found) > page.limit:
            del found[page.limit :]
            following[served.name] = [found[-1][c] for c in served.order]
        else:
            following[served.name] = None
        answer[served.name] = found
    more = any(v is not None for v in following.values())
    answer["next_cursor"] = (
        encode_cursor(route, restaurant_id, page.span, following) if more else None
    )
    return answer


@router.get(
    "/workforce",
    response_model=WorkforceSignals,
    response_model_by_alias=True,
    responses=answered("workforce"),
)
async def workforce(
    state: State,
    restaurant_id: RestaurantId,
    principal: Annotated[Principal, require(catalogue.route_scope("workforce"))],
    request: Request,
    start: FromQ = None,
    end: ToQ = None,
    window: WindowQ = None,
    limit: LimitQ = DEFAULT_LIMIT,
    cursor: CursorQ = None,
) -> Response:
    """Order velocity, prep times by item and table occupancy. Computed at most once a
    second per restaurant and span (`PARTNER_SIGNALS_API_SNAPSHOT_SECONDS`); `as_of`
    says when. Conditional (ETag / If-None-Match) and gzip-able; at most `limit` rows
    of each signal, the rest through next_cursor."""
    page = page_of("workforce", restaurant_id, start, end, window, limit, cursor)
    key = ("workforce", restaurant_id, window, start, end, limit, cursor)
    answer = await state.snapshot(
        key, lambda: rendered(workforce_signals(state, restaurant_id, page))
    )
    return respond(request.headers, answer)


async def workforce_signals(state: ApiState, restaurant_id: str, page: Page) -> dict[str, Any]:
    span = page.span
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
        **await served_signals(state, "workforce", restaurant_id, page, p),
    }


@router.get(
    "/crm", response_model=CrmSignals, response_model_by_alias=True, responses=answered("crm")
)
async def crm(
    state: State,
    restaurant_id: RestaurantId,
    principal: Annotated[Principal, require(catalogue.route_scope("crm"))],
    request: Request,
    start: FromQ = None,
    end: ToQ = None,
    window: WindowQ = None,
    limit: LimitQ = DEFAULT_LIMIT,
    cursor: CursorQ = None,
) -> Response:
    """In-meal pacing and time-to-pay, with the clocks still running. Computed at most
    once a second per restaurant and span, conditional, gzip-able and paged like
    /workforce."""
    page = page_of("crm", restaurant_id, start, end, window, limit, cursor)
    key = ("crm", restaurant_id, window, start, end, limit, cursor)
    answer = await state.snapshot(key, lambda: rendered(crm_signals(state, restaurant_id, page)))
    return respond(request.headers, answer)


async def crm_signals(state: ApiState, restaurant_id: str, page: Page) -> dict[str, Any]:
    span = page.span
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
        **await served_signals(state, "crm", restaurant_id, page, p),
    }
