"""The delivery worker: claim due outbox rows, send them concurrently, record every attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

from partner_signals.adapters import ADAPTERS, Adapter, Message, Target
from partner_signals.crypto import DecryptionError, decrypt_json
from partner_signals.pushes import metrics
from partner_signals.pushes.http import Answer, Sender, proxies_in_environment
from partner_signals.pushes.policy import (
    RetryPolicy,
    Verdict,
    judge_exception,
    judge_status,
    parse_retry_after,
)
from partner_signals.registry import audit, integration_context

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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
    lease_seconds: float = 300.0  # a claimed row is due again after this if we die
    flush_interval: float = 0.05
    flush_rows: int = 1000
    poll_interval: float = 0.5  # forever mode: sleep when nothing is due
    target_ttl: float = 30.0  # forever mode: re-read integrations (rotations, disables)
    error_chars: int = 300
    min_retry_seconds: float = 1.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass
class RunSummary:
    claimed: int = 0
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
        )


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    integration_id: int
    adapter: str
    message: Message


@dataclass(frozen=True)
class _Result:
    delivery_id: int
    integration_id: int
    adapter: str
    attempt: int
    at: datetime
    latency_ms: float | None
    code: int | None
    outcome: str  # delivered, retry, deferred, failed, gone
    error: str | None
    status: str  # the outbox status it leaves: delivered, pending, dead
    next_at: datetime | None
    fault: str | None


@dataclass
class _Endpoint:
    semaphore: asyncio.Semaphore
    queued: int = 0
    # Slow start: until an endpoint answers, one request probes it alone; a partner that
    # is down gets one request per retry round, not one per waiting message.
    open: bool = False
    probe: asyncio.Event | None = None
    backoff_until: datetime | None = None
    backoff_reason: str = ""
    gone: bool = False


AUTH_VALUE = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]+")


def redact(text: str, secrets: list[str], limit: int) -> str:
    """Partner answers sometimes echo what they were sent; strip credentials from them."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = AUTH_VALUE.sub(r"\1 [redacted]", text)
    text = " ".join(text.split())
    return text[:limit]


def connect_timeout(options: WorkerOptions) -> float:
    return min(options.timeout, 5.0)


def make_client(options: WorkerOptions, connections: int | None = None) -> httpx.AsyncClient:
    """A client with keep-alive connections (`connections`, default `overall`), no
    redirects followed."""
    size = connections or options.overall
    return httpx.AsyncClient(
        timeout=httpx.Timeout(options.timeout, connect=connect_timeout(options)),
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        follow_redirects=False,
    )


def sends_itself(adapter: Adapter) -> bool:
    """An adapter that overrides `deliver` sends its own way (through httpx); the others
    are one `build_request` each, which the worker's sender posts."""
    return type(adapter).deliver is not Adapter.deliver


