"""Outbound partner adapters under operator control: list, enable, disable, exclusions,
test connection and status, per company.

An adapter is enabled company-wide (every restaurant, less the excluded ones) or for one
restaurant; both are rows of ops.integrations. `push_backlog` is the one place that
answers "what is waiting to be pushed, for whom": the adapter status answer, the health
summary (`GET /admin/v1/status`) and the console read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import BaseModel, ValidationError

from partner_signals.adapters import ADAPTERS, PLAN_ADAPTERS, Adapter, Target
from partner_signals.control import audit
from partner_signals.control.actor import Actor
from partner_signals.control.errors import Conflict, Invalid, NotFound, PlanLocked
from partner_signals.control.lookups import require_restaurant
from partner_signals.registry import enable_integration, read_integration_secrets

TEST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Backlog:
    company_id: str
    adapter: str
    pending: int
    oldest_pending_at: datetime | None
    dead_letters_waiting: int


def push_backlog(conn: sa.Connection, company_id: str | None = None) -> list[Backlog]:
    """Pushes not delivered yet and dead letters not replayed, per company and adapter
    (only pairs with something waiting). Reads the outbox's partial indexes only."""
    rows = conn.execute(
        sa.text(
            """
            with pending as (
                select company_id, adapter, count(*) as n, min(created_at) as oldest
                from ops.outbox
                where status = 'pending' and (cast(:c as text) is null or company_id = :c)
                group by 1, 2
            ), dead as (
                select o.company_id, o.adapter, count(*) as n
                from ops.dead_letters d join ops.outbox o using (delivery_id)
                where d.replayed_at is null and o.status = 'dead'
                  and (cast(:c as text) is null or o.company_id = :c)
                group by 1, 2
            )
            select coalesce(p.company_id, d.company_id) as company_id,
                   coalesce(p.adapter, d.adapter) as adapter,
                   coalesce(p.n, 0) as pending, p.oldest as oldest_pending_at,
                   coalesce(d.n, 0) as dead_letters_waiting
            from pending p full join dead d using (company_id, adapter)
            order by 1, 2
            """
        ),
        {"c": company_id},
    ).mappings()
    return [Backlog(**r) for r in rows]


# -- what is enabled where -----------------------------------------------------------------


@dataclass(frozen=True)
class AdapterScope:
    """One integration of an adapter: company-wide (restaurant_id None) or one restaurant."""

    restaurant_id: str | None
    enabled: bool
    config: dict[str, Any]  # the adapter's config model: never a secret
    secrets_set: list[str]  # names of the secret fields stored, never their values
    excluded_restaurants: list[str]
    updated_at: datetime


@dataclass(frozen=True)
class AdapterSummary:
    adapter: str
    description: str
    plans: list[str]  # the plan tiers that include it
    plan_locked: bool  # the company's plan does not include it
    unlocked_by: str | None  # the lowest plan that does, when locked
    enabled: bool  # enabled somewhere (company-wide or for a restaurant)
    company_wide: bool  # enabled company-wide
    restaurants: list[str]  # restaurants it is enabled for one by one
    scopes: list[AdapterScope] = field(default_factory=list)


def _adapter(name: str) -> Adapter:
    adapter = ADAPTERS.get(name)
    if adapter is None:
        raise NotFound(f"no adapter {name!r}; one of {', '.join(sorted(ADAPTERS))}")
    return adapter


def _plan(conn: sa.Connection, company_id: str) -> str:
    plan = conn.execute(
        sa.text("select plan from ops.companies where company_id = :c"), {"c": company_id}
    ).scalar()
    if plan is None:
        raise NotFound(f"no company {company_id!r}")
    return str(plan)


def _plans(name: str) -> list[str]:
    return [plan for plan, names in PLAN_ADAPTERS.items() if name in names]


def _secret_names(conn: sa.Connection, key: bytes | None, row: sa.RowMapping) -> list[str]:
    if key is None or not row["has_secrets"]:
        return []
    stored = read_integration_secrets(
        conn,
        key=key,
        company_id=row["company_id"],
        provider=row["provider"],
        restaurant_id=row["restaurant_id"],
    )
    return sorted(k for k, v in stored.items() if v)


