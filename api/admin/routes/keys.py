"""Admin routes: partner API keys and POS ingest keys: list, create (admin; the secret is
in the creation's answer only), revoke (admin; refused by every worker within a second)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import keys

router = APIRouter(tags=["keys"])
Scope = Literal["read:workforce", "read:crm", "read:events", "read:exports", "read:orders"]


class PartnerKeyOut(BaseModel):
    company_id: str
    prefix: str = Field(description="The key's first 10 characters: how operators name it")
    name: str | None
    scopes: list[str]
    restaurant_id: str | None = Field(description="None: every restaurant of the company")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Written in batches: up to 15 s behind")
    revoked_at: datetime | None


class PartnerKeyIn(BaseModel):
    scopes: list[Scope] = Field(min_length=1, examples=[["read:workforce"]])
    restaurant_id: str | None = Field(None, description="Limit the key to one restaurant")
    name: str | None = Field(None, min_length=1, max_length=100, examples=["Nory production"])


class PartnerKeyCreated(PartnerKeyOut):
    key: str = Field(description="Shown once: store it now; only its digest is kept")


class IngestKeyOut(BaseModel):
    company_id: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IngestKeyCreated(IngestKeyOut):
    key: str = Field(description="Shown once: store it now; only its digest is kept")


def _partner(key: keys.PartnerKey) -> PartnerKeyOut:
    return PartnerKeyOut(**vars(key))


def _ingest(key: keys.IngestKey) -> IngestKeyOut:
    return IngestKeyOut(**vars(key))


@router.get("/companies/{company_id}/keys", response_model=list[PartnerKeyOut])
def list_partner_keys(
    company_id: str, actor: CurrentActor, eng: Engine, include_revoked: bool = False
) -> list[PartnerKeyOut]:
    """The company's partner API keys (never their secret)."""
    with transaction(eng) as conn:
        found = keys.list_partner_keys(conn, actor, company_id, include_revoked=include_revoked)
    return [_partner(k) for k in found]


@router.post("/companies/{company_id}/keys", response_model=PartnerKeyCreated, status_code=201)
def create_partner_key(
    company_id: str, body: PartnerKeyIn, actor: CurrentActor, eng: Engine
) -> PartnerKeyCreated:
    """A new partner API key (admin). Its secret is in this answer and nowhere else."""
    with transaction(eng) as conn:
        key, secret = keys.create_partner_key(
            conn,
            actor,
            company_id,
            scopes=body.scopes,
            restaurant_id=body.restaurant_id,
            name=body.name,
        )
    return PartnerKeyCreated(**vars(key), key=secret)


@router.post("/companies/{company_id}/keys/{prefix}/revoke", response_model=list[PartnerKeyOut])
def revoke_partner_key(
    company_id: str, prefix: str, actor: CurrentActor, eng: Engine
) -> list[PartnerKeyOut]:
    """Revoke the live partner key(s) starting with `prefix` (admin): every partner API
    worker refuses it within a second of this answer. 404 when none is live."""
    with transaction(eng) as conn:
        revoked = keys.revoke_partner_key(conn, actor, company_id, prefix)
    return [_partner(k) for k in revoked]


@router.get("/companies/{company_id}/ingest-keys", response_model=list[IngestKeyOut])
def list_ingest_keys(
    company_id: str, actor: CurrentActor, eng: Engine, include_revoked: bool = False
) -> list[IngestKeyOut]:
    """The company's POS ingest keys (never their secret)."""
    with transaction(eng) as conn:
        found = keys.list_ingest_keys(conn, actor, company_id, include_revoked=include_revoked)
    return [_ingest(k) for k in found]


@router.post(
    "/companies/{company_id}/ingest-keys", response_model=IngestKeyCreated, status_code=201
)
def create_ingest_key(company_id: str, actor: CurrentActor, eng: Engine) -> IngestKeyCreated:
    """A new POS ingest key (admin). Its secret is in this answer and nowhere else."""
    with transaction(eng) as conn:
        key, secret = keys.create_ingest_key(conn, actor, company_id)
    return IngestKeyCreated(**vars(key), key=secret)


@router.post(
    "/companies/{company_id}/ingest-keys/{prefix}/revoke", response_model=list[IngestKeyOut]
)
def revoke_ingest_key(
    company_id: str, prefix: str, actor: CurrentActor, eng: Engine
) -> list[IngestKeyOut]:
    """Revoke the live ingest key(s) starting with `prefix` (admin): every ingest worker
    refuses it within a second of this answer. 404 when none is live."""
    with transaction(eng) as conn:
        revoked = keys.revoke_ingest_key(conn, actor, company_id, prefix)
    return [_ingest(k) for k in revoked]
