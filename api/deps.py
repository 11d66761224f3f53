"""Request dependencies of the partner API: the key's holder, its scopes and its restaurants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request

from api.state import ApiState, Principal
from partner_signals.ratelimit import retry_after_header


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]


async def get_principal(request: Request, state: State) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "send Authorization: Bearer <partner key>", {"WWW-Authenticate": "Bearer"}
        )
    principal = await state.principal(token.strip())
    if principal is None:
        raise HTTPException(401, "unknown or revoked key", {"WWW-Authenticate": "Bearer"})
    wait = state.limiter.take(principal.key_id)
    if wait:
        raise HTTPException(429, "rate limit exceeded", {"Retry-After": retry_after_header(wait)})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: str) -> Any:
    async def check(principal: PrincipalDep) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(403, f"this key lacks the {scope} scope")
        return principal

    return Depends(check)


async def allowed_restaurant(
    principal: PrincipalDep,
    state: State,
    restaurant_id: Annotated[str, Path(max_length=64)],
) -> str:
    """The path's restaurant, if the key may see it; 403 otherwise (also when it does
    not exist, so a key cannot probe other companies' restaurant ids)."""
    if principal.restaurant_id is not None and principal.restaurant_id != restaurant_id:
        raise HTTPException(403, "this key is for another restaurant")
    if await state.restaurant_company(restaurant_id) != principal.company_id:
        raise HTTPException(403, "not one of this key's restaurants")
    return restaurant_id


RestaurantId = Annotated[str, Depends(allowed_restaurant)]