def _summaries(
    conn: sa.Connection, company_id: str, names: list[str], key: bytes | None
) -> list[AdapterSummary]:
    plan = _plan(conn, company_id)
    rows = (
        conn.execute(
            sa.text(
                """
                select i.integration_id, i.company_id, i.provider, i.restaurant_id, i.enabled,
                       i.config, i.updated_at, i.secret_ciphertext is not null as has_secrets,
                       array(select e.restaurant_id from ops.adapter_exclusions e
                             where e.integration_id = i.integration_id
                             order by e.restaurant_id) as excluded
                from ops.integrations i
                where i.company_id = :c and i.provider = any(:names)
                order by i.provider, i.restaurant_id nulls first
                """
            ),
            {"c": company_id, "names": names},
        )
        .mappings()
        .all()
    )
    summaries = []
    for name in names:
        scopes = [
            AdapterScope(
                restaurant_id=r["restaurant_id"],
                enabled=r["enabled"],
                config=dict(r["config"] or {}),
                secrets_set=_secret_names(conn, key, r),
                excluded_restaurants=list(r["excluded"] or []),
                updated_at=r["updated_at"],
            )
            for r in rows
            if r["provider"] == name
        ]
        plans = _plans(name)
        locked = plan not in plans
        summaries.append(
            AdapterSummary(
                adapter=name,
                description=ADAPTERS[name].description,
                plans=plans,
                plan_locked=locked,
                unlocked_by=plans[0] if locked and plans else None,
                enabled=any(s.enabled for s in scopes),
                company_wide=any(s.enabled and s.restaurant_id is None for s in scopes),
                restaurants=[s.restaurant_id for s in scopes if s.enabled and s.restaurant_id],
                scopes=scopes,
            )
        )
    return summaries


def list_adapters(
    conn: sa.Connection, actor: Actor, company_id: str, *, key: bytes | None = None
) -> list[AdapterSummary]:
    """Every adapter for one company: its plan lock and the plan that unlocks it, where
    it is enabled (company-wide, with exclusions, or per restaurant). With `key`, the
    names of the stored secret fields (never their values)."""
    actor.require("viewer", company_id)
    return _summaries(conn, company_id, sorted(ADAPTERS), key)


def get_adapter(
    conn: sa.Connection, actor: Actor, company_id: str, name: str, *, key: bytes | None = None
) -> AdapterSummary:
    actor.require("viewer", company_id)
    _adapter(name)
    return _summaries(conn, company_id, [name], key)[0]


# -- enable and disable --------------------------------------------------------------------


def _field_errors(
    model: type[BaseModel], data: Mapping[str, Any], adapter: Adapter, prefix: str
) -> list[dict[str, str]]:
    """Each field `data` breaks, named `<prefix>.<field>`, worded without its value."""
    try:
        model.model_validate(dict(data), context={"adapter": adapter})
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_input=False):
            name = ".".join(str(p) for p in error["loc"]) or prefix
            kind = error["type"]
            if kind == "missing":
                message = "is required"
            elif kind == "extra_forbidden":
                message = f"{adapter.name} has no such {prefix} field"
            else:
                message = str(error["msg"]).removeprefix("Value error, ")
            errors.append({"field": f"{prefix}.{name}", "message": message})
        return errors
    return []


def _invalid(errors: list[dict[str, str]]) -> Invalid:
    first = errors[0]
    refusal = Invalid(first["field"], first["message"])
    refusal.extra["errors"] = errors
    return refusal


def enable(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    key: bytes,
    config: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    restaurant_id: str | None = None,
    keep_previous: bool = False,
) -> AdapterSummary:
    """Enable (or reconfigure) an adapter company-wide or for one restaurant, after the
    plan check (403 plan_locked naming the plan that unlocks it) and the adapter's own
    config and secrets models (422 naming each field, never a value). Secrets left out
    keep the stored ones; `keep_previous` keeps the previous values of a list secret
    (webhook signing secrets during a rotation) after the new one."""
    actor.require("operator", company_id)
    adapter = _adapter(name)
    plan = _plan(conn, company_id)
    if restaurant_id is not None:
        require_restaurant(conn, company_id, restaurant_id)
    plans = _plans(name)
    if plan not in plans:
        raise PlanLocked(
            f"the {plan} plan does not include {name}; the {plans[0]} plan does",
            plan=plan,
            unlocked_by=plans[0],
        )
    given = {k: v for k, v in (secrets or {}).items() if v not in (None, "", [])}
    stored = read_integration_secrets(
        conn, key=key, company_id=company_id, provider=name, restaurant_id=restaurant_id
    )
    merged = dict(stored)
    for spec in adapter.fields():
        if not spec.secret or spec.name not in given:
            continue
        value = given[spec.name]
        if spec.kind == "list" and isinstance(value, str):
            value = [value]
        if spec.kind == "list" and keep_previous and spec.cli.keep:
            kept = [s for s in stored.get(spec.name, []) if s not in value]
            value = list(value) + kept[: spec.cli.keep]
        merged[spec.name] = value
    unknown = [k for k in given if k not in {s.name for s in adapter.fields() if s.secret}]
    errors = _field_errors(adapter.config_model, config, adapter, "config")
    errors += _field_errors(
        adapter.secrets_model, {**merged, **{k: given[k] for k in unknown}}, adapter, "secrets"
    )
    if errors:
        raise _invalid(errors)
    # The plan and both models are checked above (what registry.enable_adapter checks);
    # secrets go in only when given, so the trail's secrets_replaced tells the truth.
    enable_integration(
        conn,
        key=key,
        company_id=company_id,
        provider=name,
        secrets=merged if given else None,
        config=dict(config),
        restaurant_id=restaurant_id,
        actor=actor,
        action="adapters.enable",
    )
    return _summaries(conn, company_id, [name], key)[0]


