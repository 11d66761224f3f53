"""Per-endpoint state of a worker: concurrency, the slow-start probe, back-off (the
circuit), gone endpoints and queued counts. One endpoint is one integration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from partner_signals.pushes.policy import Verdict


@dataclass
class Endpoint:
    semaphore: asyncio.Semaphore
    queued: int = 0
    # Slow start: until an endpoint answers, one request probes it alone; a partner that
    # is down gets one request per retry round, not one per waiting message.
    open: bool = False
    probe: asyncio.Event | None = None
    backoff_until: datetime | None = None
    backoff_reason: str = ""
    gone: bool = False

    async def acquire(self, overall: asyncio.Semaphore) -> bool:
        """Wait for a turn to send, holding one of the `overall` slots; True when this
        request is the probe. Pair with `release`."""
        while not self.open:
            if self.probe is not None:
                await self.probe.wait()
                continue
            self.probe = asyncio.Event()
            try:
                await overall.acquire()
            except BaseException:
                self._end_probe()
                raise
            return True
        # The endpoint's own limit first: waiting for a slow partner must not hold
        # one of the overall slots that other partners need.
        await self.semaphore.acquire()
        try:
            await overall.acquire()
        except BaseException:
            self.semaphore.release()
            raise
        return False

    def release(self, overall: asyncio.Semaphore, probing: bool) -> None:
        overall.release()
        if probing:
            self._end_probe()
        else:
            self.semaphore.release()

    def _end_probe(self) -> None:
        probe, self.probe = self.probe, None
        if probe is not None:
            probe.set()

    def holding_back(self, now: datetime) -> tuple[Verdict, datetime | None] | None:
        """Why a message to this endpoint is not sent now, with the time it is due again;
        None when it may be sent."""
        if self.gone:
            return Verdict("gone", "partner", "endpoint gone (410)"), None
        if self.backoff_until is not None and now < self.backoff_until:
            # The endpoint just failed; this message shares that failure's next time
            # instead of hammering a partner that is down (logged, nothing sent).
            return Verdict(
                "retry", "partner", f"deferred: {self.backoff_reason}"
            ), self.backoff_until
        return None

    def learn(
        self, verdict: Verdict, next_at: datetime | None, *, attempt: int, max_attempts: int
    ) -> None:
        """What an answer (or its absence) says about the endpoint."""
        if verdict.kind == "retry":
            if verdict.fault == "partner" and attempt < max_attempts and next_at is not None:
                self.open = False
                self.backoff_until = max(next_at, self.backoff_until or next_at)
                self.backoff_reason = verdict.reason
        elif verdict.kind == "gone":
            self.gone = True
        else:
            # Delivered, or refused this message (4xx): either way the partner is up.
            self.open = True
            self.backoff_until = None


class Endpoints:
    """Every endpoint one worker has claimed for, created on first use."""

    def __init__(self, *, per_endpoint: int, per_endpoint_queue: int) -> None:
        self.per_endpoint = per_endpoint
        self.per_endpoint_queue = per_endpoint_queue
        self.states: dict[int, Endpoint] = {}

    def get(self, integration_id: int) -> Endpoint:
        state = self.states.get(integration_id)
        if state is None:
            state = Endpoint(asyncio.Semaphore(self.per_endpoint))
            self.states[integration_id] = state
        return state

    def full(self) -> list[int]:
        """Endpoints holding as many claimed, unfinished messages as they may."""
        return [i for i, s in self.states.items() if s.queued >= self.per_endpoint_queue]

    def revive(self, integration_ids: set[int]) -> None:
        """Integrations found enabled again: an endpoint marked gone may be sent to."""
        for integration_id in integration_ids:
            state = self.states.get(integration_id)
            if state is not None:
                state.gone = False
