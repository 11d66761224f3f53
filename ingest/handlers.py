"""The two things ingest does, free of any web framework: land a webhook, land POS events.

Each takes the lower-cased request headers and a body reader and returns an `Answer`;
the ASGI front door (`ingest.app`) calls them straight from the socket for speed, and
the documented FastAPI routes call the same functions.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
import psycopg

from ingest import metrics
from ingest.directory import Directory
from ingest.writer import (
    CommitUnknown,
    GroupCommitWriter,
    OrderRow,
    RejectedRow,
    UnstorableRows,
    WebhookRow,
    WriterUnavailable,
    encode_rows,
)
from partner_signals.catalogue.sources import sources
from partner_signals.control.inbound import restaurant_refusal
from partner_signals.ids import is_id
from partner_signals.pos import InvalidPosEvent, TimeWindow, parse_pos_event
from partner_signals.problems import MEDIA_TYPE as PROBLEM
from partner_signals.problems import problem_body
from partner_signals.providers import (
    PROVIDERS,
    Credentials,
    MalformedEvent,
    Provider,
    SignatureError,
)
from partner_signals.ratelimit import RateLimiter, retry_after_header
from partner_signals.settings import Settings

log = logging.getLogger(__name__)

# Never stored, whichever provider sent them.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-ingest-key"}
)
# The headers stored with an event or a refusal: who sent it and how. Each source adds the
# headers its catalogue entry reads (signature, event id); every other header a sender
# controls is dropped, and each kept value is cut at KEPT_HEADER_CHARS, so what is stored
# stays small whatever was sent (docs/bad-input.md, "Limits").
COMMON_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "x-request-id", "idempotency-key"}
)
KEPT_HEADERS: dict[str, frozenset[str]] = {
    s.name: (
        COMMON_HEADERS
        | set(s.signature.headers)
        | {loc.header for loc in (s.event_id, s.event_type) if loc.header}
    )
    - SECRET_HEADERS
    for s in sources()
}
KEPT_HEADER_CHARS = 1024
EXCERPT_BYTES = 2048
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})

# Bodies at least this large are parsed and validated off the event loop (a 16 KiB
# batch is about 150 events, under a millisecond of validation).
OFF_LOOP_BYTES = 16 * 1024
SWITCH_INTERVAL = 0.0005
# A batch answer lists at most this many bad lines; validation stops there.
MAX_PROBLEMS = 20

BodyReader = Callable[[int], Awaitable[bytes]]
T = TypeVar("T")


class Refused(Exception):
    """A request we answer with an error instead of landing it."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


def answer(status: int, content: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, orjson.dumps(content), headers or {})