def _integration(
    conn: sa.Connection, company_id: str, name: str, restaurant_id: str | None
) -> sa.RowMapping:
    row = (
        conn.execute(
            sa.text(
                "select integration_id, enabled, config from ops.integrations "
                "where company_id = :c and provider = :p "
                "and coalesce(restaurant_id, '') = coalesce(:r, '')"
            ),
            {"c": company_id, "p": name, "r": restaurant_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        where = f"restaurant {restaurant_id}" if restaurant_id else "company-wide"
        raise NotFound(f"{name} is not set up for {company_id} ({where})")
    return row


def _target(company_id: str, name: str, restaurant_id: str | None) -> str:
    scope = f"/restaurant/{restaurant_id}" if restaurant_id else ""
    return f"company/{company_id}{scope}/provider/{name}"


def disable(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    restaurant_id: str | None = None,
    key: bytes | None = None,
) -> AdapterSummary:
    """Disable an adapter company-wide or for one restaurant. Idempotent. Its pending
    pushes wait (the worker skips disabled integrations) and go out if it is enabled
    again; its config, secrets and exclusions are kept."""
    actor.require("operator", company_id)
    _adapter(name)
    _plan(conn, company_id)
    row = _integration(conn, company_id, name, restaurant_id)
    if row["enabled"]:
        conn.execute(
            sa.text(
                "update ops.integrations set enabled = false, updated_at = now() "
                "where integration_id = :i"
            ),
            {"i": row["integration_id"]},
        )
        audit.record(
            conn,
            actor,
            action="adapters.disable",
            target=_target(company_id, name, restaurant_id),
            company_id=company_id,
            before={"enabled": True},
            after={"enabled": False},
        )
    return _summaries(conn, company_id, [name], key)[0]


def _company_wide(conn: sa.Connection, company_id: str, name: str, restaurant_id: str) -> int:
    _adapter(name)
    _plan(conn, company_id)
    require_restaurant(conn, company_id, restaurant_id)
    try:
        row = _integration(conn, company_id, name, None)
    except NotFound:
        raise Conflict(
            f"{name} is not enabled company-wide for {company_id}: only a company-wide "
            "adapter has exclusions (disable a restaurant's own one instead)"
        ) from None
    return int(row["integration_id"])


def exclude(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    restaurant_id: str,
    key: bytes | None = None,
) -> AdapterSummary:
    """Leave one restaurant out of a company-wide adapter: nothing more is enqueued for
    it, and what is still pending for it is cancelled. Idempotent."""
    actor.require("operator", company_id)
    integration_id = _company_wide(conn, company_id, name, restaurant_id)
    added = conn.execute(
        sa.text(
            "insert into ops.adapter_exclusions (integration_id, restaurant_id, created_by) "
            "values (:i, :r, :by) on conflict do nothing"
        ),
        {"i": integration_id, "r": restaurant_id, "by": actor.name},
    ).rowcount
    if added:
        cancelled = conn.execute(
            sa.text(
                "update ops.outbox set status = 'cancelled', claimed_by = null, "
                "updated_at = now() where integration_id = :i and restaurant_id = :r "
                "and status = 'pending'"
            ),
            {"i": integration_id, "r": restaurant_id},
        ).rowcount
        audit.record(
            conn,
            actor,
            action="adapters.exclude",
            target=_target(company_id, name, None),
            company_id=company_id,
            before={"excluded": False, "restaurant_id": restaurant_id},
            after={"excluded": True, "restaurant_id": restaurant_id},
            details={"pending_cancelled": cancelled},
        )
    return _summaries(conn, company_id, [name], key)[0]


def include(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    restaurant_id: str,
    key: bytes | None = None,
) -> AdapterSummary:
    """Take a restaurant back into a company-wide adapter (from its next event on).
    Idempotent."""
    actor.require("operator", company_id)
    integration_id = _company_wide(conn, company_id, name, restaurant_id)
    removed = conn.execute(
        sa.text(
            "delete from ops.adapter_exclusions where integration_id = :i and restaurant_id = :r"
        ),
        {"i": integration_id, "r": restaurant_id},
    ).rowcount
    if removed:
        audit.record(
            conn,
            actor,
            action="adapters.include",
            target=_target(company_id, name, None),
            company_id=company_id,
            before={"excluded": True, "restaurant_id": restaurant_id},
            after={"excluded": False, "restaurant_id": restaurant_id},
        )
    return _summaries(conn, company_id, [name], key)[0]


# -- test connection -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionTest:
    adapter: str
    restaurant_id: str | None
    ok: bool
    status_code: int | None
    detail: str  # the partner's reason phrase or the transport error's name; never a secret
    enabled: bool


def check_connection(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    key: bytes,
    restaurant_id: str | None = None,
    timeout: float = TEST_TIMEOUT_SECONDS,
) -> ConnectionTest:
    """Send the adapter's harmless signed ping with the stored URL and credentials (what
    `integrations test` does); a 2xx answer means they work. Audited as adapters.test."""
    actor.require("operator", company_id)
    adapter = _adapter(name)
    _plan(conn, company_id)
    row = _integration(conn, company_id, name, restaurant_id)
    secrets = read_integration_secrets(
        conn, key=key, company_id=company_id, provider=name, restaurant_id=restaurant_id
    )
    target = Target(
        int(row["integration_id"]), name, company_id, restaurant_id, row["config"] or {}, secrets
    )

    async def check() -> Any:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            return await adapter.test_connection(client, target)

    result = asyncio.run(check())
    audit.record(
        conn,
        actor,
        action="adapters.test",
        target=_target(company_id, name, restaurant_id),
        company_id=company_id,
        details={"ok": result.ok, "status_code": result.status_code},
    )
    return ConnectionTest(
        name, restaurant_id, result.ok, result.status_code, result.detail, bool(row["enabled"])
    )


# -- status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterStatus:
    company_id: str
    adapter: str
    enabled: bool
    last_success_at: datetime | None
    delivered_last_hour: int
    failures_last_hour: int  # attempts sent and not delivered (retried, refused, gone)
    deferred_last_hour: int  # attempts held back while the partner was backing off
    success_rate_last_hour: float | None  # delivered / (delivered + failures); None: no tries
    pending: int
    oldest_pending_at: datetime | None
    dead_letters_waiting: int


def status(conn: sa.Connection, actor: Actor, company_id: str, name: str) -> AdapterStatus:
    """Last success, the last hour's outcomes, what waits and what is dead, for one
    adapter of one company (every scope of it together)."""
    actor.require("viewer", company_id)
    _adapter(name)
    _plan(conn, company_id)
    row = (
        conn.execute(
            sa.text(
                """
                with mine as (
                    select integration_id, enabled from ops.integrations
                    where company_id = :c and provider = :p
                ), last_hour as (
                    select count(*) filter (where a.outcome = 'delivered') as delivered,
                           count(*) filter (where a.outcome in ('retry', 'failed', 'gone'))
                               as failures,
                           count(*) filter (where a.outcome = 'deferred') as deferred
                    from mine m join ops.delivery_attempts a
                      on a.integration_id = m.integration_id
                     and a.at >= now() - interval '1 hour'
                ), last_success as (
                    -- newest delivered attempt per integration: a backward index scan each
                    select max(l.at) as at from mine m cross join lateral (
                        select a.at from ops.delivery_attempts a
                        where a.integration_id = m.integration_id and a.outcome = 'delivered'
                        order by a.at desc limit 1
                    ) l
                )
                select (select coalesce(bool_or(enabled), false) from mine) as enabled,
                       s.at as last_success_at, h.delivered, h.failures, h.deferred
                from last_hour h, last_success s
                """
            ),
            {"c": company_id, "p": name},
        )
        .mappings()
        .one()
    )
    backlog = next((b for b in push_backlog(conn, company_id) if b.adapter == name), None)
    delivered, failures = int(row["delivered"] or 0), int(row["failures"] or 0)
    tried = delivered + failures
    return AdapterStatus(
        company_id=company_id,
        adapter=name,
        enabled=bool(row["enabled"]),
        last_success_at=row["last_success_at"],
        delivered_last_hour=delivered,
        failures_last_hour=failures,
        deferred_last_hour=int(row["deferred"] or 0),
        success_rate_last_hour=round(delivered / tried, 4) if tried else None,
        pending=backlog.pending if backlog else 0,
        oldest_pending_at=backlog.oldest_pending_at if backlog else None,
        dead_letters_waiting=backlog.dead_letters_waiting if backlog else 0,
    )


__all__ = [
    "AdapterScope",
    "AdapterStatus",
    "AdapterSummary",
    "Backlog",
    "ConnectionTest",
    "check_connection",
    "disable",
    "enable",
    "exclude",
    "get_adapter",
    "include",
    "list_adapters",
    "push_backlog",
    "status",
]
