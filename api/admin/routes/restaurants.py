"""Admin routes: restaurants of a company, their names and time zones."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.admin.deps import CurrentActor, Engine, transaction
from partner_signals.control import restaurants

router = APIRouter(tags=["restaurants"])


class RestaurantOut(BaseModel):
    restaurant_id: str
    company_id: str
    name: str
    timezone: str
    created_at: datetime
    has_events: bool = Field(description="POS events have landed: the time zone is fixed")


class RestaurantIn(BaseModel):
    restaurant_id: str = Field(examples=["dubai-marina"])
    timezone: str = Field(description="IANA time zone", examples=["Asia/Dubai"])
    name: str | None = Field(None, description="Display name (default: the id)")


class RestaurantUpdate(BaseModel):
    name: str | None = None
    timezone: str | None = Field(
        None, description="IANA time zone; refused (409) once the restaurant has events"
    )


@router.get("/companies/{company_id}/restaurants", response_model=list[RestaurantOut])
def list_restaurants(company_id: str, actor: CurrentActor, eng: Engine) -> list[RestaurantOut]:
    with transaction(eng) as conn:
        return [
            RestaurantOut(**vars(r)) for r in restaurants.list_restaurants(conn, actor, company_id)
        ]


@router.post(
    "/companies/{company_id}/restaurants",
    response_model=RestaurantOut,
    status_code=201,
    responses={200: {"model": RestaurantOut, "description": "Already there, the same"}},
)
def add_restaurant(
    company_id: str, body: RestaurantIn, actor: CurrentActor, eng: Engine, response: Response
) -> RestaurantOut:
    """Add a restaurant (operator). The same restaurant again is 200; with another name
    or zone, or taken by another company, 409."""
    with transaction(eng) as conn:
        r, new = restaurants.add_restaurant(
            conn,
            actor,
            company_id,
            restaurant_id=body.restaurant_id,
            timezone=body.timezone,
            name=body.name,
        )
    if not new:
        response.status_code = 200
    return RestaurantOut(**vars(r))


@router.get("/companies/{company_id}/restaurants/{restaurant_id}", response_model=RestaurantOut)
def show_restaurant(
    company_id: str, restaurant_id: str, actor: CurrentActor, eng: Engine
) -> RestaurantOut:
    with transaction(eng) as conn:
        return RestaurantOut(
            **vars(restaurants.get_restaurant(conn, actor, company_id, restaurant_id))
        )


@router.post(
    "/companies/{company_id}/restaurants/{restaurant_id}/update", response_model=RestaurantOut
)
def update_restaurant(
    company_id: str, restaurant_id: str, body: RestaurantUpdate, actor: CurrentActor, eng: Engine
) -> RestaurantOut:
    """Rename, or change the time zone while no event has landed for the restaurant."""
    with transaction(eng) as conn:
        r = restaurants.update_restaurant(
            conn, actor, company_id, restaurant_id, name=body.name, timezone=body.timezone
        )
    return RestaurantOut(**vars(r))
