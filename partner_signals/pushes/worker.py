"""The push worker's loop: claim due outbox rows, schedule each on its endpoint, record
every attempt, flush the records in batches.

The parts it drives: `store` (the outbox SQL), `endpoints` (per-endpoint concurrency and
back-off), `transport` (how a request is sent), `policy` (what an answer means)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

from partner_signals.adapters import ADAPTERS, Target
from partner_signals.platforms.adapter import PLATFORM_ADAPTERS
from partner_signals.pushes import metrics
from partner_signals.pushes.endpoints import Endpoint, Endpoints
from partner_signals.pushes.policy import (
    Outcome,
    RetryPolicy,
    Verdict,
    judge_exception,
    judge_status,
    next_attempt_at,
    redact,
    settle,
)
from partner_signals.pushes.store import Claimed, OutboxStore, Result
from partner_signals.pushes.transport import Transport
from partner_signals.settings import Settings, get_settings

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)
# The lease defaults are declared once, as settings; WorkerOptions() takes them from there.
_SETTINGS = Settings.model_fields


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 500
    per_endpoint: int = 16  # concurrent requests to one integration
    overall: int = 256  # concurrent requests in all
    # Claimed but unfinished deliveries one endpoint may hold: a slow partner fills its
    # own queue and the claim loop keeps claiming everyone else's.
    per_endpoint_queue: int = 64
    timeout: float = 10.0  # one request, connect to last byte
    # A claimed row is due again this long after its worker's last renewal (if it dies);
    # the worker renews what it holds every renew_seconds. See store.py.
    lease_seconds: float = _SETTINGS["push_lease_seconds"].default
    renew_seconds: float = _SETTINGS["push_lease_renew_seconds"].default
    flush_interval: float = 0.05
    flush_rows: int = 1000
    poll_interval: float = 0.5  # forever mode: sleep when nothing is due
    target_ttl: float = 30.0  # forever mode: re-read integrations (rotations, disables)
    error_chars: int = 300
    min_retry_seconds: float = 1.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 0 < self.renew_seconds < self.lease_seconds:
            raise ValueError("renew_seconds must be above 0 and below lease_seconds")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerOptions:
        """The options a deployment sets through the environment (the lease), and the
        defaults for the rest."""
        values: dict[str, Any] = {
            "lease_seconds": settings.push_lease_seconds,
            "renew_seconds": settings.push_lease_renew_seconds,
        }
        return cls(**(values | overrides))


@dataclass
class RunSummary:
    claimed: int = 0
    reclaimed: int = 0  # of those, taken over from a worker that died holding them
    delivered: int = 0
    retried: int = 0
    deferred: int = 0
    dead: int = 0
    endpoints_gone: int = 0
    by_adapter: dict[str, Counter[str]] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.claimed} due: {self.delivered} delivered, {self.retried} to retry, "
            f"{self.deferred} deferred, {self.dead} dead-lettered"
            + (f", {self.endpoints_gone} endpoints gone (disabled)" if self.endpoints_gone else "")
            + (
                f", {self.reclaimed} taken over from a worker that died holding them"
                if self.reclaimed
                else ""
            )
        )


class DeliveryRun:
    """One worker's run: claim -> schedule -> record -> flush, until nothing is due (or
    `stop`, forever)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        key: bytes,
        client: httpx.AsyncClient | None,
        clock: Clock,
        options: WorkerOptions,
        rng: random.Random | None = None,
        company_id: str | None = None,
    ) -> None:
        self.store = OutboxStore(
            engine,
            key=key,
            clock=clock,
            lease_seconds=options.lease_seconds,
            company_id=company_id,
        )
        self.transport = Transport(
            client=client, timeout=options.timeout, per_endpoint=options.per_endpoint
        )
        self.endpoints = Endpoints(
            per_endpoint=options.per_endpoint, per_endpoint_queue=options.per_endpoint_queue
        )
        self.clock = clock
        self.options = options
        self.rng = rng or random.Random()
        self.summary = RunSummary()
        self.targets_loaded_at = 0.0
        self.renewed_at = time.monotonic()
        self.results: list[Result] = []
        self.recorded = 0  # results recorded in this run
        # One flush at a time: a caller that awaits flush() knows what came before is written.
        self.flush_lock = asyncio.Lock()
        self.gone: set[int] = set()
        self.overall = asyncio.Semaphore(options.overall)
        self.inflight: set[asyncio.Task[None]] = set()
        # Set whenever an in-flight task finishes: waiting on it is O(1) per completion,
        # where asyncio.wait(self.inflight) hooks and unhooks every task on each call.
        self.finished = asyncio.Event()

    async def aclose(self) -> None:
        await self.transport.aclose()

    # -- claim (in a thread, the event loop keeps sending) ---------------------------------

    async def _claim(self, limit: int, due_by: datetime, skip: list[int]) -> list[Claimed]:
        claimed, enabled = await asyncio.to_thread(self.store.claim, limit, due_by, skip)
        if enabled:
            self.endpoints.revive(enabled)
        reclaimed = [c for c in claimed if c.reclaimed]
        if reclaimed:
            self.summary.reclaimed += len(reclaimed)
            for item in reclaimed:
                metrics.RECLAIMED.labels(item.adapter).inc()
            log.warning(
                "took over %s deliveries another worker claimed and did not finish "
                "(it died or stalled past its lease); the partner may get them twice",
                len(reclaimed),
            )
        return claimed

    # -- schedule: one task per claimed row, on its endpoint's turn ------------------------

    async def _process(self, item: Claimed) -> None:
        state = self.endpoints.get(item.integration_id)
        try:
            probing = await state.acquire(self.overall)
            try:
                result = await self._attempt(item, state)
            finally:
                state.release(self.overall, probing)
            self._record(result)
        finally:
            state.queued -= 1

    def _record(self, result: Result) -> None:
        # Not `self.results.append(await ...)`: that binds the list before the await, and
        # the flusher may have swapped it for a new one by the time the answer comes.
        self.results.append(result)
        self.recorded += 1

    async def _attempt(self, item: Claimed, state: Endpoint) -> Result:
        attempt = item.message.attempt
        now = self.clock()
        target = self.store.targets.get(item.integration_id)
        held = state.holding_back(now)
        if held is not None:
            verdict, due = held
            outcome: Outcome = "gone" if verdict.kind == "gone" else "deferred"
            return self._result(item, now, None, None, outcome, verdict, next_at=due)
        adapter = ADAPTERS.get(item.adapter) or PLATFORM_ADAPTERS.get(item.adapter)
        if not isinstance(target, Target) or adapter is None:
            why = target if isinstance(target, str) else "integration or adapter not found"
            return self._result(item, now, None, None, "failed", Verdict("failed", "ours", why))
        started = time.perf_counter()
        code: int | None = None
        retry_after: str | None = None
        detail = ""
        try:
            # Connect to last byte, whatever the client's own timeouts say.
            async with asyncio.timeout(self.options.timeout):
                answer = await self.transport.send(
                    item.integration_id, adapter, target, item.message
                )
            code = answer.status_code
            verdict = judge_status(code)
            if code in (401, 403):
                verdict = Verdict(verdict.kind, adapter.credentials_fault, verdict.reason)  # type: ignore[arg-type]
            retry_after = answer.retry_after
            if verdict.kind != "delivered":
                detail = answer.text
        except Exception as exc:
            verdict = judge_exception(exc)
        latency = (time.perf_counter() - started) * 1000
        metrics.LATENCY.labels(item.adapter).observe(latency / 1000)
        error = None
        if verdict.kind != "delivered":
            text = f"{verdict.reason}: {detail}" if detail else verdict.reason
            error = redact(text, target.secret_values(), self.options.error_chars)
        next_at = None
        if verdict.kind == "retry":
            next_at = next_attempt_at(
                self.options.policy,
                attempt,
                now,
                retry_after=retry_after,
                rng=self.rng,
                min_seconds=self.options.min_retry_seconds,
            )
        state.learn(
            verdict, next_at, attempt=attempt, max_attempts=self.options.policy.max_attempts
        )
        if verdict.kind == "gone":
            self.gone.add(item.integration_id)
        return self._result(
            item, now, latency, code, verdict.kind, verdict, next_at=next_at, error=error
        )

    # -- record ------------------------------------------------------------------------------

    def _result(
        self,
        item: Claimed,
        now: datetime,
        latency: float | None,
        code: int | None,
        outcome: Outcome,
        verdict: Verdict,
        *,
        next_at: datetime | None = None,
        error: str | None = None,
    ) -> Result:
        attempt = item.message.attempt
        status, error = settle(
            outcome,
            attempt,
            reason=verdict.reason,
            error=error,
            max_attempts=self.options.policy.max_attempts,
            error_chars=self.options.error_chars,
        )
        counts = self.summary.by_adapter.setdefault(item.adapter, Counter())
        counts[outcome] += 1
        metrics.DELIVERIES.labels(item.adapter, outcome).inc()
        if status == "dead":
            metrics.DEAD_LETTERS.labels(item.adapter, verdict.fault).inc()
            self.summary.dead += 1
        elif status == "delivered":
            self.summary.delivered += 1
        elif outcome == "deferred":
            self.summary.deferred += 1
        else:
            self.summary.retried += 1
        return Result(
            delivery_id=item.delivery_id,
            integration_id=item.integration_id,
            adapter=item.adapter,
            attempt=attempt,
            at=now,
            latency_ms=latency,
            code=code,
            outcome=outcome,
            error=error,
            status=status,
            next_at=next_at if status == "pending" else None,
            fault=verdict.fault if status == "dead" else None,
        )

    # -- flush ---------------------------------------------------------------------------------

    async def flush(self) -> None:
        async with self.flush_lock:
            results, self.results = self.results, []
            gone, self.gone = self.gone, set()
            if results or gone:
                await asyncio.to_thread(self.store.flush, results, gone)
                self.summary.endpoints_gone += len(gone)

    async def renew(self) -> None:
        """The heartbeat: keep the leases of what this run holds. A failed renewal is
        logged and tried again at the next beat; the lease outlasts a few missed ones."""
        self.renewed_at = time.monotonic()
        try:
            await asyncio.to_thread(self.store.renew)
        except Exception:
            log.exception("could not renew the leases of claimed deliveries; trying again")

    async def _flusher(self, stop: asyncio.Event) -> None:
        # Statuses are written in batches, but often: a fast partner's deliveries show as
        # delivered while a slow partner's requests are still waiting for an answer.
        # Renewals run in the same loop, after a flush, so the two never race.
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.flush_interval)
            if len(self.results) or self.gone:
                await self.flush()
            if self.inflight and time.monotonic() - self.renewed_at >= self.options.renew_seconds:
                await self.renew()
            await self.transport.sweep()

    # -- the loop --------------------------------------------------------------------------

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.inflight.discard(task)
        self.finished.set()

    async def _one_finished(self) -> None:
        """Wait until one more in-flight task has finished (its callback has run)."""
        self.finished.clear()
        await self.finished.wait()

    async def run(
        self, *, limit: int | None = None, forever: bool = False, stop: asyncio.Event | None = None
    ) -> RunSummary:
        stop = stop or asyncio.Event()
        flushing = asyncio.Event()
        flusher = asyncio.create_task(self._flusher(flushing))
        # Run-once mode claims only what was due when it started, so a message put back
        # for a retry in this run is not tried again by the same run.
        due_by = self.clock()
        max_inflight = self.options.batch_size * 2
        recorded_at_claim = 0
        try:
            while not stop.is_set() and (limit is None or self.summary.claimed < limit):
                while len(self.inflight) >= max_inflight:
                    await self._one_finished()
                if forever:
                    due_by = self.clock()
                    if time.monotonic() - self.targets_loaded_at > self.options.target_ttl:
                        self.store.targets.clear()
                        self.targets_loaded_at = time.monotonic()
                full = self.endpoints.full()
                want = self.options.batch_size
                if limit is not None:
                    want = min(want, limit - self.summary.claimed)
                claimed = await self._claim(want, due_by, full)
                if not claimed:
                    if not forever:
                        if full and self.inflight:
                            # Only full endpoints have more; wait for room, then look again.
                            await self._one_finished()
                            continue
                        if self.inflight or self.recorded > recorded_at_claim:
                            # A sequence's next message (a platform order's next status)
                            # waits for these to be written: finish, write, look again.
                            await asyncio.gather(*self.inflight)
                            await self.flush()
                            recorded_at_claim = self.recorded
                            continue
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.options.poll_interval)
                    continue
                self.summary.claimed += len(claimed)
                for item in claimed:
                    self.endpoints.get(item.integration_id).queued += 1
                    task = asyncio.create_task(self._process(item))
                    self.inflight.add(task)
                    task.add_done_callback(self._task_done)
            if self.inflight:
                await asyncio.gather(*self.inflight)
        finally:
            flushing.set()
            try:
                await flusher
                await self.flush()
            finally:
                # Normally nothing is left; after an error or a cancellation, what was
                # claimed and not finished is due again now rather than after the lease.
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.release)
        return self.summary


async def deliver_due(
    engine: sa.Engine,
    *,
    key: bytes,
    limit: int | None = None,
    clock: Clock = utc_now,
    options: WorkerOptions | None = None,
    client: httpx.AsyncClient | None = None,
    forever: bool = False,
    stop: asyncio.Event | None = None,
    company_id: str | None = None,
) -> RunSummary:
    """Deliver what is due now (or, with forever=True, keep delivering until `stop`);
    `company_id` narrows the run to one company's deliveries. Without `options`, the
    settings' lease and the defaults for the rest."""
    options = options or WorkerOptions.from_settings(get_settings())
    run = DeliveryRun(
        engine, key=key, client=client, clock=clock, options=options, company_id=company_id
    )
    try:
        return await run.run(limit=limit, forever=forever, stop=stop)
    finally:
        await run.aclose()


T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, on uvloop's event loop when it is installed (it comes with
    uvicorn[standard] on Linux and macOS): its transports and scheduling cost less CPU per
    request than asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def deliver_due_sync(engine: sa.Engine, *, key: bytes, **kwargs: Any) -> RunSummary:
    """deliver_due for callers without an event loop (the CLI, a Dagster op)."""
    return run_loop(deliver_due(engine, key=key, **kwargs))
