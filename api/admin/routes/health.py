"""Admin routes: the on-call operator's first answer, for every company or one."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import health

router = APIRouter(tags=["health"])


class InboundOut(BaseModel):
    source: str
    enabled: bool = Field(description="An enabled integration (POS: a live ingest key)")
    last_received_at: datetime | None
    seconds_since: float | None


class PushOut(BaseModel):
    adapter: str
    pending: int
    oldest_pending_at: datetime | None
    oldest_pending_seconds: float | None
    dead_letters_waiting: int


class CompanyHealthOut(BaseModel):
    company_id: str
    verdict: Literal["ok", "attention"]
    reasons: list[str]
    inbound: list[InboundOut] = Field(description="Last event received per source")
    pushes: list[PushOut] = Field(description="What waits to be pushed, per adapter")


class SignalLagOut(BaseModel):
    signal: str
    seconds: float = Field(description="Age of the oldest landed event not reflected yet")
    waiting_since: datetime | None
    processed_through: datetime | None


class FailingCheckOut(BaseModel):
    asset: str
    check: str
    severity: str | None
    description: str | None
    evaluated_at: datetime | None


class FailingRunOut(BaseModel):
    job: str
    run_id: str
    failed_at: datetime | None


class HealthOut(BaseModel):
    at: datetime
    verdict: Literal["ok", "attention"] = Field(description="attention: see `reasons`")
    reasons: list[str]
    companies: list[CompanyHealthOut]
    signal_lags: list[SignalLagOut]
    failing_checks: list[FailingCheckOut]
    failing_runs: list[FailingRunOut]


def _answer(actor: CurrentActor, eng: Engine, company_id: str | None) -> HealthOut:
    with transaction(eng) as conn:
        found = health.summary(conn, actor, company_id)
    return HealthOut.model_validate(found, from_attributes=True)


@router.get("/status", response_model=HealthOut)
def status(actor: CurrentActor, eng: Engine) -> HealthOut:
    """Every company the token sees: inbound freshness per source, push backlog per
    adapter, then signal lag and failing checks and runs; `verdict` is `attention` with
    the `reasons` when something needs an operator."""
    return _answer(actor, eng, None)


@router.get("/companies/{company_id}/status", response_model=HealthOut)
def company_status(company_id: str, actor: CurrentActor, eng: Engine) -> HealthOut:
    """One company's part of the summary (with the signal lag and checks all share)."""
    return _answer(actor, eng, company_id)
