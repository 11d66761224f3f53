"""The ingest ASGI app (`ingest.app:app`): signed webhooks and POS events land in raw.*.

A 2xx is sent only after the event's row is committed; the same event sent again gets
a 2xx that says "duplicate". Refused requests are answered with a JSON error and kept
in raw.rejected_requests (truncated, without secrets).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import Headers

from ingest import metrics
from ingest.directory import Directory
from ingest.writer import (
    GroupCommitWriter,
    OrderRow,
    RejectedRow,
    UnstorableRows,
    WebhookRow,
    WriterUnavailable,
)
from partner_signals.db import libpq_url
from partner_signals.pos import InvalidPosEvent, parse_pos_event, pos_event_schema
from partner_signals.providers import PROVIDERS, MalformedEvent, SignatureError
from partner_signals.ratelimit import RateLimiter, retry_after_header
from partner_signals.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Never stored, whichever provider sent them.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-ingest-key"}
)
EXCERPT_BYTES = 2048
# The ops schema's id rule: anything else cannot be a company, so it never reaches a query.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


class Refused(Exception):
    """A request we answer with an error instead of landing it."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@dataclass
class IngestState:
    settings: Settings
    writer: GroupCommitWriter
    directory: Directory
    clock: Callable[[], float]
    limiter: RateLimiter
    rejection_log: RateLimiter

    def check_rate(self, company_id: str, source: str) -> None:
        wait = self.limiter.take((company_id, source))
        if wait:
            raise Refused(
                429,
                "rate_limited",
                "too many requests for this company and source",
                retry_after=retry_after_header(wait),
            )


def json_response(
    status: int, content: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status, headers=headers, media_type="application/json")


def no_nul(text: str) -> str:
    """PostgreSQL text cannot hold U+0000; what we keep of a refused request must land."""
    return text.replace("\x00", "\ufffd")


def safe_headers(headers: Headers) -> str:
    return orjson.dumps(
        {k: no_nul(v) for k, v in headers.items() if k not in SECRET_HEADERS and "secret" not in k}
    ).decode()


