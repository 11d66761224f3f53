"""Admin routes: two-way delivery platforms: their API connection, external orders, webhook
registration, the sync log."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import platforms

router = APIRouter(tags=["platforms"])
BASE = "/companies/{company_id}"
Status = Literal[
    "received", "accepted", "rejected", "preparing", "ready", "picked_up", "delivered", "cancelled"
]


def master_key(request: Request) -> bytes:
    key: bytes = request.app.state.settings.master_key()
    return key


MasterKey = Annotated[bytes, Depends(master_key)]
Limit = Annotated[int, Query(ge=1, le=platforms.PAGE_MAX)]


class PlatformOut(BaseModel):
    name: str
    auth: str = Field(description="api_key or oauth_client_credentials")
    connected: bool
    restaurants: list[str] | None = Field(description="null: the whole company (or off)")
    api_base_url: str = Field(description="Where status calls go: configured, else production")
    statuses: list[str] = Field(description="The statuses the platform takes from us")
    webhook_registration: bool = Field(description="Whether it has a registration call")
    calls_pending: int
    calls_dead: int
    last_registration_at: datetime | None
    last_registration_ok: bool | None


class ConnectIn(BaseModel):
    """An API-key platform takes `api_key`; an OAuth one `client_id` and `client_secret`.
    Sealed, never shown again; omit them to re-enable with what is stored."""

    api_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    api_base_url: str | None = Field(
        None, description="Default: the platform's production URL (set it for staging, tests)"
    )
    token_url: str | None = Field(None, description="OAuth: default the platform's own")
    restaurant_id: str | None = Field(None, description="Only this restaurant's orders")


class ScopeIn(BaseModel):
    restaurant_id: str | None = None


class ExternalOrderOut(BaseModel):
    company_id: str
    platform: str
    external_order_id: str
    restaurant_id: str | None
    pos_order_id: str | None = Field(description="The POS order it is linked to, once named")
    status: Status
    platform_status: str | None = Field(description="The platform's own word, as last sent")
    raw: dict[str, Any] = Field(description="The body of the platform's latest event")
    received_at: datetime
    updated_at: datetime
    synced_at: datetime | None = Field(description="The last status call it acknowledged")
    synced_status: str | None
    calls_pending: int
    calls_dead: int


class ExternalOrderPage(BaseModel):
    items: list[ExternalOrderOut]
    next_cursor: str | None


class SyncEntryOut(BaseModel):
    sync_id: int
    company_id: str
    platform: str
    integration_id: int | None
    sync_type: str = Field(description="order_webhooks (inbound) or order_status (outbound)")
    direction: Literal["inbound", "outbound"]
    status: Literal["completed", "failed"]
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    records_processed: int
    errors: list[str]


class SyncLogPage(BaseModel):
    items: list[SyncEntryOut]
    next_cursor: str | None


class RegisterIn(BaseModel):
    public_url: str = Field(
        description="The ingest API's base URL as the platform reaches it; the webhook is "
        "<public_url>/webhooks/<platform>/<company>"
    )


class RegistrationOut(BaseModel):
    platform: str
    company_id: str
    url: str
    ok: bool
    response_code: int | None
    detail: str


def _platform(p: platforms.Platform) -> PlatformOut:
    return PlatformOut(**dataclasses.asdict(p))


@router.get(BASE + "/platforms", response_model=list[PlatformOut])
def list_platforms(company_id: str, actor: CurrentActor, eng: Engine) -> list[PlatformOut]:
    """Every platform that takes status calls: connected or not, where calls go, backlog."""
    with transaction(eng) as conn:
        return [_platform(p) for p in platforms.list_platforms(conn, actor, company_id)]


@router.get(BASE + "/platforms/{name}", response_model=PlatformOut)
def show_platform(company_id: str, name: str, actor: CurrentActor, eng: Engine) -> PlatformOut:
    with transaction(eng) as conn:
        return _platform(platforms.get_platform(conn, actor, company_id, name))


@router.post(BASE + "/platforms/{name}/connect", response_model=PlatformOut)
def connect_platform(
    company_id: str, name: str, body: ConnectIn, actor: CurrentActor, eng: Engine, key: MasterKey
) -> PlatformOut:
    """Store the platform's API credentials and base URL (operator); status calls start."""
    with transaction(eng) as conn:
        return _platform(
            platforms.connect(conn, actor, company_id, name, key=key, **body.model_dump())
        )


@router.post(BASE + "/platforms/{name}/disconnect", response_model=PlatformOut)
def disconnect_platform(
    company_id: str, name: str, actor: CurrentActor, eng: Engine, body: ScopeIn | None = None
) -> PlatformOut:
    """Stop status calls (operator); what is queued waits for a later connect."""
    with transaction(eng) as conn:
        return _platform(
            platforms.disconnect(
                conn, actor, company_id, name, restaurant_id=body.restaurant_id if body else None
            )
        )


@router.get(BASE + "/external-orders", response_model=ExternalOrderPage)
def list_external_orders(
    company_id: str,
    actor: CurrentActor,
    eng: Engine,
    platform: str | None = None,
    status: Status | None = None,
    restaurant_id: str | None = None,
    pos_order_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> ExternalOrderPage:
    """Platform orders, newest first, with their POS link and sync state; follow
    `next_cursor`."""
    with transaction(eng) as conn:
        orders, following = platforms.list_external_orders(
            conn,
            actor,
            company_id,
            platform=platform,
            status=status,
            restaurant_id=restaurant_id,
            pos_order_id=pos_order_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
    return ExternalOrderPage(
        items=[ExternalOrderOut(**dataclasses.asdict(o)) for o in orders], next_cursor=following
    )


@router.get(
    BASE + "/external-orders/{platform}/{external_order_id}", response_model=ExternalOrderOut
)
def show_external_order(
    company_id: str, platform: str, external_order_id: str, actor: CurrentActor, eng: Engine
) -> ExternalOrderOut:
    with transaction(eng) as conn:
        order = platforms.get_external_order(conn, actor, company_id, platform, external_order_id)
    return ExternalOrderOut(**dataclasses.asdict(order))


@router.get(BASE + "/sync-log", response_model=SyncLogPage)
def sync_log(
    company_id: str,
    actor: CurrentActor,
    eng: Engine,
    platform: str | None = None,
    direction: Literal["inbound", "outbound"] | None = None,
    status: Literal["completed", "failed"] | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> SyncLogPage:
    """Inbound batch windows and outbound call runs, newest first."""
    with transaction(eng) as conn:
        entries, following = platforms.list_sync_log(
            conn,
            actor,
            company_id,
            platform=platform,
            direction=direction,
            status=status,
            limit=limit,
            cursor=cursor,
        )
    return SyncLogPage(
        items=[SyncEntryOut(**dataclasses.asdict(e)) for e in entries], next_cursor=following
    )


@router.post(BASE + "/integrations/{name}/register-webhook", response_model=RegistrationOut)
def register_webhook(
    company_id: str, name: str, body: RegisterIn, actor: CurrentActor, eng: Engine, key: MasterKey
) -> RegistrationOut:
    """Call the platform's webhook registration endpoint with our URL and the stored
    signing secret (operator); the answer is recorded and audited. `ok` says whether the
    platform took it."""
    with transaction(eng) as conn:
        result = platforms.register_webhook(
            conn, actor, company_id, name, key=key, public_url=body.public_url
        )
    return RegistrationOut(**dataclasses.asdict(result))
