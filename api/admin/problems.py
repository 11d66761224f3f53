"""Admin API errors as application/problem+json (RFC 9457) with a stable code and the
request id, for refusals of the service functions, HTTP errors and invalid input."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from api.admin.deps import request_id
from partner_signals.control.errors import ControlError

log = logging.getLogger("partner_signals.admin")
MEDIA_TYPE = "application/problem+json"
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_failed",
    503: "database_unavailable",
}


class ProblemBody(BaseModel):
    """An error (RFC 9457). `code` is stable; `detail` says what to do about it."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    errors: list[dict[str, str]] | None = None


def _documented(description: str) -> dict[str, Any]:
    return {"model": ProblemBody, "description": description, "content": {MEDIA_TYPE: {}}}


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("No operator token, or an unknown or revoked one"),
    403: _documented("The token's role does not allow this"),
    404: _documented("No such resource (or not one the token's company may see)"),
    422: _documented("A value breaks its rule; `errors` names each field"),
    503: _documented("Database unavailable"),
}


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    rid = request_id(request)
    log.info(
        "admin %s %s -> %s %s request_id=%s", request.method, request.url.path, status, code, rid
    )
    body = {
        "type": f"https://partner-signals.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": rid,
        **extra,
    }
    return JSONResponse(
        body,
        status,
        headers={**(headers or {}), "X-Request-ID": rid},
        media_type=MEDIA_TYPE,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ControlError)
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ControlError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(request, exc.status, exc.code, str(exc), headers, **exc.extra)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = CODES.get(exc.status_code, "error")
        return problem(request, exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(request, 422, "validation_failed", detail, errors=errors)

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: Exception) -> Response:
        return problem(
            request, 503, "database_unavailable", "database unavailable", {"Retry-After": "5"}
        )


__all__ = ["MEDIA_TYPE", "RESPONSES", "install", "problem", "request_id"]
