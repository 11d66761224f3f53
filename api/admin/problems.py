"""Admin API errors: the shared problem+json shape (partner_signals.problems) plus what only
the admin app raises, the service functions' refusals (ControlError) and its database."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import Response

from partner_signals.control.errors import ControlError
from partner_signals.problems import (
    MEDIA_TYPE,
    documented,
    install_problem_handlers,
    log_refusal,
    problem_response,
    request_id,
)

log = logging.getLogger("partner_signals.admin")

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: documented("No operator token, or an unknown or revoked one"),
    403: documented("The token's role does not allow this"),
    404: documented("No such resource (or not one the token's company may see)"),
    422: documented("A value breaks its rule; `errors` names each field"),
    503: documented("Database unavailable"),
}


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    log_refusal(log, request.method, request.url.path, status, code)
    response: Response = problem_response(status, code, detail, headers, **extra)
    return response


def install(app: FastAPI) -> None:
    install_problem_handlers(app, logger=log)

    @app.exception_handler(ControlError)
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ControlError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(request, exc.status, exc.code, str(exc), headers, **exc.extra)

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: Exception) -> Response:
        return problem(
            request, 503, "database_unavailable", "database unavailable", {"Retry-After": "5"}
        )


__all__ = ["MEDIA_TYPE", "RESPONSES", "install", "problem", "request_id"]