def media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, "body_too_large", f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "body_too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_storable(body: bytes) -> None:
    # PostgreSQL's jsonb cannot hold U+0000; refusing it here keeps one bad event from
    # breaking every downstream model that parses the raw body.
    if b"\\u0000" in body:
        raise Refused(400, "unstorable_json", "JSON strings must not contain \\u0000")


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        conninfo = libpq_url(s)
        writer = GroupCommitWriter(conninfo, max_rows=s.ingest_batch_max)
        directory = Directory(conninfo, s.master_key(), ttl=s.auth_cache_seconds)
        await writer.start()
        await directory.start()
        app.state.ingest = IngestState(
            s,
            writer,
            directory,
            clock,
            RateLimiter(s.ingest_rate_per_second, s.ingest_rate_burst),
            RateLimiter(s.rejections_recorded_per_second, int(s.rejections_recorded_per_second)),
        )
        try:
            yield
        finally:
            await writer.stop()
            await directory.stop()

    app = FastAPI(
        title="partner-signals ingest",
        version="1",
        description="Lands signed webhooks and POS events, append-only, in raw.* tables.",
        lifespan=lifespan,
    )

    def state(request: Request) -> IngestState:
        st: IngestState = request.app.state.ingest
        return st

    async def refuse(
        st: IngestState,
        request: Request,
        exc: Refused,
        *,
        source: str,
        company_id: str | None,
        body: bytes,
        received_at: datetime,
    ) -> Response:
        metrics.REJECTED.labels(source, str(exc.status)).inc()
        row = RejectedRow(
            received_at=received_at,
            source=no_nul(source[:32]),
            company_id=no_nul(company_id[:128]) if company_id else None,
            path=no_nul(request.url.path[:512]),
            status_code=exc.status,
            reason=no_nul(f"{exc.code}: {exc.message}"[:1000]),
            headers=safe_headers(request.headers),
            body_excerpt=no_nul(body[:EXCERPT_BYTES].decode("utf-8", "replace")),
            body_bytes=len(body),
        )
        if exc.status != 429 and not st.rejection_log.take(source):
            try:
                await st.writer.land(rejected=[row])
            except WriterUnavailable:
                log.warning("could not record a refused request (%s)", exc.code)
        else:
            metrics.REJECTIONS_NOT_RECORDED.labels(source).inc()
        retry_after = exc.extra.pop("retry_after", None)
        return json_response(
            exc.status,
            {"error": {"code": exc.code, "message": exc.message, **exc.extra}},
            headers={"Retry-After": retry_after} if retry_after else None,
        )

    def unavailable(source: str, exc: Exception) -> Response:
        metrics.UNAVAILABLE.labels(source).inc()
        log.warning("answering 503: %s", exc)
        return json_response(
            503,
            {"error": {"code": "unavailable", "message": "events not committed; retry"}},
            headers={"Retry-After": "1"},
        )

    @app.post(
        "/webhooks/{provider}/{company_id}",
        tags=["webhooks"],
        summary="Land one signed provider webhook",
        responses={
            200: {"description": "Committed: status is accepted or duplicate"},
            400: {"description": "Malformed JSON or no event id"},
            401: {"description": "Invalid, missing or stale signature"},
            404: {"description": "Unknown provider, or company without that provider"},
            413: {"description": "Body over the limit"},
            415: {"description": "Not application/json"},
            429: {"description": "Over the per-company rate for this provider; see Retry-After"},
            503: {"description": "Database unavailable: not committed, retry"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def webhook(provider: str, company_id: str, request: Request) -> Response:
        st = state(request)
        received_at = datetime.now(UTC)
        body = b""
        source = provider if provider in PROVIDERS else "unknown"
        try:
            handler = PROVIDERS.get(provider)
            if handler is None:
                raise Refused(404, "unknown_provider", f"no provider named {provider[:40]!r}")
            if media_type(request.headers) not in JSON_TYPES:
                raise Refused(415, "unsupported_media_type", "send application/json")
            body = await read_body(request, st.settings.max_body_bytes)
            if not ID_PATTERN.match(company_id):
                raise Refused(404, "unknown_company", f"no {provider} integration for this company")
            creds = await st.directory.credentials(company_id, provider)
            if creds is None:
                raise Refused(404, "unknown_company", f"no {provider} integration for this company")
            try:
                handler.verify(body, request.headers, creds, st.clock())
            except SignatureError as exc:
                raise Refused(401, "invalid_signature", str(exc)) from None
            st.check_rate(company_id, provider)
            check_storable(body)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise Refused(400, "malformed_json", f"body is not JSON: {exc}") from None
            try:
                event_id, event_type = handler.identify(payload, request.headers)
            except MalformedEvent as exc:
                raise Refused(400, "malformed_event", str(exc)) from None
            row = WebhookRow(
                source=provider,
                company_id=company_id,
                event_id=event_id,
                event_type=event_type,
                received_at=received_at,
                headers=safe_headers(request.headers),
                body=body.decode(),
            )
            try:
                (new,) = await st.writer.land(webhooks=[row])
            except UnstorableRows as exc:
                raise Refused(
                    400, "unstorable_event", f"PostgreSQL cannot store it: {exc}"
                ) from None
        except Refused as exc:
            return await refuse(
                st,
                request,
                exc,
                source=source,
                company_id=company_id,
                body=body,
                received_at=received_at,
            )
        except (WriterUnavailable, psycopg.Error, OSError) as exc:
            return unavailable(source, exc)
        outcome = "accepted" if new else "duplicate"
        metrics.EVENTS.labels(provider, outcome).inc()
        return json_response(200, {"status": outcome, "event_id": event_id})

    @app.post(
        "/events",
        tags=["pos"],
        summary="Land POS order and table events (one JSON object or an NDJSON batch)",
        responses={
            200: {"description": "Committed: status (or counts) of accepted and duplicate events"},
            400: {"description": "Malformed JSON or an event that breaks the format"},
            401: {"description": "Missing or unknown ingest key"},
            413: {"description": "Body over the limit"},
            415: {"description": "Not application/json or application/x-ndjson"},
            422: {"description": "An event names a restaurant this company does not have"},
            429: {"description": "Over the per-company rate; see Retry-After"},
            503: {"description": "Database unavailable: not committed, retry"},
        },
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
        st = state(request)
        received_at = datetime.now(UTC)
        body = b""
        company_id: str | None = None
        try:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Refused(401, "missing_key", "send Authorization: Bearer <ingest key>")
            company_id = await st.directory.company_for_key(token.strip())
            if company_id is None:
                raise Refused(401, "invalid_key", "unknown or revoked ingest key")
            st.check_rate(company_id, "pos")
            kind = media_type(request.headers)
            if kind not in JSON_TYPES and kind not in NDJSON_TYPES:
                raise Refused(
                    415, "unsupported_media_type", "send application/json or application/x-ndjson"
                )
            body = await read_body(request, st.settings.max_body_bytes)
            check_storable(body)
            lines = [body] if kind in JSON_TYPES else [ln for ln in body.split(b"\n") if ln.strip()]
            if not lines:
                raise Refused(400, "empty_batch", "no events in the body")
            events = []
            problems = []
            for number, line in enumerate(lines, 1):
                try:
                    events.append(parse_pos_event(line))
                except InvalidPosEvent as exc:
                    problems.append({"line": number, "message": str(exc)})
            if problems:
                if kind in JSON_TYPES:
                    raise Refused(400, "invalid_event", str(problems[0]["message"]))
                first = problems[0]
                raise Refused(
                    400,
                    "invalid_event",
                    f"line {first['line']}: {first['message']}",
                    problems=problems[:20],
                )
            known = await st.directory.restaurants(company_id)
            strangers = sorted({e.restaurant_id for e in events} - known)
            if strangers:
                raise Refused(
                    422,
                    "unknown_restaurant",
                    f"not a restaurant of this company: {strangers[0][:64]!r}",
                )
            headers = safe_headers(request.headers)
            rows = [
                OrderRow(
                    company_id=company_id,
                    restaurant_id=e.restaurant_id,
                    event_id=e.event_id,
                    event_type=e.type,
                    occurred_at=e.occurred_at,
                    received_at=received_at,
                    headers=headers,
                    body=line.decode(),
                )
                for e, line in zip(events, lines, strict=True)
            ]
            try:
                flags = await st.writer.land(orders=rows)
            except UnstorableRows as exc:
                raise Refused(
                    400, "unstorable_event", f"PostgreSQL cannot store it: {exc}"
                ) from None
        except Refused as exc:
            return await refuse(
                st,
                request,
                exc,
                source="pos",
                company_id=company_id,
                body=body,
                received_at=received_at,
            )
        except (WriterUnavailable, psycopg.Error, OSError) as exc:
            return unavailable("pos", exc)
        accepted = sum(flags)
        if accepted:
            metrics.EVENTS.labels("pos", "accepted").inc(accepted)
        if accepted < len(flags):
            metrics.EVENTS.labels("pos", "duplicate").inc(len(flags) - accepted)
        if kind in JSON_TYPES:
            status = "accepted" if flags[0] else "duplicate"
            return json_response(200, {"status": status, "event_id": rows[0].event_id})
        return json_response(
            200,
            {
                "received": len(flags),
                "accepted": accepted,
                "duplicates": len(flags) - accepted,
                "duplicate_event_ids": [
                    r.event_id for r, f in zip(rows, flags, strict=True) if not f
                ],
            },
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
            await state(request).directory.ping()
        except Exception as exc:
            return unavailable("readyz", exc)
        return json_response(200, {"status": "ready"})

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


app = create_app()
