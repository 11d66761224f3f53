"""Admin routes: inbound integrations (payment and delivery platforms): enable, disable,
rotate, test, status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import inbound

router = APIRouter(tags=["inbound"])


def master_key(request: Request) -> bytes:
    key: bytes = request.app.state.settings.master_key()
    return key


MasterKey = Annotated[bytes, Depends(master_key)]


class ScopeOut(BaseModel):
    restaurant_id: str | None = Field(description="None: the whole company")
    enabled: bool
    secret_set_at: datetime | None
    previous_secret_expires_at: datetime | None
    updated_at: datetime


class IntegrationOut(BaseModel):
    name: str
    kind: str = Field(description="payment or delivery")
    signature_scheme: str
    enabled: bool
    restaurants: list[str] | None = Field(
        description="The restaurants it is enabled for; null: the whole company (or off)"
    )
    secret_age_seconds: int | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret before the last rotation is accepted too"
    )
    last_event_at: datetime | None
    webhook_path: str = Field(description="Where the provider sends, on the ingest API")
    scopes: list[ScopeOut]


class EnableIn(BaseModel):
    secret: str | None = Field(
        None,
        description="The provider's signing secret (never shown again); omit to re-enable "
        "with the stored one",
    )
    restaurant_id: str | None = Field(None, description="Only this restaurant's events")
    paypal_webhook_id: str | None = None
    paypal_certificate: str | None = Field(None, description="PayPal: PEM certificate")


class ScopeIn(BaseModel):
    restaurant_id: str | None = Field(None, description="Only this restaurant's scope")


class RotateIn(BaseModel):
    secret: str = Field(description="The new signing secret (never shown again)")
    grace_seconds: int = Field(
        int(inbound.DEFAULT_GRACE.total_seconds()),
        ge=0,
        le=int(inbound.MAX_GRACE.total_seconds()),
        description="How long the current secret stays accepted (0: stop at once)",
    )
    restaurant_id: str | None = None


class TestIn(BaseModel):
    restaurant_id: str | None = Field(None, description="Default: the first in scope")
    event_type: str | None = Field(
        None, description="The provider's event name; default: its first mapped one"
    )


class TestOut(BaseModel):
    provider: str
    company_id: str
    restaurant_id: str
    verified: bool = Field(description="The signature verified by ingest's own code")
    detail: str
    accepted: bool = Field(description="What ingest would do: verified and in scope")
    signature_headers: list[str]
    event_id: str | None
    event_type: str
    mapping: str = Field(description="mapped, ignored, unmapped or not_in_catalogue")
    canonical_type: str | None
    canonical_status: str | None
    secrets_accepted: int
    landed: bool = Field(description="Always false: a test lands nothing")


class RejectionsOut(BaseModel):
    reason: str
    last_hour: int
    last_day: int


class UnmappedOut(BaseModel):
    event_type: str
    reason: str
    events: int
    last_received_at: datetime


class StatusOut(BaseModel):
    name: str
    company_id: str
    enabled: bool
    restaurants: list[str] | None
    last_event_at: datetime | None
    events_last_hour: int
    events_last_day: int
    rejections: list[RejectionsOut]
    unmapped: list[UnmappedOut] | None = Field(
        description="Event names that map to nothing; null until the model is built"
    )
    secret_age_seconds: int | None
    previous_secret_expires_at: datetime | None


def _out(i: inbound.Inbound) -> IntegrationOut:
    return IntegrationOut(
        **{**vars(i), "scopes": [ScopeOut(**vars(s)) for s in i.scopes]},
    )


BASE = "/companies/{company_id}/integrations"


@router.get(BASE, response_model=list[IntegrationOut])
def list_integrations(company_id: str, actor: CurrentActor, eng: Engine) -> list[IntegrationOut]:
    """Every inbound provider, enabled or not, with its scope, secret age and last event."""
    with transaction(eng) as conn:
        return [_out(i) for i in inbound.list_integrations(conn, actor, company_id)]


@router.get(BASE + "/{name}", response_model=IntegrationOut)
def show_integration(
    company_id: str, name: str, actor: CurrentActor, eng: Engine
) -> IntegrationOut:
    with transaction(eng) as conn:
        return _out(inbound.get_integration(conn, actor, company_id, name))


@router.post(BASE + "/{name}/enable", response_model=IntegrationOut)
def enable_integration(
    company_id: str, name: str, body: EnableIn, actor: CurrentActor, eng: Engine, key: MasterKey
) -> IntegrationOut:
    """Enable a provider for the company or one restaurant, with its signing secret
    (operator). The secret is stored encrypted and never shown again."""
    with transaction(eng) as conn:
        return _out(
            inbound.enable(
                conn,
                actor,
                company_id,
                name,
                key=key,
                secret=body.secret,
                restaurant_id=body.restaurant_id,
                paypal_webhook_id=body.paypal_webhook_id,
                paypal_certificate=body.paypal_certificate,
            )
        )


@router.post(BASE + "/{name}/disable", response_model=IntegrationOut)
def disable_integration(
    company_id: str,
    name: str,
    actor: CurrentActor,
    eng: Engine,
    body: ScopeIn | None = None,
) -> IntegrationOut:
    """Disable it (every scope, or one restaurant): ingest answers the next webhook 404,
    as for a provider never enabled."""
    with transaction(eng) as conn:
        return _out(
            inbound.disable(
                conn, actor, company_id, name, restaurant_id=body.restaurant_id if body else None
            )
        )


@router.post(BASE + "/{name}/rotate", response_model=IntegrationOut)
def rotate_secret(
    company_id: str, name: str, body: RotateIn, actor: CurrentActor, eng: Engine, key: MasterKey
) -> IntegrationOut:
    """Replace the signing secret; the current one stays accepted for `grace_seconds`."""
    with transaction(eng) as conn:
        return _out(
            inbound.rotate(
                conn,
                actor,
                company_id,
                name,
                key=key,
                secret=body.secret,
                grace=timedelta(seconds=body.grace_seconds),
                restaurant_id=body.restaurant_id,
            )
        )


@router.post(BASE + "/{name}/test", response_model=TestOut)
def test_integration(
    company_id: str,
    name: str,
    actor: CurrentActor,
    eng: Engine,
    key: MasterKey,
    body: TestIn | None = None,
) -> TestOut:
    """Sign a sample event with the provider's scheme and the stored secret, verify it
    with ingest's own code, and say how it maps. Lands nothing."""
    body = body or TestIn(restaurant_id=None, event_type=None)
    with transaction(eng) as conn:
        result = inbound.verify_sample(
            conn,
            actor,
            company_id,
            name,
            key=key,
            restaurant_id=body.restaurant_id,
            event_type=body.event_type,
        )
    return TestOut(**vars(result))


@router.get(BASE + "/{name}/status", response_model=StatusOut)
def integration_status(company_id: str, name: str, actor: CurrentActor, eng: Engine) -> StatusOut:
    """Last event, events and rejections by reason in the last hour and day, unmapped
    events, secret age."""
    with transaction(eng) as conn:
        s = inbound.status(conn, actor, company_id, name)
    return StatusOut(
        **{
            **vars(s),
            "rejections": [RejectionsOut(**vars(r)) for r in s.rejections],
            "unmapped": None
            if s.unmapped is None
            else [UnmappedOut(**vars(u)) for u in s.unmapped],
        }
    )
