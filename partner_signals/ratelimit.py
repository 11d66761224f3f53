"""Per-key token buckets: a burst is allowed, a sustained excess gets 429 and Retry-After."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """In-process limits. Each replica limits on its own, so the effective limit
    is per replica; good enough to stop a runaway client without shared state.

    A request may cost more than one token (ingest: one per event of a batch). It
    passes whole or not at all: when the bucket holds `cost` tokens, or, for a cost
    above the burst (which could never be saved up), when the bucket is full; the
    bucket then goes negative and the key waits until it has paid the excess back."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def _refill(self, key: Hashable) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:  # bound memory against floods of new keys
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        return bucket

    def take(self, key: Hashable, cost: float = 1.0) -> float:
        """0 when allowed (and `cost` tokens taken), else the seconds to wait before a
        request of this cost may pass (nothing taken)."""
        bucket = self._refill(key)
        needed = min(cost, self.burst)
        if bucket.tokens >= needed:
            bucket.tokens -= cost
            return 0.0
        return (needed - bucket.tokens) / self.rate

    def wait(self, key: Hashable) -> float:
        """The seconds before even a request of cost 1 could pass (0: now); takes nothing.
        Lets a caller refuse before reading a body whose cost it does not know yet."""
        bucket = self._refill(key)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
