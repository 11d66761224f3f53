"""Request dependencies of the partner API: the key's holder, its scopes and its restaurants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from api.state import ApiState, Principal
from partner_signals.ids import ID_PATTERN
from partner_signals.ratelimit import retry_after_header


async def get_state(request: Request) -> ApiState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread handoff
    # on every request for one attribute read.
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]
bearer = HTTPBearer(auto_error=False, description="A partner key: `Authorization: Bearer psk_...`")


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No key, or an unknown or revoked one"},
    403: {"model": Problem, "description": "The key lacks the scope or the restaurant"},
    422: {"description": "A parameter breaks its format"},
    429: {"model": Problem, "description": "Over the key's rate limit; see Retry-After"},
    503: {"model": Problem, "description": "Database unavailable or signals not built yet"},
}


async def get_principal(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    token = credentials.credentials.strip() if credentials else ""
    if not token:
        raise HTTPException(
            401, "send Authorization: Bearer <partner key>", {"WWW-Authenticate": "Bearer"}
        )
    principal = await state.principal(token)
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
    restaurant_id: Annotated[str, Path(pattern=ID_PATTERN)],
) -> str:
    """The path's restaurant, if the key may see it; 403 otherwise (also when it does
    not exist, so a key cannot probe other companies' restaurant ids)."""
    if principal.restaurant_id is not None and principal.restaurant_id != restaurant_id:
        raise HTTPException(403, "this key is for another restaurant")
    if await state.restaurant_company(restaurant_id) != principal.company_id:
        raise HTTPException(403, "not one of this key's restaurants")
    return restaurant_id


RestaurantId = Annotated[str, Depends(allowed_restaurant)]
