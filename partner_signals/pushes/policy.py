"""Retry schedule and failure rules: what an answer means, whose fault it is, when to retry,
and what an attempt leaves in the outbox. Pure functions, tested without a server."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

import httpcore
import httpx

Kind = Literal["delivered", "retry", "failed", "gone"]
Fault = Literal["partner", "ours", "credentials"]
# What one attempt did: a verdict's kind, or deferred (not sent: its endpoint is backing off).
Outcome = Literal["delivered", "retry", "deferred", "failed", "gone"]
# The outbox status an attempt leaves.
Status = Literal["delivered", "pending", "dead"]

# What httpx turns into its TransportError subclasses (httpx/_transports/default.py).
HTTPCORE_TRANSPORT_ERRORS = (
    httpcore.NetworkError
    | httpcore.ProtocolError
    | httpcore.ProxyError
    | httpcore.UnsupportedProtocol
)

# Answers worth retrying: the partner asked us to come back later, or broke for now.
RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter. The defaults try 8 times over about 2.5 hours
    (0, 5 s, 25 s, 1m45, 7m, 28m, 1h28, 2h28 from the first try, ±20%), so a partner
    that is down for an hour is still being tried when it comes back."""

    max_attempts: int = 8
    base_seconds: float = 5.0
    factor: float = 4.0
    cap_seconds: float = 3600.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        raw = min(self.cap_seconds, self.base_seconds * self.factor ** (attempt - 1))
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return min(self.cap_seconds, raw * spread)

    def min_span_seconds(self) -> float:
        """The shortest time between the first and the last try, jitter at its lowest."""
        return sum(
            min(self.cap_seconds, self.base_seconds * self.factor ** (n - 1)) * (1 - self.jitter)
            for n in range(1, self.max_attempts)
        )


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    fault: Fault
    reason: str


def judge_status(code: int) -> Verdict:
    """The meaning of an HTTP answer. 2xx delivered; 410 the endpoint is gone for good;
    408/425/429 and 5xx come back later; any other 4xx will not get better by repeating
    the same request (bad payload, bad credentials, no such path), so it is dead at once."""
    if 200 <= code < 300:
        return Verdict("delivered", "partner", "")
    if code == 410:
        return Verdict("gone", "partner", "endpoint gone (410)")
    if code in RETRYABLE_4XX or code >= 500:
        return Verdict("retry", "partner", f"HTTP {code}")
    if code in (401, 403):
        return Verdict("failed", "partner", f"credentials refused (HTTP {code})")
    if 300 <= code < 400:
        # Redirects are not followed: a signed request must not wander to another host.
        return Verdict("failed", "partner", f"redirect (HTTP {code}) not followed")
    return Verdict("failed", "partner", f"HTTP {code}")


def judge_exception(exc: BaseException) -> Verdict:
    """Failures with no answer. The rule for fault: if the request left us and the
    partner's side did not answer in time (refused, reset, read timeout, bad TLS), it is
    the partner's; if it never left us whole (our pool was exhausted, the message could
    not be serialised, credentials would not open, a bug in an adapter), it is ours."""
    # httpcore's exceptions (the worker's own sender) are judged like the httpx ones that
    # wrap them when httpx sends: same names, same verdicts.
    if isinstance(exc, httpx.PoolTimeout | httpcore.PoolTimeout):
        return Verdict("retry", "ours", "timed out waiting for a connection of ours")
    if isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException | TimeoutError):
        return Verdict("retry", "partner", f"no answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.TransportError | HTTPCORE_TRANSPORT_ERRORS):
        return Verdict("retry", "partner", f"could not reach the endpoint ({type(exc).__name__})")
    if isinstance(exc, TypeError | ValueError | KeyError):
        # Deterministic: the same message fails the same way on every try.
        return Verdict("failed", "ours", f"could not build the request ({type(exc).__name__})")
    return Verdict("retry", "ours", f"unexpected error ({type(exc).__name__})")


def next_attempt_at(
    policy: RetryPolicy,
    attempt: int,
    now: datetime,
    *,
    retry_after: str | None,
    rng: random.Random,
    min_seconds: float,
) -> datetime:
    """When a message whose attempt number `attempt` is to be retried is due again: the
    policy's back-off, or the partner's Retry-After capped at the policy's cap, never
    sooner than `min_seconds`."""
    delay = policy.delay(attempt, rng)
    asked = parse_retry_after(retry_after, now)
    if asked is not None:
        delay = min(asked, policy.cap_seconds)
    return now + timedelta(seconds=max(delay, min_seconds))


def settle(
    outcome: Outcome,
    attempt: int,
    *,
    reason: str,
    error: str | None,
    max_attempts: int,
    error_chars: int,
) -> tuple[Status, str | None]:
    """The outbox status attempt number `attempt` leaves, and the error text it records
    (the verdict's `reason` when no other text was given)."""
    if error is None and outcome != "delivered":
        error = reason[:error_chars] or None
    if outcome == "delivered":
        return "delivered", error
    if outcome in ("retry", "deferred") and attempt < max_attempts:
        return "pending", error
    if outcome in ("retry", "deferred"):
        error = f"gave up after {attempt} attempts: {error}"[:error_chars]
    return "dead", error


AUTH_VALUE = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]+")


def redact(text: str, secrets: list[str], limit: int) -> str:
    """Partner answers sometimes echo what they were sent; strip credentials from them."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = AUTH_VALUE.sub(r"\1 [redacted]", text)
    text = " ".join(text.split())
    return text[:limit]