@dataclass
class IngestState:
    settings: Settings
    writer: GroupCommitWriter
    directory: Directory
    clock: Callable[[], float]
    limiter: RateLimiter
    rejection_log: RateLimiter

    def occurred_at_window(self, received_at: datetime) -> TimeWindow:
        return TimeWindow.around(
            received_at,
            earliest=self.settings.occurred_at_earliest,
            ahead=timedelta(seconds=self.settings.occurred_at_max_ahead_seconds),
        )

    # One thread per process parses large bodies: the event loop stays free for other
    # requests, and big batches queue for it instead of all contending for the GIL.
    parser: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="ingest-parse")
    )

    def __post_init__(self) -> None:
        # Start the thread now: starting it under load held the event loop ~80 ms.
        self.parser.submit(int).result()
        # While the parse thread runs, the event loop waits up to this long for the GIL
        # at every wake-up (CPython's default is 5 ms: a webhook's few wake-ups added
        # tens of ms behind a large batch). Only a thread wanting the GIL shortens the
        # holder's turn, so the lone loop thread is not slowed.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))

    def check_rate(self, company_id: str, source: str, *, cost: int = 1) -> None:
        """Take `cost` tokens (one per event) from the company's bucket for this source,
        or refuse the request whole: 429 with the seconds until it would pass."""
        wait = self.limiter.take((company_id, source), cost)
        if wait:
            raise Refused(
                429,
                "rate_limited",
                f"over this company's rate for {source}"
                + (f" ({cost} events in this request)" if cost > 1 else ""),
                retry_after=retry_after_header(wait),
            )

    def check_rate_open(self, company_id: str, source: str) -> None:
        """Refuse, before reading the body, a company that could not pass even one event."""
        wait = self.limiter.wait((company_id, source))
        if wait:
            raise Refused(
                429,
                "rate_limited",
                f"over this company's rate for {source}",
                retry_after=retry_after_header(wait),
            )

    async def off_loop(self, size: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, in the parse thread when `size` (body bytes) is large
        enough for the work to hold the event loop more than a millisecond or so."""
        if size < OFF_LOOP_BYTES:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.parser, functools.partial(fn, *args, **kwargs))


def no_nul(text: str) -> str:
    """PostgreSQL text cannot hold U+0000; what we keep of a refused request must land."""
    return text.replace("\x00", "\ufffd")


def kept_headers(headers: Mapping[str, str], source: str) -> str:
    """The JSON of the headers worth keeping from `source` (KEPT_HEADERS), each cut short."""
    names = KEPT_HEADERS.get(source, COMMON_HEADERS)
    return orjson.dumps(
        {k: no_nul(v[:KEPT_HEADER_CHARS]) for k, v in headers.items() if k in names}
    ).decode()


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def check_batch_size(body: bytes, limit: int) -> None:
    """Refuse an NDJSON batch of more than `limit` lines (blank ones included) before any
    of it is parsed (counted at C speed: ~0.3 ms for 1 MiB)."""
    lines = count_lines(body)
    if lines > limit:
        raise Refused(
            413,
            "too_many_events",
            f"the batch has {lines} lines; at most {limit} per request: split it",
            limit=limit,
        )


def check_storable(body: bytes) -> None:
    # PostgreSQL's jsonb cannot hold U+0000; refusing it here keeps one bad event from
    # breaking every downstream model that parses the raw body.
    if b"\\u0000" in body:
        raise Refused(400, "unstorable_json", "JSON strings must not contain \\u0000")


async def refuse(
    st: IngestState,
    exc: Refused,
    *,
    path: str,
    headers: Mapping[str, str],
    source: str,
    company_id: str | None,
    body: bytes,
    received_at: datetime,
) -> Answer:
    """Answer the refusal and keep a trace of it in raw.rejected_requests and the log,
    under the request id (at a capped rate per source, so a flood of bad requests cannot
    become a flood of writes)."""
    metrics.REJECTED.labels(source, str(exc.status)).inc()
    if exc.status != 429 and not st.rejection_log.take(source):
        log.info("%s %s -> %s %s", "POST", path[:200], exc.status, exc.code)
        row = RejectedRow(
            received_at=received_at,
            source=no_nul(source[:32]),
            company_id=no_nul(company_id[:128]) if company_id else None,
            path=no_nul(path[:512]),
            status_code=exc.status,
            reason=no_nul(f"{exc.code}: {exc.message}"[:1000]),
            headers=kept_headers(headers, source),
            body_excerpt=no_nul(body[:EXCERPT_BYTES].decode("utf-8", "replace")),
            body_bytes=len(body),
        )
        try:
            await st.writer.land(rejected=[row])
        except WriterUnavailable:
            log.warning("could not record a refused request (%s)", exc.code)
    else:
        metrics.REJECTIONS_NOT_RECORDED.labels(source).inc()
    extra = dict(exc.extra)
    headers_out = {}
    if retry_after := extra.pop("retry_after", None):
        headers_out["retry-after"] = retry_after
    if exc.status == 408:
        # The rest of the body may still come: the connection cannot carry another request.
        headers_out["connection"] = "close"
    return problem(exc.status, exc.code, exc.message, headers_out, **extra)


def unavailable(source: str, exc: Exception) -> Answer:
    metrics.UNAVAILABLE.labels(source).inc()
    log.warning("answering 503: %s", exc)
    if isinstance(exc, CommitUnknown):
        message = (
            "may have committed: ingest stopped before the database could tell; send "
            "the same ids again (what did land is answered duplicate)"
        )
        code = "commit_unknown"
    else:
        message = (
            "events not committed: nothing of this request was stored; send it again "
            "after Retry-After"
        )
        code = "unavailable"
    return problem(503, code, message, {"retry-after": "1"})


def problem(status: int, code: str, message: str, headers: dict[str, str], **extra: Any) -> Answer:
    """A refusal as application/problem+json (partner_signals.problems), which also keeps
    the `error` object ({code, message, ...}) ingest answered before it, for clients that
    read it."""
    body = {"error": {"code": code, "message": message, **extra}}
    body.update(problem_body(status, code, message, **extra))
    return Answer(status, orjson.dumps(body), headers, PROBLEM)


def count_lines(body: bytes) -> int:
    """Lines of an NDJSON body, the last one without its line end included (C speed)."""
    return body.count(b"\n") + (not body.endswith(b"\n"))


def ndjson_lines(body: bytes) -> Iterator[bytes]:
    """The non-blank lines of `body`, one at a time (no list of 300,000 lines at once)."""
    start, end = 0, len(body)
    while start < end:
        stop = body.find(b"\n", start)
        if stop < 0:
            stop = end
        line = body[start:stop].strip()
        if line:
            yield line
        start = stop + 1


def pos_rows(
    body: bytes,
    *,
    single: bool,
    company_id: str,
    restaurants: frozenset[str],
    received_at: datetime,
    window: TimeWindow,
    headers: str,
) -> tuple[list[OrderRow], bytes]:
    """The rows of a POS request and their JSON for the writer, or Refused with the
    first MAX_PROBLEMS bad events: 422 when every problem is a value of the wrong kind or
    out of range, 400 when some line is not an event at all; 422 for a restaurant the
    company does not have. Pure CPU: run through `IngestState.off_loop`."""
    # Each event becomes its row at once: the validated model is dropped, so a batch
    # of 10,000 leaves 10,000 objects for the garbage collector to walk, not 60,000.
    rows: list[OrderRow] = []
    problems = []
    refusal = 422
    seen_restaurants = set()
    lines = [body] if single else ndjson_lines(body)
    for number, line in enumerate(lines, 1):
        try:
            e = parse_pos_event(line, window)
        except InvalidPosEvent as exc:
            problems.append({"line": number, "message": str(exc)})
            refusal = min(refusal, exc.status)
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        if problems:
            continue  # the batch is refused: only its problems matter now
        seen_restaurants.add(e.restaurant_id)
        rows.append(
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
        )
    if problems:
        if single:
            raise Refused(refusal, "invalid_event", str(problems[0]["message"]))
        first = problems[0]
        raise Refused(
            refusal, "invalid_event", f"line {first['line']}: {first['message']}", problems=problems
        )
    if not rows:
        raise Refused(400, "empty_batch", "no events in the body")
    strangers = sorted(seen_restaurants - restaurants)
    if strangers:
        raise Refused(
            422, "unknown_restaurant", f"not a restaurant of this company: {strangers[0][:64]!r}"
        )
    return rows, encode_rows(rows)


async def land_or_refuse(st: IngestState, **rows: Any) -> list[bool]:
    try:
        return await st.writer.land(**rows)
    except UnstorableRows as exc:
        raise Refused(400, "unstorable_event", f"PostgreSQL cannot store it: {exc}") from None


def identify_webhook(handler: Provider, body: bytes, headers: Mapping[str, str]) -> tuple[str, str]:
    """(event id, event type) of a verified webhook body, or Refused (400)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, "malformed_json", f"body is not JSON: {exc}") from None
    try:
        return handler.identify(payload, headers)
    except MalformedEvent as exc:
        raise Refused(400, "malformed_event", str(exc)) from None


