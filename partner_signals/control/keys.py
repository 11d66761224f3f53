"""Partner API keys and POS ingest keys: list, create (the secret shown once), revoke.

A key is stored as its SHA-256 digest beside its prefix (its first 10 characters, what
every listing shows). A revocation commits, the NOTIFY trigger of migration 0011 fires,
and every ingest and partner API worker forgets the cached key: it is refused within
milliseconds (tests/admin/test_keys.py measures it on two workers). `last_used_at` is
written by each worker in batches (partner_signals.key_usage), never per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from partner_signals.control import audit
from partner_signals.control.actor import Actor, Role
from partner_signals.control.errors import Invalid, NotFound
from partner_signals.control.lookups import require_company
from partner_signals.crypto import hash_api_key, new_api_key

SCOPES = ("read:workforce", "read:crm", "read:events", "read:exports", "read:orders")
PARTNER_KEY_PREFIX = "psk"
INGEST_KEY_PREFIX = "psi"
PREFIX_CHARS = 10
Kind = Literal["partner", "ingest"]
TABLES: dict[Kind, str] = {"partner": "ops.partner_keys", "ingest": "ops.ingest_keys"}
NOUNS: dict[Kind, str] = {"partner": "partner key", "ingest": "ingest key"}


@dataclass(frozen=True)
class PartnerKey:
    """A partner API key as operators see it: never its secret nor its digest."""

    company_id: str
    prefix: str
    name: str | None
    scopes: list[str]
    restaurant_id: str | None  # None: every restaurant of the company
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IngestKey:
    """A POS ingest key (it may post events for any restaurant of its company)."""

    company_id: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_PARTNER_COLUMNS = (
    "company_id, key_prefix as prefix, name, scopes, restaurant_id, created_at, "
    "last_used_at, revoked_at"
)
_INGEST_COLUMNS = "company_id, key_prefix as prefix, created_at, last_used_at, revoked_at"


def _company(conn: sa.Connection, actor: Actor, company_id: str, role: Role) -> None:
    actor.require(role, company_id)
    require_company(conn, company_id)


def _where(include_revoked: bool) -> str:
    return "company_id = :c" + ("" if include_revoked else " and revoked_at is null")


def list_partner_keys(
    conn: sa.Connection, actor: Actor, company_id: str, *, include_revoked: bool = False
) -> list[PartnerKey]:
    _company(conn, actor, company_id, "viewer")
    rows = conn.execute(
        sa.text(
            f"select {_PARTNER_COLUMNS} from ops.partner_keys where {_where(include_revoked)} "
            "order by created_at, key_id"
        ),
        {"c": company_id},
    ).all()
    return [PartnerKey(**r._asdict()) for r in rows]


def list_ingest_keys(
    conn: sa.Connection, actor: Actor, company_id: str, *, include_revoked: bool = False
) -> list[IngestKey]:
    _company(conn, actor, company_id, "viewer")
    rows = conn.execute(
        sa.text(
            f"select {_INGEST_COLUMNS} from ops.ingest_keys where {_where(include_revoked)} "
            "order by created_at, key_id"
        ),
        {"c": company_id},
    ).all()
    return [IngestKey(**r._asdict()) for r in rows]


def create_partner_key(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    *,
    scopes: Sequence[str],
    restaurant_id: str | None = None,
    name: str | None = None,
) -> tuple[PartnerKey, str]:
    """A new partner key and its secret (returned this once; only its digest is kept)."""
    _company(conn, actor, company_id, "admin")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise Invalid("scopes", f"one or more of {', '.join(SCOPES)}; got {unknown or 'none'}")
    if name is not None and not 1 <= len(name) <= 100:
        raise Invalid("name", "1 to 100 characters")
    if restaurant_id is not None:
        owner = conn.execute(
            sa.text("select company_id from ops.restaurants where restaurant_id = :r"),
            {"r": restaurant_id},
        ).scalar()
        if owner != company_id:
            raise Invalid("restaurant_id", f"{restaurant_id!r} is not a restaurant of {company_id}")
    secret = new_api_key(PARTNER_KEY_PREFIX)
    row = conn.execute(
        sa.text(
            "insert into ops.partner_keys (company_id, restaurant_id, scopes, name, key_prefix, "
            f"key_hash) values (:c, :r, :s, :n, :p, :h) returning {_PARTNER_COLUMNS}"
        ),
        {
            "c": company_id,
            "r": restaurant_id,
            "s": sorted(set(scopes)),
            "n": name,
            "p": secret[:PREFIX_CHARS],
            "h": hash_api_key(secret),
        },
    ).one()
    key = PartnerKey(**row._asdict())
    audit.record(
        conn,
        actor,
        action="partner_keys.create",
        target=f"company/{company_id}/partner_key/{key.prefix}",
        company_id=company_id,
        after=_public(key),
    )
    return key, secret


def create_ingest_key(conn: sa.Connection, actor: Actor, company_id: str) -> tuple[IngestKey, str]:
    """A new POS ingest key and its secret (returned this once)."""
    _company(conn, actor, company_id, "admin")
    secret = new_api_key(INGEST_KEY_PREFIX)
    row = conn.execute(
        sa.text(
            "insert into ops.ingest_keys (company_id, key_prefix, key_hash) values (:c, :p, :h) "
            f"returning {_INGEST_COLUMNS}"
        ),
        {"c": company_id, "p": secret[:PREFIX_CHARS], "h": hash_api_key(secret)},
    ).one()
    key = IngestKey(**row._asdict())
    audit.record(
        conn,
        actor,
        action="ingest_keys.create",
        target=f"company/{company_id}/ingest_key/{key.prefix}",
        company_id=company_id,
        after=_public(key),
    )
    return key, secret


def revoke_partner_key(
    conn: sa.Connection, actor: Actor, company_id: str, prefix: str
) -> list[PartnerKey]:
    """Revoke the company's live partner keys starting with `prefix`; refused (404) when
    there is none, so a second revoke says so."""
    rows = _revoke(conn, actor, "partner", company_id, prefix, _PARTNER_COLUMNS)
    return [PartnerKey(**r) for r in rows]


def revoke_ingest_key(
    conn: sa.Connection, actor: Actor, company_id: str, prefix: str
) -> list[IngestKey]:
    rows = _revoke(conn, actor, "ingest", company_id, prefix, _INGEST_COLUMNS)
    return [IngestKey(**r) for r in rows]


def company_of_prefix(conn: sa.Connection, actor: Actor, kind: Kind, prefix: str) -> str:
    """The company of the live key starting with `prefix` (the CLI's revoke by prefix)."""
    actor.require("admin")
    company = conn.execute(
        sa.text(
            f"select company_id from {TABLES[kind]} "
            "where key_prefix = :p and revoked_at is null order by key_id limit 1"
        ),
        {"p": prefix},
    ).scalar()
    if company is None or not actor.sees(company):
        raise NotFound(f"no live {NOUNS[kind]} starts with {prefix!r}")
    return str(company)


def _revoke(
    conn: sa.Connection, actor: Actor, kind: Kind, company_id: str, prefix: str, columns: str
) -> list[dict[str, Any]]:
    _company(conn, actor, company_id, "admin")
    rows = [
        dict(r)
        for r in conn.execute(
            sa.text(
                f"update {TABLES[kind]} set revoked_at = now() "
                "where company_id = :c and key_prefix = :p and revoked_at is null "
                f"returning {columns}"
            ),
            {"c": company_id, "p": prefix},
        ).mappings()
    ]
    if not rows:
        raise NotFound(f"no live {NOUNS[kind]} of {company_id} starts with {prefix!r}")
    for row in rows:
        shown = {k: v for k, v in row.items() if k in ("prefix", "name", "scopes", "restaurant_id")}
        audit.record(
            conn,
            actor,
            action=f"{kind}_keys.revoke",
            target=f"company/{company_id}/{kind}_key/{prefix}",
            company_id=company_id,
            before={**shown, "revoked": False},
            after={**shown, "revoked": True},
        )
    return rows


def _public(key: PartnerKey | IngestKey) -> dict[str, object]:
    if isinstance(key, PartnerKey):
        return {
            "prefix": key.prefix,
            "name": key.name,
            "scopes": key.scopes,
            "restaurant_id": key.restaurant_id,
        }
    return {"prefix": key.prefix}
