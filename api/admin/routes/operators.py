"""Operators: who may use the admin API, with which role (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import operators

router = APIRouter(tags=["operators"])


class OperatorOut(BaseModel):
    name: str
    role: str
    company_id: str | None
    token_prefix: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class OperatorIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["amira"])
    role: Literal["viewer", "operator", "admin"]
    company_id: str | None = Field(None, description="Bind the token to one company")


class OperatorCreated(OperatorOut):
    token: str = Field(description="Shown once: store it now; only its digest is kept")


class Me(BaseModel):
    name: str
    role: str
    company_id: str | None


def _out(op: operators.Operator) -> OperatorOut:
    return OperatorOut(**{k: getattr(op, k) for k in OperatorOut.model_fields})


@router.get("/me", response_model=Me, tags=["operators"])
def me(actor: CurrentActor) -> Me:
    """Who this token is: its operator's name, role and company."""
    return Me(name=actor.name, role=actor.role, company_id=actor.company_id)


@router.get("/operators", response_model=list[OperatorOut])
def list_operators(
    actor: CurrentActor, eng: Engine, include_revoked: bool = False
) -> list[OperatorOut]:
    with transaction(eng) as conn:
        return [
            _out(o) for o in operators.list_operators(conn, actor, include_revoked=include_revoked)
        ]


@router.post("/operators", response_model=OperatorCreated, status_code=201)
def create_operator(body: OperatorIn, actor: CurrentActor, eng: Engine) -> OperatorCreated:
    """A new operator token, returned once."""
    with transaction(eng) as conn:
        op, token = operators.create(
            conn, actor, name=body.name, role=body.role, company_id=body.company_id
        )
    return OperatorCreated(**_out(op).model_dump(), token=token)


@router.post("/operators/{name}/revoke", response_model=OperatorOut)
def revoke_operator(name: str, actor: CurrentActor, eng: Engine) -> OperatorOut:
    """Revoke an operator's token: refused from the next request on."""
    with transaction(eng) as conn:
        return _out(operators.revoke(conn, actor, name=name))
