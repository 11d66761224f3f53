"""The ingest ASGI app (`ingest.app:app`): signed webhooks and POS events land in raw.*.

A 2xx is sent only after the event's row is committed; the same event sent again gets
a 2xx that says "duplicate". Refused requests are answered as application/problem+json
with a stable `code` and the request id (docs/admin.md, "Errors"), logged and kept in
raw.rejected_requests (truncated, without secrets).

The two landing routes are served straight from ASGI (`IngestApp`): FastAPI's routing
and request objects cost more CPU per request than everything else ingest does. The
FastAPI app still documents them (OpenAPI) and serves every other route.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from ingest import metrics
from ingest.directory import Directory
from ingest.handlers import (
    Answer,
    IngestState,
    Refused,
    handle_pos,
    handle_webhook,
    unavailable,
)
from ingest.writer import GroupCommitWriter
from partner_signals.db import libpq_url
from partner_signals.pos import pos_event_schema
from partner_signals.problems import (
    documented,
    install_problem_handlers,
    request_id,
    set_request_id,
)
from partner_signals.ratelimit import RateLimiter
from partner_signals.settings import Settings, get_settings

log = logging.getLogger("ingest")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Committed: status is accepted or duplicate"},
    400: {"description": "Malformed JSON or no event id"},
    401: {"description": "Invalid, missing or stale signature"},
    404: {"description": "Unknown provider, or company without that provider"},
    408: {"description": "Body not received in time; the connection is closed"},
    413: {"description": "Body over the limit"},
    414: {"description": "Request target over the limit (answered before the app)"},
    415: {"description": "Not application/json"},
    429: {"description": "Over the per-company rate for this provider; see Retry-After"},
    431: {"description": "Too many or too large header fields (answered before the app)"},
    503: {
        "description": "Not committed (queue full, database slow or down): nothing of the "
        "request was stored; send it again after Retry-After"
    },
}
POS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Committed: status (or counts) of accepted and duplicate events"},
    400: {"description": "Malformed JSON or an event that breaks the format"},
    401: {"description": "Missing or unknown ingest key"},
    408: {"description": "Body not received in time; the connection is closed"},
    413: {"description": "Body over the limit, or a batch of more lines than allowed"},
    414: {"description": "Request target over the limit (answered before the app)"},
    415: {"description": "Not application/json or application/x-ndjson"},
    422: {
        "description": "A field holds a value of the wrong kind or out of range (the "
        "message names it), or an event names a restaurant this company does not have"
    },
    429: {"description": "Over the per-company rate; see Retry-After"},
    431: {"description": "Too many or too large header fields (answered before the app)"},
    503: {
        "description": "Not committed (queue full, database slow or down): nothing of the "
        "request was stored; send it again after Retry-After"
    },
}

# Every refusal is application/problem+json (partner_signals.problems), documented so.
for _responses in (WEBHOOK_RESPONSES, POS_RESPONSES):
    for _status, _doc in _responses.items():
        if int(_status) >= 400:
            _doc.update(documented(_doc["description"]))


def too_large(limit: int) -> Refused:
    return Refused(413, "body_too_large", f"body exceeds {limit} bytes")


def too_slow(seconds: float) -> Refused:
    return Refused(408, "body_timeout", f"body not received within {seconds:g} s")


def request_reader(request: Request, timeout: float) -> Callable[[int], Awaitable[bytes]]:
    async def read(limit: int) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise too_large(limit)
                    chunks.append(chunk)
        except TimeoutError:
            raise too_slow(timeout) from None
        return b"".join(chunks)

    return read


def to_response(result: Answer) -> Response:
    return Response(
        result.body, result.status, headers=result.headers, media_type=result.media_type
    )


def create_fastapi(settings: Settings | None, clock: Callable[[], float]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        conninfo = libpq_url(s)
        writer = GroupCommitWriter(
            conninfo,
            max_rows=s.ingest_batch_max,
            max_queued_rows=s.ingest_queue_max_rows,
            timeout=s.ingest_commit_wait_seconds,
            statement_timeout=s.ingest_commit_timeout_seconds,
        )
        directory = Directory(
            conninfo,
            s.master_key(),
            ttl=s.auth_cache_seconds,
            key_usage_seconds=s.key_usage_seconds,
        )
        await writer.start()
        await directory.start()
        app.state.ingest = IngestState(
            settings=s,
            writer=writer,
            directory=directory,
            clock=clock,
            limiter=RateLimiter(s.ingest_rate_per_second, s.ingest_rate_burst),
            rejection_log=RateLimiter(
                s.rejections_recorded_per_second, int(s.rejections_recorded_per_second)
            ),
        )
        # Everything made so far lives as long as the process: moved out of the
        # collector's reach, full collections stop walking it (they were the p99 spikes).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await writer.stop()
            await directory.stop()
            app.state.ingest.parser.shutdown(wait=False)

    app = FastAPI(
        title="partner-signals ingest",
        version="1",
        description="Lands signed webhooks and POS events, append-only, in raw.* tables.",
        lifespan=lifespan,
    )
    install_problem_handlers(app, logger=log)

    @app.post(
        "/webhooks/{provider}/{company_id}",
        tags=["webhooks"],
        summary="Land one signed provider webhook",
        responses=WEBHOOK_RESPONSES,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def webhook(provider: str, company_id: str, request: Request) -> Response:
        return to_response(
            await handle_webhook(
                request.app.state.ingest,
                provider=provider,
                company_id=company_id,
                path=request.url.path,
                headers=request.headers,
                read_body=request_reader(request, body_timeout(request.app)),
            )
        )

    @app.post(
        "/events",
        tags=["pos"],
        summary="Land POS order and table events (one JSON object or an NDJSON batch)",
        responses=POS_RESPONSES,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PosEvent"}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def pos_events(request: Request) -> Response:
        return to_response(
            await handle_pos(
                request.app.state.ingest,
                path=request.url.path,
                headers=request.headers,
                read_body=request_reader(request, body_timeout(request.app)),
            )
        )

    @app.get("/schema/pos-event", tags=["pos"], summary="JSON Schema of one POS event")
    async def pos_schema() -> dict[str, Any]:
        return pos_event_schema()

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="The database is reachable")
    async def readyz(request: Request) -> Response:
        try:
            await request.app.state.ingest.directory.ping()
        except Exception as exc:
            return to_response(unavailable("readyz", exc))
        return Response(b'{"status":"ready"}', media_type="application/json")

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def prometheus() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    return app


class IngestApp:
    """The ASGI front door: POST /events and POST /webhooks/{provider}/{company} go
    straight to their handlers; everything else (docs, health, metrics, lifespan) to
    the FastAPI app, which also documents the two routes."""

    def __init__(self, inner: FastAPI) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        # state, openapi(), routes...: whatever callers expect of the FastAPI app.
        return getattr(self.inner, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path == "/events":
                headers = decode_headers(scope)
                set_request_id(headers.get("x-request-id"))
                result = await handle_pos(
                    self.inner.state.ingest,
                    path=path,
                    headers=headers,
                    read_body=asgi_reader(receive, headers, body_timeout(self.inner)),
                )
                return await respond(send, result)
            if path.startswith("/webhooks/"):
                parts = path.split("/")
                if len(parts) == 4 and parts[2] and parts[3]:
                    headers = decode_headers(scope)
                    set_request_id(headers.get("x-request-id"))
                    result = await handle_webhook(
                        self.inner.state.ingest,
                        provider=parts[2],
                        company_id=parts[3],
                        path=path,
                        headers=headers,
                        read_body=asgi_reader(receive, headers, body_timeout(self.inner)),
                    )
                    return await respond(send, result)
        await self.inner(scope, receive, send)


def body_timeout(app: FastAPI) -> float:
    timeout: float = app.state.ingest.settings.http_body_timeout_seconds
    return timeout


def decode_headers(scope: Scope) -> dict[str, str]:
    # ASGI servers hand header names lower-cased already.
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def asgi_reader(
    receive: Receive, headers: dict[str, str], timeout: float
) -> Callable[[int], Awaitable[bytes]]:
    """The body, whole, within `limit` bytes and `timeout` seconds of the first read (the
    HTTP layer bounds the head; this bounds a sender that trickles the body)."""

    async def read(limit: int) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Refused(400, "disconnected", "the client went away mid-body")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise too_large(limit)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise too_slow(timeout) from None

    return read


async def respond(send: Send, result: Answer) -> None:
    headers = [
        (b"content-type", result.media_type.encode()),
        (b"content-length", str(len(result.body)).encode()),
        (b"x-request-id", request_id().encode()),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()]
    await send({"type": "http.response.start", "status": result.status, "headers": headers})
    await send({"type": "http.response.body", "body": result.body})


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> IngestApp:
    return IngestApp(create_fastapi(settings, clock))


app = create_app()
