"""One error shape for every API (admin, partner, ingest): application/problem+json (RFC 9457)
with a stable `code` and the request id, which is also answered in X-Request-ID and put on
every log line written while the request is served."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import orjson
from pydantic import BaseModel

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://partner-signals.dev/problems/"
# What a caller may send as X-Request-ID: anything else is replaced by a new id, so a log
# line cannot be forged or bloated through it.
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The code of an HTTP error raised without one of its own.
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

log = logging.getLogger("partner_signals.problems")
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _NewIds:
    """New request ids: a random prefix per process and a counter, 32 hex digits like a
    uuid4's, at a quarter of its cost (measured 0.55 vs 2.3 µs; ingest makes one per request)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


new_request_id = _NewIds()
os.register_at_fork(after_in_child=new_request_id.reset)


def sane_request_id(given: str | None) -> str:
    """The caller's id when it is a sane one, else a new one."""
    return given if given and SANE_ID.fullmatch(given) else new_request_id()


def request_id() -> str:
    """The id of the request being served; a new one (then kept) outside a request."""
    rid = _request_id.get()
    if rid is None:
        rid = new_request_id()
        _request_id.set(rid)
    return rid


def set_request_id(given: str | None) -> str:
    rid = sane_request_id(given)
    _request_id.set(rid)
    return rid


class RequestIdMiddleware:
    """Pure ASGI: sets the request id (a sane X-Request-ID, or a new one) for the request's
    context and answers it in X-Request-ID. The context var is left set, not reset: each
    request runs in its own task (its own copy of the context), and an unexpected
    exception's handler, outside this middleware, still logs under the request's id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = set_request_id(given)
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record ("-" outside a request), for formatters to print."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True


class Problem(BaseModel):
    """An error (RFC 9457). `code` is stable; `detail` says what to do about it;
    `request_id` is the X-Request-ID answered and the id on the server's log lines."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    errors: list[dict[str, str]] | None = None


class ProblemError(Exception):
    """A refusal answered as a problem: raise it anywhere in a request."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def invalid(field: str, message: str, code: str = "validation_failed") -> ProblemError:
    """422 naming the field, shaped as a RequestValidationError's answer."""
    return ProblemError(
        422, code, f"{field}: {message}", errors=[{"field": field, "message": message}]
    )


def problem_body(
    status: int, code: str, detail: str, *, rid: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The problem's members; `rid` for an answer given outside any request's context."""
    return {
        "type": TYPE_BASE + code,
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": rid or request_id(),
        **extra,
    }


def documented(description: str) -> dict[str, Any]:
    """An OpenAPI `responses` entry for a problem answer."""
    schema = {"$ref": "#/components/schemas/Problem"}  # registered through `model`
    return {
        "model": Problem,
        "description": description,
        "content": {MEDIA_TYPE: {"schema": schema}},
    }


def log_refusal(logger: logging.Logger, method: str, path: str, status: int, code: str) -> None:
    logger.info("%s %s -> %s %s", method, path[:200], status, code)


def problem_response(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Any:
    """A Starlette response holding the problem, with X-Request-ID."""
    from starlette.responses import Response

    body = problem_body(status, code, detail, **extra)
    return Response(
        orjson.dumps(body),
        status,
        headers={**(headers or {}), "X-Request-ID": body["request_id"]},
        media_type=MEDIA_TYPE,
    )


def field_errors(errors: Any) -> list[dict[str, str]]:
    """pydantic's errors as [{field, message}], the field without its location prefix."""
    return [
        {
            "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path"))
            or ".".join(str(p) for p in e["loc"]),
            "message": e["msg"],
        }
        for e in errors
    ]


def install_problem_handlers(
    app: Any,
    *,
    logger: logging.Logger = log,
    codes: Mapping[int, str] = CODES,
) -> None:
    """Every error of a FastAPI app answered as a problem: ProblemError, HTTPException,
    invalid input (422 with `errors` naming each field) and unexpected exceptions (500,
    logged with the traceback under the request id, none of it sent), and the request id
    middleware. Apps add handlers of their own for their own exceptions."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.responses import Response

    def answer(request: Request, status: int, code: str, detail: str, **kw: Any) -> Response:
        log_refusal(logger, request.method, request.url.path, status, code)
        response: Response = problem_response(status, code, detail, **kw)
        return response

    @app.exception_handler(ProblemError)
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return answer(request, exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = codes.get(exc.status_code, CODES.get(exc.status_code, "error"))
        return answer(
            request, exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {})
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return answer(request, 422, "validation_failed", detail, errors=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.error("%s %s -> 500 internal_error", request.method, request.url.path, exc_info=exc)
        return problem_response(
            500,
            "internal_error",
            "an unexpected error; the server's log has it under this request_id",
        )

    app.add_middleware(RequestIdMiddleware)


__all__ = [
    "CODES",
    "MEDIA_TYPE",
    "Problem",
    "ProblemError",
    "RequestIdFilter",
    "RequestIdMiddleware",
    "documented",
    "install_problem_handlers",
    "invalid",
    "problem_body",
    "problem_response",
    "request_id",
]
