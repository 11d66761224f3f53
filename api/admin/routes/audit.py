"""The audit trail: every change, by whom, newest first, with cursor pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import audit

router = APIRouter(tags=["audit"])


class AuditEntryOut(BaseModel):
    audit_id: int
    at: datetime
    actor: str
    action: str
    company_id: str | None
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any]
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


def _page(
    actor: CurrentActor,
    eng: Engine,
    company_id: str | None,
    action: str | None,
    who: str | None,
    target: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> AuditPage:
    with transaction(eng) as conn:
        entries, following = audit.list_entries(
            conn,
            actor,
            company_id=company_id,
            action=action,
            who=who,
            target=target,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
    return AuditPage(items=[AuditEntryOut(**vars(e)) for e in entries], next_cursor=following)


Action = Annotated[str | None, Query(description="exact, or a prefix ending in '.'")]
Who = Annotated[str | None, Query(alias="actor", description="operator name or cli:<user>")]
Target = Annotated[str | None, Query(description="prefix, e.g. company/acme/provider/stripe")]
Limit = Annotated[int, Query(ge=1, le=audit.PAGE_MAX)]


@router.get("/audit", response_model=AuditPage)
def list_audit(
    actor: CurrentActor,
    eng: Engine,
    company_id: str | None = None,
    action: Action = None,
    who: Who = None,
    target: Target = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> AuditPage:
    """Every change, newest first; follow `next_cursor` for older ones."""
    return _page(actor, eng, company_id, action, who, target, since, until, limit, cursor)


@router.get("/companies/{company_id}/audit", response_model=AuditPage)
def company_audit(
    company_id: str,
    actor: CurrentActor,
    eng: Engine,
    action: Action = None,
    who: Who = None,
    target: Target = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> AuditPage:
    """One company's changes, newest first."""
    return _page(actor, eng, company_id, action, who, target, since, until, limit, cursor)
