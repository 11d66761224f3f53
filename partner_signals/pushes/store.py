"""The worker's side of the outbox: claim due rows under a lease, renew the leases it still
holds, load their targets, write results and attempts back, retire an endpoint that answered
410. Blocking SQL: the worker runs these in a thread while its event loop keeps sending.

A lease is the row's next_attempt_at pushed `lease_seconds` ahead, with claimed_by naming
the worker (a random id per run). The worker renews the leases of the rows it still holds
every few seconds and clears claimed_by when it writes a row's result, so a worker that
dies leaves its rows for at most one short lease, and one that lives keeps them however
long they wait behind a slow partner."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from partner_signals.adapters import Message, Target
from partner_signals.control.actor import Actor
from partner_signals.crypto import DecryptionError, decrypt_json
from partner_signals.pushes.policy import Outcome, Status
from partner_signals.registry import audit, integration_context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """A due outbox row, leased to this worker."""

    delivery_id: int
    integration_id: int
    adapter: str
    message: Message
    # The row still named another worker: that worker died (or stalled past its lease)
    # holding it, and may have sent it already.
    reclaimed: bool = False


@dataclass(frozen=True)
class Result:
    """One attempt, as it is written back: its ops.delivery_attempts row and the outbox
    status it leaves."""

    delivery_id: int
    integration_id: int
    adapter: str
    attempt: int
    at: datetime
    latency_ms: float | None
    code: int | None
    outcome: Outcome
    error: str | None
    status: Status  # the outbox status it leaves: delivered, pending, dead
    next_at: datetime | None
    fault: str | None


class OutboxStore:
    """The outbox rows and decrypted targets one worker reads and writes."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        key: bytes,
        clock: Callable[[], datetime],
        lease_seconds: float,
        company_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.key = key
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.company_id = company_id
        self.worker_id = uuid.uuid4()
        self.targets: dict[int, Target | str] = {}  # str: why it cannot be used

    def claim(
        self, limit: int, due_by: datetime, skip: list[int]
    ) -> tuple[list[Claimed], set[int]]:
        """Lease up to `limit` rows due by `due_by`, integrations in `skip` left out; load
        the targets not yet known. Also returns the integrations whose target was just
        loaded enabled (an endpoint marked gone is usable again)."""
        # One company only when asked (an operator's targeted run, tests); else everyone.
        lease = self.clock() + timedelta(seconds=self.lease_seconds)
        enabled: set[int] = set()
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.text(
                    """
                    with due as (
                        select o.delivery_id, o.claimed_by as previous from ops.outbox o
                        where o.status = 'pending' and o.next_attempt_at <= :due_by
                            and o.integration_id <> all(cast(:skip as bigint[]))
                            and (cast(:company as text) is null or o.company_id = :company)
                            and exists (select 1 from ops.integrations i
                                        where i.integration_id = o.integration_id and i.enabled)
                            -- In order per sequence (a platform order's statuses): only
                            -- once everything before it was delivered (migration 0017).
                            and (o.sequence_key is null or not exists (
                                select 1 from ops.outbox b
                                where b.sequence_key = o.sequence_key
                                    and b.delivery_id < o.delivery_id
                                    and b.status in ('pending', 'dead')))
                        order by o.next_attempt_at
                        limit :n
                        for update of o skip locked
                    )
                    update ops.outbox o
                    set next_attempt_at = :lease, claimed_by = :me, updated_at = now()
                    from due where o.delivery_id = due.delivery_id
                    returning o.delivery_id, o.integration_id, o.adapter, o.idempotency_key,
                        o.event_id, o.event_type, o.version, o.payload, o.attempts,
                        due.previous is not null as reclaimed
                    """
                ),
                {
                    "due_by": due_by,
                    "skip": skip,
                    "n": limit,
                    "lease": lease,
                    "me": self.worker_id,
                    "company": self.company_id,
                },
            ).all()
            missing = {r.integration_id for r in rows} - set(self.targets)
            if missing:
                enabled = self._load_targets(conn, missing)
        claimed = [
            Claimed(
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
                reclaimed=r.reclaimed,
            )
            for r in rows
        ]
        return claimed, enabled

    def renew(self) -> int:
        """The heartbeat: push the lease of every row this worker still holds (claimed,
        result not written yet) `lease_seconds` ahead. Returns how many it holds."""
        with self.engine.begin() as conn:
            return conn.execute(
                sa.text(
                    "update ops.outbox set next_attempt_at = :lease "
                    "where claimed_by = :me and status = 'pending'"
                ),
                {
                    "lease": self.clock() + timedelta(seconds=self.lease_seconds),
                    "me": self.worker_id,
                },
            ).rowcount

    def release(self) -> int:
        """Hand back what this worker still holds, due now (a run that stops early, or
        fails, leaves nothing to wait a lease out for). Returns how many rows."""
        with self.engine.begin() as conn:
            return conn.execute(
                sa.text(
                    "update ops.outbox set next_attempt_at = least(next_attempt_at, :now), "
                    "claimed_by = null where claimed_by = :me and status = 'pending'"
                ),
                {"now": self.clock(), "me": self.worker_id},
            ).rowcount

    def _load_targets(self, conn: sa.Connection, ids: set[int]) -> set[int]:
        rows = conn.execute(
            sa.text(
                "select integration_id, provider, company_id, restaurant_id, config, "
                "secret_ciphertext, enabled from ops.integrations "
                "where integration_id = any(:ids)"
            ),
            {"ids": sorted(ids)},
        ).all()
        enabled: set[int] = set()
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
            if r.enabled:
                enabled.add(r.integration_id)
        return enabled

    def flush(self, results: list[Result], gone: set[int]) -> None:
        """Write statuses, dead letters and attempts of `results` in one transaction (two
        statements, however many rows), then retire the endpoints in `gone`."""
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
                                                    then v.at else o.delivered_at end,
                                -- a worker that took the row over after our lease lapsed
                                -- keeps its claim (and renews it) until it writes its own
                                claimed_by = case when o.claimed_by = :me
                                                  then null else o.claimed_by end
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
                        "me": self.worker_id,
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
                        last_error = 'endpoint gone (410)', claimed_by = null
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
                actor=Actor.system("deliveries"),
            )
            log.warning(
                "integration %s answered 410: disabled, %s pending deliveries dead-lettered",
                integration_id,
                swept,
            )
