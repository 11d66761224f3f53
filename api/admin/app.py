"""The admin ASGI app: routes under /admin/v1, OpenAPI at /openapi.json, docs at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.admin import console, problems
from api.admin.routes import (
    adapters,
    audit,
    companies,
    dead_letters,
    health,
    inbound,
    keys,
    messaging,
    operators,
    platforms,
    restaurants,
)
from partner_signals.db import get_engine
from partner_signals.settings import Settings, get_settings

TAGS = [
    {"name": "operators", "description": "Operator tokens and roles (admin)."},
    {"name": "audit", "description": "The append-only trail of every change."},
    {"name": "companies", "description": "Companies and their plan tier."},
    {"name": "restaurants", "description": "Restaurants of a company, their names and time zones."},
    {
        "name": "inbound",
        "description": "Inbound integrations (payment and delivery platforms): enable, disable, "
        "rotate the secret, test with a signed sample, status.",
    },
    {
        "name": "adapters",
        "description": "Outbound partner adapters: enable, disable, exclusions, test, status.",
    },
    {"name": "dead letters", "description": "Pushes that gave up, and their replay."},
    {"name": "keys", "description": "Partner API keys and ingest keys."},
    {"name": "health", "description": "The on-call operator's first answer, per company."},
    {
        "name": "platforms",
        "description": "Two-way delivery platforms: external orders, webhook registration, "
        "the sync log.",
    },
    {"name": "messaging", "description": "Message templates per restaurant, opt-ins, opt-outs."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        app.state.settings = s
        app.state.engine = get_engine(s)
        yield

    app = FastAPI(
        title="partner-signals admin API",
        version="1",
        description=(
            "The operator's control plane. Authenticate with `Authorization: Bearer "
            "<operator token>` (`partner-signals operators create`). Roles: viewer reads; "
            "operator also enables, disables, tests, rotates and replays; admin also manages "
            "plans, operators and keys. A token bound to a company sees only that company. "
            "Every change is in the audit trail. Errors are application/problem+json with a "
            "stable `code` and the `request_id`."
        ),
        openapi_tags=TAGS,
        lifespan=lifespan,
        responses=problems.RESPONSES,
    )
    problems.install(app)

    for module in (
        operators,
        audit,
        companies,
        restaurants,
        inbound,
        adapters,
        dead_letters,
        keys,
        health,
        platforms,
        messaging,
    ):
        app.include_router(module.router, prefix="/admin/v1")

    console.install(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> Response:
        try:
            with request.app.state.engine.connect() as conn:
                conn.exec_driver_sql("select 1")
        except Exception:
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ready"})

    return app
