"""Partner API request metrics: count, latency and status per route template, never ids.

The route label is the path template the request matched
(`/v1/restaurants/{restaurant_id}/workforce`), `unmatched` when none did: a 404 for an
invented path adds no series. Multi-process aware like ingest (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "partner_signals_api_requests_total",
    "Partner API requests by method, route template and HTTP status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "partner_signals_api_request_seconds",
    "Partner API request time, first byte in to last byte out, by method and route template",
    ["method", "route"],
    # The API's goal is p99 <= 20 ms (docs/benchmarks.md): fine steps up to there.
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0, 5.0),
)
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware (not BaseHTTPMiddleware: no task or stream per request). The router
    records the matched route in the scope; the label children are bound once per
    (method, route, status) so a request costs two dict lookups and two increments."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # an exception before any answer: ServerErrorMiddleware sends a 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self._record(scope, status, perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        counter = self._counters.get((method, template, status))
        if counter is None:
            counter = REQUESTS.labels(method, template, str(status))
            self._counters[(method, template, status)] = counter
        timer = self._timers.get((method, template))
        if timer is None:
            timer = LATENCY.labels(method, template)
            self._timers[(method, template)] = timer
        counter.inc()
        timer.observe(seconds)