def check_restaurant_scope(
    provider: str, body: bytes, headers: Mapping[str, str], creds: Credentials
) -> None:
    """Refused (404, as for no integration at all) unless the event's restaurant is one
    the company enabled this provider for, when it enabled it per restaurant. Its own
    code, so the integration's status counts these apart from unknown companies."""
    refusal = restaurant_refusal(provider, body, headers, creds)
    if refusal:
        raise Refused(404, "restaurant_not_enabled", refusal)


async def handle_webhook(
    st: IngestState,
    *,
    provider: str,
    company_id: str,
    path: str,
    headers: Mapping[str, str],
    read_body: BodyReader,
) -> Answer:
    received_at = datetime.now(UTC)
    body = b""
    source = provider if provider in PROVIDERS else "unknown"
    try:
        handler = PROVIDERS.get(provider)
        if handler is None:
            raise Refused(404, "unknown_provider", f"no provider named {provider[:40]!r}")
        if media_type(headers) not in JSON_TYPES:
            raise Refused(415, "unsupported_media_type", "send application/json")
        body = await read_body(st.settings.max_body_bytes)
        if not is_id(company_id):
            raise Refused(404, "unknown_company", f"no {provider} integration for this company")
        creds = await st.directory.credentials(company_id, provider)
        if creds is None:
            raise Refused(404, "unknown_company", f"no {provider} integration for this company")
        try:
            handler.verify(body, headers, creds, st.clock())
        except SignatureError as exc:
            raise Refused(401, "invalid_signature", str(exc)) from None
        st.check_rate(company_id, provider)
        check_storable(body)
        event_id, event_type = await st.off_loop(
            len(body), identify_webhook, handler, body, headers
        )
        if creds.restaurants is not None:
            check_restaurant_scope(provider, body, headers, creds)
        row = WebhookRow(
            source=provider,
            company_id=company_id,
            event_id=event_id,
            event_type=event_type,
            received_at=received_at,
            headers=kept_headers(headers, provider),
            body=body.decode(),
        )
        (new,) = await land_or_refuse(st, webhooks=[row])
    except Refused as exc:
        return await refuse(
            st,
            exc,
            path=path,
            headers=headers,
            source=source,
            company_id=company_id,
            body=body,
            received_at=received_at,
        )
    except (WriterUnavailable, psycopg.Error, OSError) as exc:
        return unavailable(source, exc)
    outcome = "accepted" if new else "duplicate"
    metrics.EVENTS.labels(provider, outcome).inc()
    return answer(200, {"status": outcome, "event_id": event_id})


