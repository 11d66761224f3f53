"""uvicorn's HTTP protocol, with limits on the request head a sender controls.

uvicorn (on httptools) bounds neither the request head nor the time taken to send it: a
client can send megabytes of headers, or hold a connection by sending nothing, or a byte
now and then. This protocol, given to uvicorn as
`--http partner_signals.http_limits:LimitedHttpProtocol` (`processes.uvicorn_cmd` does),
answers before any app runs:

- 414 when the request target is over `http_max_url_bytes`;
- 431 when there are more than `http_max_header_count` header fields or their names and
  values add up to more than `http_max_header_bytes`. These are checked once the head is
  parsed (a comparison or two a request, no call per header), and the head's size is
  also checked as it arrives: a head still incomplete past the sum of the limits is
  refused then (431, or for a target too long to fit, still 431), so what httptools
  buffers of one endless header stays within one read (256 KiB) plus the limits;
- 408 when a request's head is not complete `http_header_timeout_seconds` after its
  first byte;
- and closes, without an answer, a connection that has no request under way for
  `http_idle_timeout_seconds` (uvicorn's keep-alive timeout, which uvicorn arms only
  after an answer; here from the connect too).

Each refusal closes the connection (the rest of what was sent cannot be framed) and is
counted in `partner_signals_http_refused_total`. The body's deadline is the handler's:
ingest reads bodies within `http_body_timeout_seconds` (ingest.app), the only routes
that read one. After an early answer (say a 401 before the body was read) the rest of
the body must arrive within the header timeout, or the connection is closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any

import orjson
from prometheus_client import Counter
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from partner_signals.problems import MEDIA_TYPE, new_request_id, problem_body
from partner_signals.settings import Settings, get_settings

# The import string uvicorn's --http takes.
PROTOCOL = "partner_signals.http_limits:LimitedHttpProtocol"
# The longest a refused connection is kept open to read and discard what is still coming.
LINGER_SECONDS = 2.0

REFUSED = Counter(
    "partner_signals_http_refused_total",
    "Requests refused by the HTTP layer before any handler ran, by reason",
    ["reason"],
)


@dataclass(frozen=True)
class Limits:
    max_url_bytes: int
    max_header_count: int
    max_header_bytes: int
    header_timeout: float
    idle_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_url_bytes=settings.http_max_url_bytes,
            max_header_count=settings.http_max_header_count,
            max_header_bytes=settings.http_max_header_bytes,
            header_timeout=settings.http_header_timeout_seconds,
            idle_timeout=settings.http_idle_timeout_seconds,
        )

    @property
    def max_head_bytes(self) -> int:
        """The most a whole head within the limits can take on the wire: request line,
        header fields, and ": " and CRLF around each."""
        return self.max_url_bytes + self.max_header_bytes + 4 * self.max_header_count + 64


@cache
def limits() -> Limits:
    return Limits.of(get_settings())


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


class _HeadRefused(Exception):
    """Stops the parser from inside a callback (httptools wraps it in an HttpParserError,
    which uvicorn answers through send_400_response, overridden below)."""


def refusal_bytes(refusal: Refusal) -> bytes:
    """The whole answer: status line, headers, the problem+json body every API answers
    (with ingest's `error` object). The head was not read whole: the request id is new."""
    rid = new_request_id()
    body = orjson.dumps(
        {
            "error": {"code": refusal.code, "message": refusal.message},
            **problem_body(refusal.status, refusal.code, refusal.message, rid=rid),
        }
    )
    phrase = HTTPStatus(refusal.status).phrase
    return (
        f"HTTP/1.1 {refusal.status} {phrase}\r\n"
        f"content-type: {MEDIA_TYPE}\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-request-id: {rid}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


class LimitedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the limits above; everything else is uvicorn's."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits()
        # uvicorn's option is whole seconds; the setting is a float (tests use fractions).
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_open = False  # between a request's first byte and the end of its headers
        self.messages = 0
        self.head_seen = 0  # bytes of the head being received, after its first chunk
        self.chunk_bytes = 0
        self.refusal: Refusal | None = None

    # -- the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after an answer: a connection that never
        # sends a byte would be held for ever.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refusal is not None:
            return  # answered and closing: the rest is not read
        open_before, messages_before = self.head_open, self.messages
        self.chunk_bytes = len(data)
        super().data_received(data)
        if self.refusal is not None or self.transport.is_closing():
            return
        if open_before and self.head_open and self.messages == messages_before:
            # The whole chunk belongs to a head still incomplete: httptools buffers a
            # header until it ends, so the head's size is checked here, as it arrives.
            self.head_seen += len(data)
            if self.head_seen > self.limits.max_head_bytes:
                message = f"request head over {self.limits.max_head_bytes} bytes"
                self.refuse(Refusal(431, "headers_too_large", message))
                return
        if self.head_timer is None and (
            self.head_open or self.cycle is None or self.cycle.response_complete
        ):
            # A head begun and not finished, or bytes with no request under way (the tail
            # of a body answered early): either way they have header_timeout to get
            # somewhere. Armed after the bytes are parsed, so a head that arrives whole,
            # the usual case, costs no timer at all.
            self.head_timer = self.loop.call_later(self.limits.header_timeout, self.head_timed_out)

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.messages += 1
        self.head_open = True
        self.head_seen = 0

    def on_headers_complete(self) -> None:
        self.head_open = False
        self.cancel_head_timer()
        # Checked once the head is parsed: its size was bounded while it arrived, so
        # counting here costs a comparison or two, not a call per header.
        limits = self.limits
        if len(self.url) > limits.max_url_bytes:
            self.stop(
                Refusal(414, "url_too_long", f"request target over {limits.max_url_bytes} bytes")
            )
        if len(self.headers) > limits.max_header_count:
            self.stop(
                Refusal(
                    431, "too_many_headers", f"more than {limits.max_header_count} header fields"
                )
            )
        if self.head_seen + self.chunk_bytes > limits.max_header_bytes and (
            sum(len(name) + len(value) for name, value in self.headers) > limits.max_header_bytes
        ):
            self.stop(
                Refusal(
                    431, "headers_too_large", f"header fields over {limits.max_header_bytes} bytes"
                )
            )
        super().on_headers_complete()

    # -- refusing

    def stop(self, refusal: Refusal) -> None:
        self.refusal = refusal
        raise _HeadRefused(refusal.code)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to any parser error, ours included (it logs a warning first).
        if self.refusal is None:
            super().send_400_response(msg)
        else:
            self.refuse(self.refusal)

    def refuse(self, refusal: Refusal) -> None:
        self.refusal = refusal
        self.cancel_head_timer()
        self._unset_keepalive_if_required()
        REFUSED.labels(refusal.code).inc()
        if self.transport.is_closing():
            return
        self.transport.write(refusal_bytes(refusal))
        if self.transport.can_write_eof():
            # A lingering close: closing a socket with unread input sends a reset, which
            # can destroy the answer before the client reads it (the client is most
            # likely still sending its 4 MiB of headers). Say we are done, discard what
            # still comes, and close when the client does or the linger is over.
            self.transport.write_eof()
            self.loop.call_later(min(LINGER_SECONDS, self.limits.header_timeout), self.close)
        else:
            self.transport.close()

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.head_open:
            self.refuse(
                Refusal(
                    408,
                    "header_timeout",
                    f"headers not received within {self.limits.header_timeout:g} s",
                )
            )
        else:
            # Only the tail of a body already answered, or nothing: close quietly.
            self.transport.close()

    def cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
