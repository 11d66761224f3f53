"""Request dependencies of the admin API: the database, the request id and the operator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from partner_signals import problems
from partner_signals.control import operators
from partner_signals.control.actor import Actor
from partner_signals.control.errors import ControlError

bearer = HTTPBearer(
    auto_error=False, description="An operator token: `Authorization: Bearer pso_...`"
)


class Unauthenticated(ControlError):
    status = 401
    code = "unauthenticated"


def request_id(request: Request) -> str:
    """The request's id (partner_signals.problems.RequestIdMiddleware set it from a sane
    X-Request-ID, or made one): answered in X-Request-ID, in every problem, in the logs."""
    return problems.request_id()


def engine(request: Request) -> sa.Engine:
    eng: sa.Engine = request.app.state.engine
    return eng


Engine = Annotated[sa.Engine, Depends(engine)]


def current_actor(
    request: Request,
    eng: Engine,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    token = credentials.credentials.strip() if credentials else ""
    if not token:
        raise Unauthenticated("send Authorization: Bearer <operator token>")
    with eng.begin() as conn:
        actor = operators.authenticate(conn, token, request_id=request_id(request))
    if actor is None:
        raise Unauthenticated("unknown or revoked operator token")
    request.state.actor = actor.name
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


@contextmanager
def transaction(eng: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction per call: the change and its audit entry commit together."""
    with eng.begin() as conn:
        yield conn
