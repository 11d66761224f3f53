"""Token buckets with a cost: a request passes whole or not at all, and says when it would."""

from __future__ import annotations

from partner_signals.ratelimit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_request_costing_more_than_what_is_left_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 10, clock=clock)
    assert limiter.take("a", 6) == 0.0  # 10 -> 4
    assert limiter.take("a", 6) == 1.0  # needs 2 more tokens at 2/s
    assert limiter.take("a", 4) == 0.0  # the refused request took nothing
    assert limiter.take("a") == 0.5


def test_a_cost_over_the_burst_waits_for_a_full_bucket_then_leaves_a_debt() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 10, clock=clock)
    limiter.take("a", 4)  # 10 -> 6
    assert limiter.take("a", 25) == 4.0  # until the bucket is full
    clock.now = 4.0
    assert limiter.take("a", 25) == 0.0  # 10 -> -15
    assert limiter.wait("a") == 16.0  # one token needs 16 s
    assert limiter.take("b", 1) == 0.0  # keys are apart


def test_wait_takes_nothing() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.wait("a") == 0.0
    assert limiter.take("a") == 0.0
    assert limiter.wait("a") == 1.0
    assert retry_after_header(0.2) == "1" and retry_after_header(16.0) == "16"
