"""Companies and their plan."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import companies

router = APIRouter(tags=["companies"])


class CompanyOut(BaseModel):
    company_id: str
    name: str
    plan: str
    created_at: datetime
    restaurants: int
    integrations_enabled: int


class PlanIn(BaseModel):
    plan: str


@router.get("/companies", response_model=list[CompanyOut])
def list_companies(actor: CurrentActor, eng: Engine) -> list[CompanyOut]:
    with transaction(eng) as conn:
        return [CompanyOut(**vars(c)) for c in companies.list_companies(conn, actor)]


@router.get("/companies/{company_id}", response_model=CompanyOut)
def show_company(company_id: str, actor: CurrentActor, eng: Engine) -> CompanyOut:
    with transaction(eng) as conn:
        return CompanyOut(**vars(companies.get_company(conn, actor, company_id)))


@router.post("/companies/{company_id}/set-plan", response_model=CompanyOut)
def set_plan(company_id: str, body: PlanIn, actor: CurrentActor, eng: Engine) -> CompanyOut:
    """Change the plan (admin, not bound to a company). Refused while an enabled adapter
    is outside the new plan."""
    with transaction(eng) as conn:
        return CompanyOut(**vars(companies.set_plan(conn, actor, company_id, body.plan)))
