"""Operator tokens: created by an admin, shown once, stored as a digest, revocable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

import sqlalchemy as sa

from partner_signals.control import audit
from partner_signals.control.actor import Actor, Role
from partner_signals.control.errors import Conflict, Invalid, NotFound
from partner_signals.crypto import hash_api_key, new_api_key
from partner_signals.ids import is_id

TOKEN_PREFIX = "pso"  # noqa: S105 - the readable start of a token, not a secret
# How often a token's last_used_at is written at most: a busy console must not turn
# every read into a write.
LAST_USED_RESOLUTION = "1 minute"


@dataclass(frozen=True)
class Operator:
    operator_id: int
    name: str
    role: Role
    company_id: str | None
    token_prefix: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


_COLUMNS = (
    "operator_id, name, role, company_id, token_prefix, created_at, created_by, "
    "last_used_at, revoked_at"
)


def _public(op: Operator) -> dict[str, object]:
    return {"name": op.name, "role": op.role, "company_id": op.company_id}


def create(
    conn: sa.Connection, actor: Actor, *, name: str, role: str, company_id: str | None = None
) -> tuple[Operator, str]:
    """A new operator and its token (returned once; only its digest is kept)."""
    if role not in get_args(Role):
        raise Invalid("role", f"one of {', '.join(get_args(Role))}")
    if not is_id(name.replace("@", "_")):
        raise Invalid("name", "letters, digits and . _ - @, at most 64")
    if actor.company_id is not None:
        company_id = company_id or actor.company_id
    actor.require("admin", company_id)
    if (
        company_id is not None
        and not conn.execute(
            sa.text("select 1 from ops.companies where company_id = :c"), {"c": company_id}
        ).scalar()
    ):
        raise NotFound(f"no company {company_id!r}")
    token = new_api_key(TOKEN_PREFIX)
    row = conn.execute(
        sa.text(
            f"""
            insert into ops.operators (name, role, company_id, token_prefix, token_hash,
                                       created_by)
            values (:n, :r, :c, :p, :h, :by)
            on conflict (name) where revoked_at is null do nothing
            returning {_COLUMNS}
            """
        ),
        {
            "n": name,
            "r": role,
            "c": company_id,
            "p": token[:10],
            "h": hash_api_key(token),
            "by": actor.name,
        },
    ).one_or_none()
    if row is None:
        raise Conflict(f"an operator named {name!r} exists; revoke it first")
    operator = Operator(**row._asdict())
    audit.record(
        conn,
        actor,
        action="operators.create",
        target=f"operator/{name}",
        company_id=company_id,
        after={**_public(operator), "token_prefix": operator.token_prefix},
    )
    return operator, token


def list_operators(
    conn: sa.Connection, actor: Actor, *, include_revoked: bool = False
) -> list[Operator]:
    actor.require("admin")
    where = ["true"]
    params: dict[str, object] = {}
    if actor.company_id is not None:
        where.append("company_id = :c")
        params["c"] = actor.company_id
    if not include_revoked:
        where.append("revoked_at is null")
    rows = conn.execute(
        sa.text(
            f"select {_COLUMNS} from ops.operators where {' and '.join(where)} "
            "order by name, operator_id"
        ),
        params,
    ).all()
    return [Operator(**r._asdict()) for r in rows]


def revoke(conn: sa.Connection, actor: Actor, *, name: str) -> Operator:
    """Revoke the live token named `name`: refused from the next request on."""
    actor.require("admin")
    row = conn.execute(
        sa.text(
            f"""
            update ops.operators set revoked_at = now()
            where name = :n and revoked_at is null
              and (cast(:scope as text) is null or company_id = :scope)
            returning {_COLUMNS}
            """
        ),
        {"n": name, "scope": actor.company_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no live operator named {name!r}")
    operator = Operator(**row._asdict())
    audit.record(
        conn,
        actor,
        action="operators.revoke",
        target=f"operator/{name}",
        company_id=operator.company_id,
        before={**_public(operator), "revoked": False},
        after={**_public(operator), "revoked": True},
    )
    return operator


def authenticate(conn: sa.Connection, token: str, *, request_id: str | None = None) -> Actor | None:
    """The actor holding `token`, or None for an unknown or revoked one. Marks the token
    used (at most once a minute)."""
    if not token.startswith(TOKEN_PREFIX + "_"):
        return None
    row = (
        conn.execute(
            sa.text(
                f"""
            update ops.operators set last_used_at = now()
            where token_hash = :h and revoked_at is null
              and (last_used_at is null
                   or last_used_at < now() - interval '{LAST_USED_RESOLUTION}')
            returning operator_id, name, role, company_id
            """
            ),
            {"h": hash_api_key(token)},
        ).one_or_none()
        or conn.execute(
            sa.text(
                "select operator_id, name, role, company_id from ops.operators "
                "where token_hash = :h and revoked_at is null"
            ),
            {"h": hash_api_key(token)},
        ).one_or_none()
    )
    if row is None:
        return None
    return Actor(
        name=row.name,
        role=row.role,
        company_id=row.company_id,
        operator_id=row.operator_id,
        request_id=request_id,
    )
