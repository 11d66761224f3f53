"""Admin routes: outbound partner adapters: enable, disable, exclusions, test, status."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import adapters

router = APIRouter(tags=["adapters"])
PREFIX = "/companies/{company_id}/adapters"


class AdapterScopeOut(BaseModel):
    restaurant_id: str | None = Field(description="None: company-wide")
    enabled: bool
    config: dict[str, Any]
    secrets_set: list[str] = Field(description="Names of the stored secrets, never values")
    excluded_restaurants: list[str]
    updated_at: datetime


class AdapterOut(BaseModel):
    adapter: str
    description: str
    plans: list[str]
    plan_locked: bool
    unlocked_by: str | None = Field(description="The lowest plan that includes it, if locked")
    enabled: bool
    company_wide: bool
    restaurants: list[str]
    scopes: list[AdapterScopeOut]


class EnableIn(BaseModel):
    restaurant_id: str | None = Field(None, description="Only this restaurant (default: all)")
    config: dict[str, Any] = Field(
        default_factory=dict, examples=[{"url": "https://partner.example/hooks"}]
    )
    secrets: dict[str, Any] = Field(
        default_factory=dict,
        description="The adapter's secrets (`GET .../adapters/{name}` lists their names). "
        "Left out: the stored ones are kept. Never returned.",
    )
    keep_previous: bool = Field(
        False, description="Rotation: keep the previous signing secrets after the new one"
    )


class ScopeIn(BaseModel):
    restaurant_id: str | None = Field(None, description="None: the company-wide integration")


class RestaurantIn(BaseModel):
    restaurant_id: str


class TestOut(BaseModel):
    adapter: str
    restaurant_id: str | None
    ok: bool
    status_code: int | None
    detail: str
    enabled: bool


class StatusOut(BaseModel):
    company_id: str
    adapter: str
    enabled: bool
    last_success_at: datetime | None
    delivered_last_hour: int
    failures_last_hour: int
    deferred_last_hour: int
    success_rate_last_hour: float | None
    pending: int
    oldest_pending_at: datetime | None
    dead_letters_waiting: int


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.settings.master_key()
    return key


def _scope(body: ScopeIn | None) -> str | None:
    return body.restaurant_id if body else None


def _out(summary: adapters.AdapterSummary) -> AdapterOut:
    return AdapterOut(**dataclasses.asdict(summary))


@router.get(PREFIX, response_model=list[AdapterOut])
def list_adapters(
    company_id: str, request: Request, actor: CurrentActor, eng: Engine
) -> list[AdapterOut]:
    """Every adapter: plan lock and the plan that unlocks it, where it is enabled
    (company-wide with exclusions, or per restaurant), its config and secret names."""
    with transaction(eng) as conn:
        rows = adapters.list_adapters(conn, actor, company_id, key=_key(request))
    return [_out(r) for r in rows]


@router.get(PREFIX + "/{name}", response_model=AdapterOut)
def show_adapter(
    company_id: str, name: str, request: Request, actor: CurrentActor, eng: Engine
) -> AdapterOut:
    with transaction(eng) as conn:
        return _out(adapters.get_adapter(conn, actor, company_id, name, key=_key(request)))


@router.post(PREFIX + "/{name}/enable", response_model=AdapterOut)
def enable_adapter(
    company_id: str, name: str, body: EnableIn, request: Request, actor: CurrentActor, eng: Engine
) -> AdapterOut:
    """Enable or reconfigure (operator). 403 `plan_locked` names the plan that unlocks it;
    422 names each config or secret field that is wrong, never its value."""
    with transaction(eng) as conn:
        summary = adapters.enable(
            conn,
            actor,
            company_id,
            name,
            key=_key(request),
            config=body.config,
            secrets=body.secrets,
            restaurant_id=body.restaurant_id,
            keep_previous=body.keep_previous,
        )
    return _out(summary)


@router.post(PREFIX + "/{name}/disable", response_model=AdapterOut)
def disable_adapter(
    company_id: str,
    name: str,
    request: Request,
    actor: CurrentActor,
    eng: Engine,
    body: ScopeIn | None = None,
) -> AdapterOut:
    """Disable company-wide or for one restaurant (operator). Idempotent; pending pushes
    wait until it is enabled again."""
    with transaction(eng) as conn:
        summary = adapters.disable(
            conn, actor, company_id, name, restaurant_id=_scope(body), key=_key(request)
        )
    return _out(summary)


@router.post(PREFIX + "/{name}/exclude", response_model=AdapterOut)
def exclude_restaurant(
    company_id: str,
    name: str,
    body: RestaurantIn,
    request: Request,
    actor: CurrentActor,
    eng: Engine,
) -> AdapterOut:
    """Leave a restaurant out of a company-wide adapter (operator): nothing more is
    enqueued for it and its pending pushes are cancelled. Idempotent."""
    with transaction(eng) as conn:
        summary = adapters.exclude(
            conn, actor, company_id, name, restaurant_id=body.restaurant_id, key=_key(request)
        )
    return _out(summary)


@router.post(PREFIX + "/{name}/include", response_model=AdapterOut)
def include_restaurant(
    company_id: str,
    name: str,
    body: RestaurantIn,
    request: Request,
    actor: CurrentActor,
    eng: Engine,
) -> AdapterOut:
    """Take an excluded restaurant back into a company-wide adapter (operator)."""
    with transaction(eng) as conn:
        summary = adapters.include(
            conn, actor, company_id, name, restaurant_id=body.restaurant_id, key=_key(request)
        )
    return _out(summary)


@router.post(PREFIX + "/{name}/test", response_model=TestOut)
def test_adapter(
    company_id: str,
    name: str,
    request: Request,
    actor: CurrentActor,
    eng: Engine,
    body: ScopeIn | None = None,
) -> TestOut:
    """Send the adapter's harmless signed ping with the stored URL and credentials
    (operator); `ok` is a 2xx answer. A failed test is a 200 with ok false."""
    with transaction(eng) as conn:
        result = adapters.check_connection(
            conn, actor, company_id, name, key=_key(request), restaurant_id=_scope(body)
        )
    return TestOut(**dataclasses.asdict(result))


@router.get(PREFIX + "/{name}/status", response_model=StatusOut)
def adapter_status(company_id: str, name: str, actor: CurrentActor, eng: Engine) -> StatusOut:
    """Last success, deliveries, failures and success rate in the last hour, pending,
    oldest pending and dead letters waiting."""
    with transaction(eng) as conn:
        return StatusOut(**dataclasses.asdict(adapters.status(conn, actor, company_id, name)))
