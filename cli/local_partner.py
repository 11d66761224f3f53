"""The demo's partner: an HTTP endpoint on 127.0.0.1 that verifies every push it receives
with the Standard Webhooks library, as a partner holding the signing secret would."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Received:
    """One push as the partner saw it: verified (and parsed) or refused, and why."""

    webhook_id: str
    verified: bool
    payload: Any = None
    error: str = ""

    @property
    def event_type(self) -> str:
        return str(self.payload.get("type", "")) if isinstance(self.payload, dict) else ""


def verify_push(secret: str, body: bytes, headers: dict[str, str]) -> Received:
    """Check one request's Standard Webhooks signature (webhook-id, -timestamp and
    -signature headers, 5 minutes' tolerance) with the library a partner would use."""
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook_id = lowered.get("webhook-id", "")
    try:
        payload = Webhook(secret).verify(body, lowered)
    except (WebhookVerificationError, ValueError) as exc:  # binascii.Error is a ValueError
        return Received(webhook_id, verified=False, error=str(exc) or type(exc).__name__)
    return Received(webhook_id, verified=True, payload=payload)


class LocalPartner:
    """A partner endpoint on an ephemeral port of 127.0.0.1, served from a thread:
    204 for a push whose signature verifies, 401 otherwise. `received` keeps every
    push in arrival order. Use as a context manager."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self._lock = threading.Lock()
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self.send_response(413)
                    self.end_headers()
                    return
                body = self.rfile.read(length)
                seen = verify_push(partner.secret, body, dict(self.headers.items()))
                with partner._lock:
                    partner.received.append(seen)
                self.send_response(204 if seen.verified else 401)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the demo prints what arrived; no access log on its console

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks"

    def __enter__(self) -> LocalPartner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)
