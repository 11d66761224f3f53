"""What an attempt leaves in the outbox, computed without a server: next time, status, error."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from partner_signals.pushes.policy import RetryPolicy, next_attempt_at, redact, settle

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def due_after(attempt: int, retry_after: str | None = None, min_seconds: float = 1.0) -> float:
    when = next_attempt_at(
        POLICY, attempt, NOW, retry_after=retry_after, rng=random.Random(7), min_seconds=min_seconds
    )
    return (when - NOW).total_seconds()


def test_a_retry_waits_the_policy_back_off() -> None:
    assert abs(due_after(2) - POLICY.delay(2, random.Random(7))) < 1e-6  # timedelta's µs
    assert 16 <= due_after(2) <= 24  # 5 s * 4, within the jitter


def test_retry_after_replaces_the_back_off() -> None:
    assert due_after(2, retry_after="120") == 120


def test_retry_after_is_capped_at_the_policy_cap() -> None:
    assert due_after(2, retry_after="86400") == POLICY.cap_seconds


def test_a_retry_is_never_sooner_than_the_minimum() -> None:
    assert due_after(2, retry_after="0", min_seconds=1.0) == 1.0


def test_an_unreadable_retry_after_keeps_the_back_off() -> None:
    assert due_after(3, retry_after="soon") == due_after(3)


def test_a_delivered_attempt_leaves_delivered_and_no_error() -> None:
    assert settle("delivered", 1, reason="", error=None, max_attempts=8, error_chars=300) == (
        "delivered",
        None,
    )


def test_a_retry_before_the_last_attempt_stays_pending_with_its_reason() -> None:
    assert settle("retry", 7, reason="HTTP 503", error=None, max_attempts=8, error_chars=300) == (
        "pending",
        "HTTP 503",
    )


def test_a_deferred_message_on_its_last_attempt_gives_up() -> None:
    status, error = settle(
        "deferred", 8, reason="deferred: HTTP 503", error=None, max_attempts=8, error_chars=300
    )
    assert status == "dead"
    assert error == "gave up after 8 attempts: deferred: HTTP 503"


def test_a_refusal_is_dead_at_once_and_keeps_the_given_error() -> None:
    assert settle(
        "failed", 1, reason="HTTP 400", error="HTTP 400: bad", max_attempts=8, error_chars=300
    ) == ("dead", "HTTP 400: bad")


def test_the_error_text_is_cut_to_its_limit() -> None:
    status, error = settle("retry", 8, reason="x" * 500, error=None, max_attempts=8, error_chars=40)
    assert status == "dead" and error is not None and len(error) == 40


def test_redact_strips_credentials_and_tokens() -> None:
    text = redact("echo: key=sk_live_1234 Authorization: Bearer abc.def\n", ["sk_live_1234"], 300)
    assert text == "echo: key=[redacted] Authorization: Bearer [redacted]"


def test_redact_leaves_secrets_too_short_to_be_secrets() -> None:
    assert redact("id 123 ok", ["123"], 300) == "id 123 ok"