async def handle_pos(
    st: IngestState, *, path: str, headers: Mapping[str, str], read_body: BodyReader
) -> Answer:
    received_at = datetime.now(UTC)
    body = b""
    company_id: str | None = None
    try:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(401, "missing_key", "send Authorization: Bearer <ingest key>")
        company_id = await st.directory.company_for_key(token.strip())
        if company_id is None:
            raise Refused(401, "invalid_key", "unknown or revoked ingest key")
        # Before the body is read: a company already over its limit costs nothing more.
        st.check_rate_open(company_id, "pos")
        kind = media_type(headers)
        if kind not in JSON_TYPES and kind not in NDJSON_TYPES:
            raise Refused(
                415, "unsupported_media_type", "send application/json or application/x-ndjson"
            )
        body = await read_body(st.settings.max_body_bytes)
        single = kind in JSON_TYPES
        if not single:
            check_batch_size(body, st.settings.ingest_max_batch_events)
        # Every event costs a token, counted before any parsing: an over-limit batch is
        # refused whole, at the price of counting its line ends.
        st.check_rate(company_id, "pos", cost=1 if single else count_lines(body))
        check_storable(body)
        known = await st.directory.restaurants(company_id)
        rows, encoded = await st.off_loop(
            len(body),
            pos_rows,
            body,
            single=single,
            company_id=company_id,
            restaurants=known,
            received_at=received_at,
            window=st.occurred_at_window(received_at),
            headers=kept_headers(headers, "pos"),
        )
        flags = await land_or_refuse(st, orders=rows, orders_json=encoded)
    except Refused as exc:
        return await refuse(
            st,
            exc,
            path=path,
            headers=headers,
            source="pos",
            company_id=company_id,
            body=body,
            received_at=received_at,
        )
    except (WriterUnavailable, psycopg.Error, OSError) as exc:
        return unavailable("pos", exc)
    accepted = sum(flags)
    if accepted:
        metrics.POS_ACCEPTED.inc(accepted)
    if accepted < len(flags):
        metrics.POS_DUPLICATE.inc(len(flags) - accepted)
    if single:
        status = "accepted" if flags[0] else "duplicate"
        return answer(200, {"status": status, "event_id": rows[0].event_id})
    return answer(
        200,
        {
            "received": len(flags),
            "accepted": accepted,
            "duplicates": len(flags) - accepted,
            "duplicate_event_ids": [r.event_id for r, f in zip(rows, flags, strict=True) if not f],
        },
    )
