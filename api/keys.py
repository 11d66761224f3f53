"""Partner API keys: created once, shown once, stored as SHA-256 digests with their scopes."""

from __future__ import annotations

import sqlalchemy as sa

from partner_signals.crypto import hash_api_key, new_api_key
from partner_signals.registry import RegistryError, audit

SCOPES = ("read:workforce", "read:crm", "read:events", "read:exports")
KEY_PREFIX = "psk"


def create_partner_key(
    conn: sa.Connection,
    *,
    company_id: str,
    scopes: list[str],
    restaurant_id: str | None = None,
    name: str | None = None,
) -> str:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise RegistryError(f"scopes must be among {', '.join(SCOPES)}; got {unknown or 'none'}")
    owner = conn.execute(
        sa.text("select 1 from ops.companies where company_id = :c"), {"c": company_id}
    ).scalar()
    if owner is None:
        raise RegistryError(f"unknown company {company_id!r}")
    if restaurant_id is not None:
        company_of = conn.execute(
            sa.text("select company_id from ops.restaurants where restaurant_id = :r"),
            {"r": restaurant_id},
        ).scalar()
        if company_of != company_id:
            raise RegistryError(f"restaurant {restaurant_id!r} is not one of {company_id!r}'s")
    key = new_api_key(KEY_PREFIX)
    conn.execute(
        sa.text(
            "insert into ops.partner_keys (company_id, restaurant_id, scopes, name, key_prefix, "
            "key_hash) values (:c, :r, :s, :n, :p, :h)"
        ),
        {
            "c": company_id,
            "r": restaurant_id,
            "s": sorted(set(scopes)),
            "n": name,
            "p": key[:10],
            "h": hash_api_key(key),
        },
    )
    audit(
        conn,
        action="partner_keys.create",
        company_id=company_id,
        details={"prefix": key[:10], "restaurant_id": restaurant_id, "scopes": sorted(scopes)},
    )
    return key


def revoke_partner_key(conn: sa.Connection, *, prefix: str) -> int:
    """Revoke the live partner keys that start with `prefix`; how many. Every partner
    API worker refuses them within milliseconds of the commit (migration 0010's NOTIFY)."""
    companies: list[str] = list(
        conn.execute(
            sa.text(
                "update ops.partner_keys set revoked_at = now() "
                "where key_prefix = :p and revoked_at is null returning company_id"
            ),
            {"p": prefix},
        ).scalars()
    )
    for company_id in companies:
        audit(conn, action="partner_keys.revoke", company_id=company_id, details={"prefix": prefix})
    return len(companies)
