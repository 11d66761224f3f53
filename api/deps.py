"""Request dependencies of the partner API: the key's holder, its scopes and its restaurants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.state import ApiState, Principal
from partner_signals.ids import ID_PATTERN
from partner_signals.problems import ProblemError, documented
from partner_signals.ratelimit import retry_after_header


async def get_state(request: Request) -> ApiState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread handoff
    # on every request for one attribute read.
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]
bearer = HTTPBearer(auto_error=False, description="A partner key: `Authorization: Bearer psk_...`")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: documented("No key (`missing_key`), or an unknown or revoked one (`invalid_key`)"),
    403: documented(
        "The key lacks the scope (`missing_scope`) or the restaurant (`foreign_restaurant`)"
    ),
    422: documented(
        "A parameter breaks its format (`validation_failed`, `invalid_span`, "
        "`invalid_cursor`); `errors` names each field"
    ),
    429: documented("Over the key's rate limit (`rate_limited`); see Retry-After"),
    503: documented(
        "Database unavailable (`database_unavailable`) or signals not built yet "
        "(`not_materialized`); see Retry-After"
    ),
}
BEARER = {"WWW-Authenticate": "Bearer"}


async def get_principal(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    token = credentials.credentials.strip() if credentials else ""
    if not token:
        raise ProblemError(401, "missing_key", "send Authorization: Bearer <partner key>", BEARER)
    principal = await state.principal(token)
    if principal is None:
        raise ProblemError(401, "invalid_key", "unknown or revoked key", BEARER)
    wait = state.limiter.take(principal.key_id)
    if wait:
        raise ProblemError(
            429, "rate_limited", "rate limit exceeded", {"Retry-After": retry_after_header(wait)}
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: str) -> Any:
    async def check(principal: PrincipalDep) -> Principal:
        if scope not in principal.scopes:
            raise ProblemError(403, "missing_scope", f"this key lacks the {scope} scope")
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
        raise ProblemError(403, "foreign_restaurant", "this key is for another restaurant")
    if await state.restaurant_company(restaurant_id) != principal.company_id:
        raise ProblemError(403, "foreign_restaurant", "not one of this key's restaurants")
    return restaurant_id


RestaurantId = Annotated[str, Depends(allowed_restaurant)]
