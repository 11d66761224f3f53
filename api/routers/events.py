"""The canonical partner event stream, cursor-paginated, and its JSON Schema."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ERRORS, State, require
from api.state import Principal
from partner_signals.events import CanonicalEvent, CanonicalType, canonical_event_schema
from partner_signals.ids import ID_PATTERN
from partner_signals.problems import ProblemError, invalid

router = APIRouter(prefix="/v1", tags=["events"])


class EventPage(BaseModel):
    events: list[CanonicalEvent]
    next_cursor: str | None
    has_more: bool


def encode_cursor(loaded_at: datetime, event_id: str) -> str:
    raw = orjson.dumps([loaded_at.isoformat(), event_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        loaded_at, event_id = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        return datetime.fromisoformat(loaded_at), str(event_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise invalid("cursor", "not one this API issued", "invalid_cursor") from exc


@router.get(
    "/events",
    response_model=EventPage,
    summary="Canonical events, oldest first",
    responses={
        **ERRORS,
        200: {
            # An OpenAPI link: clients and schemathesis's stateful tests follow the pages.
            "links": {
                "next_page": {
                    "operationRef": "#/paths/~1v1~1events/get",
                    "description": "The next page: the same query from next_cursor",
                    "parameters": {
                        "cursor": "$response.body#/next_cursor",
                        "restaurant_id": "$request.query.restaurant_id",
                        "type": "$request.query.type",
                        "limit": "$request.query.limit",
                    },
                }
            }
        },
        400: {"description": "A cursor this API did not issue"},
    },
)
async def list_events(
    state: State,
    principal: Annotated[Principal, require("read:events")],
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    type: Annotated[list[CanonicalType] | None, Query(description="Only these types")] = None,
    restaurant_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Events in the order they became available. Follow next_cursor to the end; a
    cursor stays valid, and polling it later returns only what arrived since."""
    if principal.restaurant_id is not None:
        if restaurant_id not in (None, principal.restaurant_id):
            raise ProblemError(403, "foreign_restaurant", "this key is for another restaurant")
        restaurant_id = principal.restaurant_id
    clauses = ["company_id = %(company)s"]
    params: dict[str, Any] = {"company": principal.company_id, "limit": limit + 1}
    if restaurant_id is not None:
        clauses.append("restaurant_id = %(restaurant)s")
        params["restaurant"] = restaurant_id
    if type:
        clauses.append("type = any(%(types)s)")
        params["types"] = list(type)
    if cursor:
        params["after_at"], params["after_id"] = decode_cursor(cursor)
        clauses.append("(loaded_at, id::text) > (%(after_at)s, %(after_id)s)")
    sql = (
        "select id::text as id, type, schema_version, occurred_at, received_at, source, "
        "company_id, restaurant_id, order_id, data, loaded_at from canonical.canonical_events "
        f"where {' and '.join(clauses)} order by loaded_at, id::text limit %(limit)s"
    )
    async with state.pool.connection() as conn:
        rows = await (await conn.execute(sql, params)).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["loaded_at"], rows[-1]["id"]) if rows else cursor
    for row in rows:
        del row["loaded_at"]
    return {"events": rows, "next_cursor": next_cursor, "has_more": has_more}


@router.get("/schema/events", summary="JSON Schema of the canonical event envelope")
async def event_schema() -> dict[str, Any]:
    return canonical_event_schema()