class DeliveryRun:
    """One worker's state: targets (decrypted credentials), endpoint back-offs, results."""

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
        self.engine = engine
        self.company_id = company_id
        self.key = key
        # A given client serves every endpoint. Otherwise requests go through the
        # worker's sender (partner_signals/pushes/http.py: no pool scan, a fraction of
        # httpx's CPU per request), except with a proxy in the environment or for an
        # adapter that sends itself: those get an httpx client per endpoint, sized to
        # per_endpoint, since httpx's pool costs more the more connections it holds.
        self.client = client
        self.clients: dict[int, httpx.AsyncClient] = {}
        self.sender = (
            Sender(timeout=options.timeout, connect_timeout=connect_timeout(options))
            if client is None and not proxies_in_environment()
            else None
        )
        self.clock = clock
        self.options = options
        self.rng = rng or random.Random()
        self.summary = RunSummary()
        self.targets: dict[int, Target | str] = {}  # str: why it cannot be used
        self.targets_loaded_at = 0.0
        self.endpoints: dict[int, _Endpoint] = {}
        self.results: list[_Result] = []
        self.gone: set[int] = set()
        self.overall = asyncio.Semaphore(options.overall)
        self.inflight: set[asyncio.Task[None]] = set()
        # Set whenever an in-flight task finishes: waiting on it is O(1) per completion,
        # where asyncio.wait(self.inflight) hooks and unhooks every task on each call.
        self.finished = asyncio.Event()

    # -- database (run in a thread, the event loop keeps sending) ------------------------

    def _claim(self, limit: int, due_by: datetime, skip: list[int]) -> list[_Claimed]:
        # One company only when asked (an operator's targeted run, tests); else everyone.
        lease = self.clock() + timedelta(seconds=self.options.lease_seconds)
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    with due as (
                        select o.delivery_id from ops.outbox o
                        where o.status = 'pending' and o.next_attempt_at <= :due_by
                            and o.integration_id <> all(cast(:skip as bigint[]))
                            and (cast(:company as text) is null or o.company_id = :company)
                            and exists (select 1 from ops.integrations i
                                        where i.integration_id = o.integration_id and i.enabled)
                        order by o.next_attempt_at
                        limit :n
                        for update of o skip locked
                    )
                    update ops.outbox o set next_attempt_at = :lease, updated_at = now()
                    from due where o.delivery_id = due.delivery_id
                    returning o.delivery_id, o.integration_id, o.adapter, o.idempotency_key,
                        o.event_id, o.event_type, o.version, o.payload, o.attempts
                    """
                ),
                {
                    "due_by": due_by,
                    "skip": skip,
                    "n": limit,
                    "lease": lease,
                    "company": self.company_id,
                },
            ).all()
            missing = {r.integration_id for r in rows} - set(self.targets)
            if missing:
                self._load_targets(conn, missing)
        return [
            _Claimed(
                r.delivery_id,
                r.integration_id,
                r.adapter,
                Message(
                    delivery_id=r.delivery_id,
                    idempotency_key=r.idempotency_key,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    version=r.version,
                    payload=r.payload,
                    attempt=r.attempts + 1,
                ),
            )
            for r in rows
        ]

    def _load_targets(self, conn: sa.Connection, ids: set[int]) -> None:
        rows = conn.execute(
            sa.text(
                "select integration_id, provider, company_id, restaurant_id, config, "
                "secret_ciphertext, enabled from ops.integrations "
                "where integration_id = any(:ids)"
            ),
            {"ids": sorted(ids)},
        ).all()
        for r in rows:
            try:
                secrets = (
                    decrypt_json(
                        self.key,
                        bytes(r.secret_ciphertext),
                        context=integration_context(r.company_id, r.provider, r.restaurant_id),
                    )
                    if r.secret_ciphertext
                    else {}
                )
            except DecryptionError:
                self.targets[r.integration_id] = "credentials do not open with this key"
                continue
            self.targets[r.integration_id] = Target(
                integration_id=r.integration_id,
                adapter=r.provider,
                company_id=r.company_id,
                restaurant_id=r.restaurant_id,
                config=r.config or {},
                secrets=secrets,
            )
            if r.enabled and r.integration_id in self.endpoints:
                self.endpoints[r.integration_id].gone = False

    def _flush(self, results: list[_Result], gone: set[int]) -> None:
        with self.engine.begin() as conn:
            if results:
                conn.execute(
                    sa.text(
                        """
                        with v as (
                            select * from unnest(
                                cast(:id as bigint[]), cast(:status as text[]),
                                cast(:attempt as int[]), cast(:next_at as timestamptz[]),
                                cast(:error as text[]), cast(:code as int[]),
                                cast(:fault as text[]), cast(:at as timestamptz[]))
                                as v(id, status, attempt, next_at, error, code, fault, at)
                        ),
                        changed as (
                            update ops.outbox o set
                                status = v.status,
                                attempts = greatest(o.attempts, v.attempt),
                                next_attempt_at = coalesce(v.next_at, o.next_attempt_at),
                                last_error = v.error,
                                last_response_code = v.code,
                                updated_at = now(),
                                delivered_at = case when v.status = 'delivered'
                                                    then v.at else o.delivered_at end
                            from v
                            -- a row swept into dead letters meanwhile (410) stays as it is
                            where o.delivery_id = v.id and o.status = 'pending'
                            returning o.delivery_id, o.status
                        )
                        insert into ops.dead_letters (delivery_id, fault, reason, at)
                        select v.id, v.fault, coalesce(v.error, 'failed'), v.at
                        from changed join v on v.id = changed.delivery_id
                        where changed.status = 'dead'
                        """
                    ),
                    {
                        "id": [r.delivery_id for r in results],
                        "status": [r.status for r in results],
                        "attempt": [r.attempt for r in results],
                        "next_at": [r.next_at for r in results],
                        "error": [r.error for r in results],
                        "code": [r.code for r in results],
                        "fault": [r.fault for r in results],
                        "at": [r.at for r in results],
                    },
                )
                conn.execute(
                    sa.text(
                        """
                        insert into ops.delivery_attempts (delivery_id, integration_id, adapter,
                            attempt, at, latency_ms, response_code, outcome, error)
                        select * from unnest(
                            cast(:id as bigint[]), cast(:iid as bigint[]),
                            cast(:adapter as text[]), cast(:attempt as int[]),
                            cast(:at as timestamptz[]), cast(:latency as float8[]),
                            cast(:code as int[]), cast(:outcome as text[]),
                            cast(:error as text[]))
                        """
                    ),
                    {
                        "id": [r.delivery_id for r in results],
                        "iid": [r.integration_id for r in results],
                        "adapter": [r.adapter for r in results],
                        "attempt": [r.attempt for r in results],
                        "at": [r.at for r in results],
                        "latency": [r.latency_ms for r in results],
                        "code": [r.code for r in results],
                        "outcome": [r.outcome for r in results],
                        "error": [r.error for r in results],
                    },
                )
            for integration_id in sorted(gone):
                self._retire(conn, integration_id)

    def _retire(self, conn: sa.Connection, integration_id: int) -> None:
        """A 410: the partner removed the endpoint. Disable the integration and move what
        is still pending for it to dead letters, replayable once it is enabled again."""
        company = conn.execute(
            sa.text(
                "update ops.integrations set enabled = false, updated_at = now() "
                "where integration_id = :i and enabled returning company_id"
            ),
            {"i": integration_id},
        ).scalar()
        swept = conn.execute(
            sa.text(
                """
                with swept as (
                    update ops.outbox set status = 'dead', updated_at = now(),
                        last_error = 'endpoint gone (410)'
                    where integration_id = :i and status = 'pending'
                    returning delivery_id
                )
                insert into ops.dead_letters (delivery_id, fault, reason)
                select delivery_id, 'partner', 'endpoint gone (410)' from swept
                """
            ),
            {"i": integration_id},
        ).rowcount
        if company is not None:
            audit(
                conn,
                action="integrations.disabled_gone",
                company_id=company,
                details={"integration_id": integration_id, "dead_lettered": swept},
                actor="delivery",
            )
            log.warning(
                "integration %s answered 410: disabled, %s pending deliveries dead-lettered",
                integration_id,
                swept,
            )

    # -- sending ---------------------------------------------------------------------------

    def _client(self, integration_id: int) -> httpx.AsyncClient:
        if self.client is not None:
            return self.client
        client = self.clients.get(integration_id)
        if client is None:
            client = make_client(self.options, self.options.per_endpoint)
            self.clients[integration_id] = client
        return client

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.aclose()
        if self.sender is not None:
            await self.sender.aclose()

    async def _send(self, item: _Claimed, adapter: Adapter, target: Target) -> Answer:
        if self.sender is not None and not sends_itself(adapter):
            request = adapter.build_request(target, item.message, now=time.time())
            return await self.sender.send(item.integration_id, request)
        client = self._client(item.integration_id)
        response = await adapter.deliver(client, target, item.message, now=time.time())
        return Answer.from_httpx(response)

    def _endpoint(self, integration_id: int) -> _Endpoint:
        state = self.endpoints.get(integration_id)
        if state is None:
            state = _Endpoint(asyncio.Semaphore(self.options.per_endpoint))
            self.endpoints[integration_id] = state
        return state

    async def _process(self, item: _Claimed) -> None:
        state = self._endpoint(item.integration_id)
        try:
            while not state.open:
                if state.probe is not None:
                    await state.probe.wait()
                    continue
                state.probe = asyncio.Event()
                try:
                    async with self.overall:
                        result = await self._attempt(item, state)
                    self._record(result)
                finally:
                    probe, state.probe = state.probe, None
                    probe.set()
                return
            # The endpoint's own limit first: waiting for a slow partner must not hold
            # one of the overall slots that other partners need.
            async with state.semaphore, self.overall:
                result = await self._attempt(item, state)
            self._record(result)
        finally:
            state.queued -= 1

    def _record(self, result: _Result) -> None:
        # Not `self.results.append(await ...)`: that binds the list before the await, and
        # the flusher may have swapped it for a new one by the time the answer comes.
        self.results.append(result)

    async def _attempt(self, item: _Claimed, state: _Endpoint) -> _Result:
        attempt = item.message.attempt
        now = self.clock()
        target = self.targets.get(item.integration_id)
        if state.gone:
            verdict = Verdict("gone", "partner", "endpoint gone (410)")
            return self._result(item, now, None, None, "gone", verdict)
        if state.backoff_until is not None and now < state.backoff_until:
            # The endpoint just failed; this message shares that failure's next time
            # instead of hammering a partner that is down (logged, nothing sent).
            verdict = Verdict("retry", "partner", f"deferred: {state.backoff_reason}")
            return self._result(
                item, now, None, None, "deferred", verdict, next_at=state.backoff_until
            )
        adapter = ADAPTERS.get(item.adapter)
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
                answer = await self._send(item, adapter, target)
            code = answer.status_code
            verdict = judge_status(code)
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
            delay = self.options.policy.delay(attempt, self.rng)
            asked = parse_retry_after(retry_after, now)
            if asked is not None:
                delay = min(asked, self.options.policy.cap_seconds)
            next_at = now + timedelta(seconds=max(delay, self.options.min_retry_seconds))
            if verdict.fault == "partner" and attempt < self.options.policy.max_attempts:
                state.open = False
                state.backoff_until = max(next_at, state.backoff_until or next_at)
                state.backoff_reason = verdict.reason
        elif verdict.kind == "gone":
            state.gone = True
            self.gone.add(item.integration_id)
        else:
            # Delivered, or refused this message (4xx): either way the partner is up.
            state.open = True
            state.backoff_until = None
        return self._result(
            item, now, latency, code, verdict.kind, verdict, next_at=next_at, error=error
        )

    def _result(
        self,
        item: _Claimed,
        now: datetime,
        latency: float | None,
        code: int | None,
        outcome: str,
        verdict: Verdict,
        *,
        next_at: datetime | None = None,
        error: str | None = None,
    ) -> _Result:
        attempt = item.message.attempt
        if error is None and outcome != "delivered":
            error = verdict.reason[: self.options.error_chars] or None
        if outcome == "delivered":
            status = "delivered"
        elif outcome in ("retry", "deferred") and attempt < self.options.policy.max_attempts:
            status = "pending"
        else:
            status = "dead"
            if outcome in ("retry", "deferred"):
                error = f"gave up after {attempt} attempts: {error}"[: self.options.error_chars]
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
        return _Result(
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

    async def flush(self) -> None:
        results, self.results = self.results, []
        gone, self.gone = self.gone, set()
        if results or gone:
            await asyncio.to_thread(self._flush, results, gone)
            self.summary.endpoints_gone += len(gone)

    async def _flusher(self, stop: asyncio.Event) -> None:
        # Statuses are written in batches, but often: a fast partner's deliveries show as
        # delivered while a slow partner's requests are still waiting for an answer.
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.flush_interval)
            if len(self.results) or self.gone:
                await self.flush()
            if self.sender is not None:
                await self.sender.sweep()

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
        try:
            while not stop.is_set() and (limit is None or self.summary.claimed < limit):
                while len(self.inflight) >= max_inflight:
                    await self._one_finished()
                if forever:
                    due_by = self.clock()
                    if time.monotonic() - self.targets_loaded_at > self.options.target_ttl:
                        self.targets.clear()
                        self.targets_loaded_at = time.monotonic()
                full = [
                    i
                    for i, s in self.endpoints.items()
                    if s.queued >= self.options.per_endpoint_queue
                ]
                want = self.options.batch_size
                if limit is not None:
                    want = min(want, limit - self.summary.claimed)
                claimed = await asyncio.to_thread(self._claim, want, due_by, full)
                if not claimed:
                    if not forever:
                        if full and self.inflight:
                            # Only full endpoints have more; wait for room, then look again.
                            await self._one_finished()
                            continue
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.options.poll_interval)
                    continue
                self.summary.claimed += len(claimed)
                for item in claimed:
                    self._endpoint(item.integration_id).queued += 1
                    task = asyncio.create_task(self._process(item))
                    self.inflight.add(task)
                    task.add_done_callback(self._task_done)
            if self.inflight:
                await asyncio.gather(*self.inflight)
        finally:
            flushing.set()
            await flusher
            await self.flush()
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
    `company_id` narrows the run to one company's deliveries."""
    options = options or WorkerOptions()
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
