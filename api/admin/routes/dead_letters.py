"""Admin routes: pushes that gave up, and their replay."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import dead_letters

router = APIRouter(tags=["dead letters"])
PREFIX = "/companies/{company_id}/dead-letters"


class DeadLetterOut(BaseModel):
    dead_letter_id: int
    delivery_id: int
    company_id: str
    restaurant_id: str | None
    adapter: str
    event_type: str
    event_id: str
    idempotency_key: str
    fault: str = Field(
        description="partner (their 4xx, gone, down), ours, or credentials (a delivery "
        "platform refused the stored credentials: fix them, then replay)"
    )
    reason: str
    at: datetime = Field(description="When it was dead-lettered")
    replayed_at: datetime | None
    attempts: int
    last_response_code: int | None
    last_error: str | None
    payload: dict[str, Any] = Field(description="What was to be sent; credentials redacted")


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class ReplayIn(BaseModel):
    """Dead letters by id, or every waiting one matching the filters, or `all`."""

    ids: list[int] | None = Field(None, max_length=dead_letters.REPLAY_IDS_MAX)
    adapter: str | None = None
    event_type: str | None = None
    restaurant_id: str | None = None
    fault: Literal["partner", "ours", "credentials"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    all: bool = Field(False, description="Every waiting dead letter of the company")


class ReplayOut(BaseModel):
    requeued: int = Field(description="Back in the outbox; the worker sends them")
    skipped_disabled: int = Field(description="Left alone: their adapter is disabled")


Limit = Annotated[int, Query(ge=1, le=dead_letters.PAGE_MAX)]


@router.get(PREFIX, response_model=DeadLetterPage)
def list_dead_letters(
    company_id: str,
    request: Request,
    actor: CurrentActor,
    eng: Engine,
    adapter: str | None = None,
    event_type: str | None = None,
    restaurant_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_replayed: bool = False,
    limit: Limit = 100,
    cursor: str | None = None,
) -> DeadLetterPage:
    """Newest first; waiting ones unless `include_replayed`. Follow `next_cursor`."""
    with transaction(eng) as conn:
        letters, following = dead_letters.list_dead_letters(
            conn,
            actor,
            company_id,
            key=request.app.state.settings.master_key(),
            adapter=adapter,
            event_type=event_type,
            restaurant_id=restaurant_id,
            since=since,
            until=until,
            include_replayed=include_replayed,
            limit=limit,
            cursor=cursor,
        )
    return DeadLetterPage(
        items=[DeadLetterOut(**dataclasses.asdict(d)) for d in letters], next_cursor=following
    )


@router.post(PREFIX + "/replay", response_model=ReplayOut)
def replay_dead_letters(
    company_id: str, body: ReplayIn, actor: CurrentActor, eng: Engine
) -> ReplayOut:
    """Put a selection back in the outbox (operator): `ids`, or filters, or `all`.
    An unknown id is 404; one already replayed is left alone."""
    with transaction(eng) as conn:
        result = dead_letters.replay(
            conn,
            actor,
            company_id,
            ids=body.ids,
            adapter=body.adapter,
            event_type=body.event_type,
            restaurant_id=body.restaurant_id,
            fault=body.fault,
            since=body.since,
            until=body.until,
            everything=body.all,
        )
    return ReplayOut(**dataclasses.asdict(result))


@router.post(PREFIX + "/{dead_letter_id}/replay", response_model=ReplayOut)
def replay_one(company_id: str, dead_letter_id: int, actor: CurrentActor, eng: Engine) -> ReplayOut:
    """Put one dead letter back in the outbox (operator)."""
    with transaction(eng) as conn:
        result = dead_letters.replay(conn, actor, company_id, ids=[dead_letter_id])
    return ReplayOut(**dataclasses.asdict(result))
