"""The health summary: the one answer an on-call operator reads first.

Per company: when each inbound source last delivered (raw.webhook_events and
raw.order_events, one index probe per source), what waits to be pushed per adapter
(`control.adapters.push_backlog`). For everyone: each signal's lag
(`observability.signal_lags`), the Dagster asset checks whose latest evaluation failed and
the jobs whose latest run failed (read from Dagster's own tables in the `dagster` schema).
Each part that needs a person adds a reason; the verdict is `ok` without one, `attention`
with any. `GET /admin/v1/status`, `partner-signals status --json` and the console show it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
import sqlalchemy as sa

from partner_signals.catalogue import sources as catalogue
from partner_signals.control.actor import Actor
from partner_signals.control.adapters import Backlog, push_backlog
from partner_signals.control.errors import NotFound
from partner_signals.observability import FRESHNESS_GOAL_SECONDS, signal_lags

# Dagster's run and event storage (pipelines/instance.py puts it there).
DAGSTER_SCHEMA = "dagster"
# An enabled source that sent nothing for this long needs a look (a rotated secret not
# shared, a webhook switched off at the provider). A restaurant closed overnight can trip
# it: the reason says how long, the operator judges.
SILENT_AFTER = timedelta(hours=2)
# Pushes waiting longer than this: the partner is down or the push worker is not running.
PENDING_AFTER = timedelta(minutes=10)
Verdict = Literal["ok", "attention"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundFreshness:
    source: str
    enabled: bool  # an enabled integration (POS: a live ingest key)
    last_received_at: datetime | None
    seconds_since: float | None


@dataclass(frozen=True)
class PushBacklog:
    adapter: str
    pending: int
    oldest_pending_at: datetime | None
    oldest_pending_seconds: float | None
    dead_letters_waiting: int


@dataclass(frozen=True)
class SignalLag:
    signal: str
    seconds: float
    waiting_since: datetime | None
    processed_through: datetime | None


@dataclass(frozen=True)
class FailingCheck:
    asset: str
    check: str
    severity: str | None
    description: str | None
    evaluated_at: datetime | None


@dataclass(frozen=True)
class FailingRun:
    job: str
    run_id: str
    failed_at: datetime | None


@dataclass(frozen=True)
class CompanyHealth:
    company_id: str
    verdict: Verdict
    reasons: list[str]
    inbound: list[InboundFreshness]
    pushes: list[PushBacklog]


@dataclass(frozen=True)
class Health:
    at: datetime
    verdict: Verdict
    reasons: list[str]  # every company's, each prefixed with its id, then the shared ones
    companies: list[CompanyHealth]
    signal_lags: list[SignalLag]
    failing_checks: list[FailingCheck]
    failing_runs: list[FailingRun]


def summary(conn: sa.Connection, actor: Actor, company_id: str | None = None) -> Health:
    """Every company the actor sees (or only `company_id`), and what they share."""
    actor.require("viewer", company_id)
    scope = company_id or actor.company_id
    companies: list[str] = list(
        conn.execute(
            sa.text(
                "select company_id from ops.companies "
                "where cast(:c as text) is null or company_id = :c order by company_id"
            ),
            {"c": scope},
        ).scalars()
    )
    if company_id is not None and not companies:
        raise NotFound(f"no company {company_id!r}")
    now: datetime = conn.execute(sa.text("select now()")).scalar_one()
    inbound = _inbound(conn, scope, now)
    backlog: dict[str, list[Backlog]] = {}
    for b in push_backlog(conn, scope):
        backlog.setdefault(b.company_id, []).append(b)
    per_company = [_company(c, inbound.get(c, []), backlog.get(c, []), now) for c in companies]
    lags = _lags(conn)
    checks, runs = _dagster(conn)
    shared = [
        f"signal {lag.signal} is {lag.seconds:.0f} s behind the oldest event waiting for it "
        f"(goal {FRESHNESS_GOAL_SECONDS:.0f} s)"
        for lag in lags
        if lag.seconds > FRESHNESS_GOAL_SECONDS
    ]
    shared += [
        f"check {c.check} on {c.asset} failed" + (f": {c.description}" if c.description else "")
        for c in checks
    ]
    shared += [f"the latest {r.job} run failed (run {r.run_id})" for r in runs]
    reasons = [f"{c.company_id}: {r}" for c in per_company for r in c.reasons] + shared
    return Health(
        at=now,
        verdict="attention" if reasons else "ok",
        reasons=reasons,
        companies=per_company,
        signal_lags=lags,
        failing_checks=checks,
        failing_runs=runs,
    )


def _company(
    company_id: str, inbound: list[InboundFreshness], backlog: list[Backlog], now: datetime
) -> CompanyHealth:
    reasons = []
    for source in inbound:
        if not source.enabled or source.seconds_since is None:
            continue
        if source.seconds_since > SILENT_AFTER.total_seconds():
            reasons.append(
                f"no {source.source} event for {_span(source.seconds_since)} "
                f"(last {source.last_received_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
    pushes = []
    for b in backlog:
        age = (now - b.oldest_pending_at).total_seconds() if b.oldest_pending_at else None
        pushes.append(
            PushBacklog(b.adapter, b.pending, b.oldest_pending_at, age, b.dead_letters_waiting)
        )
        if b.dead_letters_waiting:
            reasons.append(
                f"{b.dead_letters_waiting} dead letter(s) of {b.adapter} waiting for replay"
            )
        if age is not None and age > PENDING_AFTER.total_seconds():
            reasons.append(f"{b.pending} push(es) to {b.adapter} pending, the oldest {_span(age)}")
    return CompanyHealth(company_id, "attention" if reasons else "ok", reasons, inbound, pushes)


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _inbound(
    conn: sa.Connection, scope: str | None, now: datetime
) -> dict[str, list[InboundFreshness]]:
    """Each company's sources: the webhook providers it enabled or that delivered, POS
    when it holds a live ingest key or posted events. Last received is a max() over the
    (company_id, source, received_at) index of its raw table (migrations 0013, 0015)."""
    found: dict[str, list[InboundFreshness]] = {}
    for source in catalogue.sources():
        if source.is_webhook:
            candidates = """
                select company_id, bool_or(enabled) as enabled from ops.integrations
                where provider = :s and (cast(:c as text) is null or company_id = :c)
                group by company_id
            """
        else:
            candidates = """
                select c.company_id, exists (
                    select from ops.ingest_keys k
                    where k.company_id = c.company_id and k.revoked_at is null
                ) as enabled
                from ops.companies c where cast(:c as text) is null or c.company_id = :c
            """
        rows: Sequence[Any] = conn.execute(
            sa.text(
                f"""
                with candidates as ({candidates})
                select w.company_id, w.enabled,
                       (select max(e.received_at) from raw.{source.raw_table} e
                         where e.company_id = w.company_id and e.source = :s) as last
                from candidates w
                """
            ),
            {"s": source.name, "c": scope},
        ).all()
        for company, enabled, last in rows:
            if not enabled and last is None:
                continue
            since = None if last is None else max(0.0, (now - last).total_seconds())
            found.setdefault(company, []).append(
                InboundFreshness(source.name, bool(enabled), last, since)
            )
    return found


def _lags(conn: sa.Connection) -> list[SignalLag]:
    raw: Any = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        with conn.begin_nested():
            lags = signal_lags(raw)
    except psycopg.Error as exc:
        log.warning("signal lags unreadable: %s", exc)
        return []
    return [SignalLag(x.signal, x.seconds, x.waiting_since, x.processed_through) for x in lags]


def _dagster(conn: sa.Connection) -> tuple[list[FailingCheck], list[FailingRun]]:
    """Asset checks (dbt tests and the project's own) whose latest evaluation failed, and
    jobs whose latest finished run failed, from Dagster's storage (none before it exists)."""
    have = conn.execute(
        sa.text("select to_regclass(:a) is not null, to_regclass(:r) is not null"),
        {"a": f"{DAGSTER_SCHEMA}.asset_check_executions", "r": f"{DAGSTER_SCHEMA}.runs"},
    ).one()
    checks: list[FailingCheck] = []
    runs: list[FailingRun] = []
    try:
        with conn.begin_nested():
            if have[0]:
                found: Sequence[Any] = conn.execute(
                    sa.text(
                        f"""
                        with latest as (
                            select distinct on (asset_key, check_name)
                                asset_key, check_name, execution_status, evaluation_event,
                                evaluation_event_timestamp
                            from {DAGSTER_SCHEMA}.asset_check_executions
                            where execution_status in ('SUCCEEDED', 'FAILED')
                            order by asset_key, check_name, id desc
                        )
                        select asset_key, check_name, evaluation_event_timestamp,
                            evaluation_event::jsonb -> 'dagster_event'
                                -> 'event_specific_data' as data
                        from latest where execution_status = 'FAILED'
                        order by asset_key, check_name
                        """
                    )
                ).all()
                for asset_key, check, at, data in found:
                    data = data or {}
                    severity = (data.get("severity") or {}).get("__enum__")
                    checks.append(
                        FailingCheck(
                            asset=_asset(asset_key),
                            check=check,
                            severity=severity.rsplit(".", 1)[-1] if severity else None,
                            description=data.get("description"),
                            evaluated_at=_utc(at),
                        )
                    )
            if have[1]:
                failed: Sequence[Any] = conn.execute(
                    sa.text(
                        f"""
                        with latest as (
                            select distinct on (pipeline_name)
                                pipeline_name, run_id, status, update_timestamp
                            from {DAGSTER_SCHEMA}.runs
                            where status in ('SUCCESS', 'FAILURE')
                            order by pipeline_name, id desc
                        )
                        select pipeline_name, run_id, update_timestamp from latest
                        where status = 'FAILURE' order by pipeline_name
                        """
                    )
                ).all()
                for job, run_id, at in failed:
                    runs.append(FailingRun(job, run_id, _utc(at)))
    except sa.exc.DBAPIError as exc:  # Dagster changed its tables: say so, answer the rest
        log.warning("Dagster's checks and runs unreadable: %s", exc)
    return checks, runs


def _asset(asset_key: str) -> str:
    """Dagster stores a key as JSON (`["marts", "order_velocity"]`): shown dotted."""
    try:
        parts = json.loads(asset_key)
    except ValueError:
        return asset_key
    return ".".join(parts) if isinstance(parts, list) else asset_key


def _utc(moment: datetime | None) -> datetime | None:
    # Dagster keeps naive UTC timestamps.
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment
