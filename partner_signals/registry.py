"""Operator actions on the ops schema: companies, restaurants, integrations, ingest keys.

Plain functions over a SQLAlchemy connection, keyword-only, used by the CLI, the demo
and tests alike. Secrets go in encrypted or hashed and never come back out in plain
text, except a new key's single printing by its caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import sqlalchemy as sa

from partner_signals.control import keys
from partner_signals.control.actor import Actor
from partner_signals.control.errors import ControlError, NotFound
from partner_signals.crypto import encrypt_json


class RegistryError(ControlError):
    """An operator asked for something the registry cannot do; the message says why."""


def integration_context(company_id: str, provider: str, restaurant_id: str | None) -> str:
    """The associated data bound into an integration's ciphertext."""
    return f"{company_id}/{restaurant_id or '*'}/{provider}"


def ensure_company(
    conn: sa.Connection, *, company_id: str, name: str | None = None, plan: str | None = None
) -> None:
    conn.execute(
        sa.text(
            """
            insert into ops.companies (company_id, name, plan)
            values (:c, :n, coalesce(:p, 'standard'))
            on conflict (company_id) do update
                set name = coalesce(:n_update, ops.companies.name),
                    plan = coalesce(:p, ops.companies.plan)
            """
        ),
        {"c": company_id, "n": name or company_id, "n_update": name, "p": plan},
    )


def add_restaurant(
    conn: sa.Connection,
    *,
    company_id: str,
    restaurant_id: str,
    timezone: str,
    name: str | None = None,
) -> bool:
    """Register a restaurant (and its company if new). True when it was new."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RegistryError(f"unknown time zone {timezone!r}") from exc
    ensure_company(conn, company_id=company_id)
    owner = conn.execute(
        sa.text("select company_id from ops.restaurants where restaurant_id = :r"),
        {"r": restaurant_id},
    ).scalar()
    if owner is not None and owner != company_id:
        raise RegistryError(f"restaurant {restaurant_id!r} belongs to another company")
    row = conn.execute(
        sa.text(
            """
            insert into ops.restaurants (restaurant_id, company_id, name, timezone)
            values (:r, :c, :n, :tz)
            on conflict (restaurant_id) do update
                set name = excluded.name, timezone = excluded.timezone
            returning (xmax = 0) as inserted
            """
        ),
        {"r": restaurant_id, "c": company_id, "n": name or restaurant_id, "tz": timezone},
    ).scalar()
    audit(
        conn,
        action="restaurants.add",
        company_id=company_id,
        details={"restaurant_id": restaurant_id},
    )
    return bool(row)


@dataclass(frozen=True)
class Integration:
    company_id: str
    provider: str
    restaurant_id: str | None
    config: dict[str, Any]


def enable_integration(
    conn: sa.Connection,
    *,
    key: bytes,
    company_id: str,
    provider: str,
    secrets: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    restaurant_id: str | None = None,
    actor: Actor | None = None,
    action: str = "integrations.enable",
) -> Integration:
    """Enable (or reconfigure) one provider or adapter; secrets are sealed with AES-256-GCM.
    The audit entry names `actor` (the command line when None) and the enabled state and
    config keys before and after; never a secret."""
    exists = conn.execute(
        sa.text("select 1 from ops.companies where company_id = :c"), {"c": company_id}
    ).scalar()
    if not exists:
        raise RegistryError(f"unknown company {company_id!r}: add a restaurant first")
    prior = (
        conn.execute(
            sa.text(
                "select enabled, config from ops.integrations where company_id = :c "
                "and provider = :p and coalesce(restaurant_id, '') = coalesce(:r, '')"
            ),
            {"c": company_id, "p": provider, "r": restaurant_id},
        )
        .mappings()
        .first()
    )
    ciphertext = (
        encrypt_json(key, secrets, context=integration_context(company_id, provider, restaurant_id))
        if secrets
        else None
    )
    conn.execute(
        sa.text(
            """
            insert into ops.integrations
                (company_id, restaurant_id, provider, config, secret_ciphertext, enabled)
            values (:c, :r, :p, cast(:cfg as jsonb), :s, true)
            on conflict (company_id, provider, coalesce(restaurant_id, '')) do update
                set config = excluded.config,
                    secret_ciphertext = coalesce(excluded.secret_ciphertext,
                                                 ops.integrations.secret_ciphertext),
                    enabled = true,
                    updated_at = now()
            """
        ),
        {
            "c": company_id,
            "r": restaurant_id,
            "p": provider,
            "cfg": orjson.dumps(config or {}).decode(),
            "s": ciphertext,
        },
    )
    audit(
        conn,
        action=action,
        company_id=company_id,
        details={
            "provider": provider,
            "restaurant_id": restaurant_id,
            "config_keys": sorted(config or {}),
            "secrets_replaced": bool(secrets),
        },
        before=(
            {"enabled": prior["enabled"], "config_keys": sorted(prior["config"] or {})}
            if prior
            else None
        ),
        after={"enabled": True, "config_keys": sorted(config or {})},
        actor=actor,
    )
    return Integration(company_id, provider, restaurant_id, dict(config or {}))


def create_ingest_key(conn: sa.Connection, *, company_id: str) -> str:
    """A new POS ingest key for the company (`control.keys.create_ingest_key` as the
    command line). Returned once; only its hash is stored."""
    try:
        return keys.create_ingest_key(conn, Actor.cli(), company_id)[1]
    except ControlError as exc:
        raise RegistryError(f"{exc}: add a restaurant first") from None


def revoke_ingest_key(conn: sa.Connection, *, prefix: str) -> int:
    """Revoke the live ingest keys that start with `prefix`; how many (0: none). Every
    ingest worker refuses them within milliseconds of the commit (migration 0011's NOTIFY)."""
    actor = Actor.cli()
    try:
        company = keys.company_of_prefix(conn, actor, "ingest", prefix)
        return len(keys.revoke_ingest_key(conn, actor, company, prefix))
    except NotFound:
        return 0


def audit(
    conn: sa.Connection,
    *,
    action: str,
    company_id: str | None,
    details: dict[str, Any],
    actor: Actor | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a change in the audit trail (`control.audit.record`), by the command line
    unless an actor is given."""
    from partner_signals.control import audit as trail

    who = actor or Actor.cli()
    target = "/".join(
        str(part)
        for part in (
            f"company/{company_id}" if company_id else None,
            *(
                f"{k.removesuffix('_id')}/{details[k]}"
                for k in ("restaurant_id", "provider")
                if details.get(k)
            ),
        )
        if part
    )
    trail.record(
        conn,
        who,
        action=action,
        target=target,
        company_id=company_id,
        details=details,
        before=before,
        after=after,
    )


def read_integration_secrets(
    conn: sa.Connection,
    *,
    key: bytes,
    company_id: str,
    provider: str,
    restaurant_id: str | None = None,
) -> dict[str, Any]:
    """The decrypted secrets of one integration ({} when none), for rotations that keep
    the previous secret. Callers must never print what this returns."""
    from partner_signals.crypto import decrypt_json

    blob = conn.execute(
        sa.text(
            "select secret_ciphertext from ops.integrations where company_id = :c "
            "and provider = :p and coalesce(restaurant_id, '') = coalesce(:r, '')"
        ),
        {"c": company_id, "p": provider, "r": restaurant_id},
    ).scalar()
    if not blob:
        return {}
    return decrypt_json(
        key, bytes(blob), context=integration_context(company_id, provider, restaurant_id)
    )


def enable_adapter(
    conn: sa.Connection,
    *,
    key: bytes,
    company_id: str,
    adapter: str,
    secrets: dict[str, Any],
    config: dict[str, Any],
    restaurant_id: str | None = None,
    actor: Actor | None = None,
) -> Integration:
    """Enable a partner adapter for a company or one of its restaurants, after checking
    the company's plan tier and the config and secrets against the adapter's own models
    (`config_model`, `secrets_model`): an undeclared or malformed field is refused."""
    from partner_signals.adapters import CredentialError, check_plan, get_adapter

    plan = conn.execute(
        sa.text("select plan from ops.companies where company_id = :c"), {"c": company_id}
    ).scalar()
    if plan is None:
        raise RegistryError(f"unknown company {company_id!r}: add a restaurant first")
    if restaurant_id is not None:
        owner = conn.execute(
            sa.text("select company_id from ops.restaurants where restaurant_id = :r"),
            {"r": restaurant_id},
        ).scalar()
        if owner != company_id:
            raise RegistryError(f"restaurant {restaurant_id!r} is not one of {company_id!r}'s")
    try:
        impl = get_adapter(adapter)
        check_plan(str(plan), adapter)
        impl.validate(config, secrets)
    except CredentialError as exc:
        raise RegistryError(str(exc)) from None
    return enable_integration(
        conn,
        key=key,
        company_id=company_id,
        provider=adapter,
        secrets=secrets,
        config=config,
        restaurant_id=restaurant_id,
        actor=actor,
        action="adapters.enable",
    )
