"""The partner API ASGI app (`api.app:app`): read-only, API-key scoped, OpenAPI at /openapi.json."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.metrics import RequestMetrics
from api.routers import events, exports, orders, signals
from api.state import ApiState
from partner_signals.db import libpq_url
from partner_signals.observability import render
from partner_signals.problems import install_problem_handlers, log_refusal, problem_response
from partner_signals.settings import Settings, get_settings

log = logging.getLogger("partner_signals.api")


def problem(
    request: Request, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    log_refusal(log, request.method, request.url.path, status, code)
    response: Response = problem_response(status, code, detail, headers)
    return response


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        state = ApiState.create(s, libpq_url(s))
        await state.open()
        app.state.api = state
        # A worker holds ~110,000 objects after imports that live as long as it does; a
        # full collection would walk them all with every request waiting. Moved out of
        # the collector's way, as in ingest (A/B in docs/benchmarks.md: within noise here).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="partner-signals partner API",
        version="1",
        description=(
            "Read-only signals for partners. Authenticate with `Authorization: Bearer <key>`; "
            "a key sees only its company (or one restaurant) and its scopes. Errors are "
            "application/problem+json with a stable `code` and the `request_id` (also "
            "answered in X-Request-ID)."
        ),
        lifespan=lifespan,
    )

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def not_built(request: Request, exc: Exception) -> Response:
        return problem(
            request,
            503,
            "not_materialized",
            "signals are not materialized yet; run partner-signals materialize",
            {"Retry-After": "30"},
        )

    @app.exception_handler(psycopg.DataError)
    async def bad_value(request: Request, exc: Exception) -> Response:
        return problem(
            request, 422, "invalid_value", "a parameter holds a value the database refuses"
        )

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def database_down(request: Request, exc: Exception) -> Response:
        return problem(
            request, 503, "database_unavailable", "database unavailable", {"Retry-After": "5"}
        )

    app.add_middleware(RequestMetrics)
    install_problem_handlers(app, logger=log)  # outermost: the request id covers the rest
    app.include_router(signals.router)
    app.include_router(events.router)
    app.include_router(exports.router)
    app.include_router(orders.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> Response:
        try:
            async with request.app.state.api.pool.connection() as conn:
                await conn.execute("select 1")
        except Exception:
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        payload, content_type = render()  # every worker's under uvicorn --workers
        return Response(payload, media_type=content_type)

    return app


app = create_app()
