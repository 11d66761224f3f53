"""The audit trail: every change, by whom, to what, with the before and after of the
fields that are safe to show. Append-only (migration 0012 refuses updates and deletes).

`record` is called inside the transaction that makes the change, so a change and its
trail commit together or not at all. Secrets never reach it: callers pass only
non-secret fields, and `record` refuses a value under a key that names a secret.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from partner_signals.control.actor import Actor
from partner_signals.control.errors import Invalid

# A key naming any of these never reaches the trail, whatever a caller passes.
SECRET_WORDS = ("secret", "token", "password", "key_hash", "ciphertext", "private")
PAGE_MAX = 500


def _secret_name(key: str) -> bool:
    # A key's prefix (its first characters, shown in every listing) is not the key.
    lowered = key.lower()
    return not lowered.endswith("prefix") and any(w in lowered for w in SECRET_WORDS)


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: ("[redacted]" if _secret_name(str(k)) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(_scrub(value), default=str).decode()


def record(
    conn: sa.Connection,
    actor: Actor,
    *,
    action: str,
    target: str,
    company_id: str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one change. `action` is `<resource>.<verb>` (e.g. `integrations.disable`),
    `target` names what changed (e.g. `company/acme/integration/stripe`)."""
    conn.execute(
        sa.text(
            """
            insert into ops.audit_log
                (actor, action, company_id, target, before, after, details, request_id)
            values (:actor, :action, :company, :target, cast(:before as jsonb),
                    cast(:after as jsonb), cast(:details as jsonb), :request_id)
            """
        ),
        {
            "actor": actor.name,
            "action": action,
            "company": company_id,
            "target": target,
            "before": _json(before),
            "after": _json(after),
            "details": _json(details or {}),
            "request_id": actor.request_id,
        },
    )


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: datetime
    actor: str
    action: str
    company_id: str | None
    target: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any]
    request_id: str | None


def encode_cursor(audit_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{audit_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("a"):
            raise ValueError(raw)
        return int(raw[1:])
    except ValueError:
        raise Invalid("cursor", "not a cursor this API issued") from None


def list_entries(
    conn: sa.Connection,
    actor: Actor,
    *,
    company_id: str | None = None,
    action: str | None = None,
    who: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[AuditEntry], str | None]:
    """Newest first. Filters: company, action (exact, or a prefix ending in `.`), actor,
    target prefix, time range. Returns a page and the cursor of the next one (None at the
    end). A company-bound actor sees only its company's entries."""
    actor.require("viewer", company_id)
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid("limit", f"between 1 and {PAGE_MAX}")
    where = ["true"]
    params: dict[str, Any] = {"limit": limit + 1}
    scope = company_id or actor.company_id
    if scope is not None:
        where.append("company_id = :company")
        params["company"] = scope
    if action:
        if action.endswith("."):
            where.append("starts_with(action, :action)")
        else:
            where.append("action = :action")
        params["action"] = action
    if who:
        where.append("actor = :who")
        params["who"] = who
    if target:
        where.append("starts_with(target, :target)")
        params["target"] = target
    if since:
        where.append("at >= :since")
        params["since"] = since
    if until:
        where.append("at < :until")
        params["until"] = until
    if cursor:
        where.append("audit_id < :after")
        params["after"] = decode_cursor(cursor)
    rows = conn.execute(
        sa.text(
            "select audit_id, at, actor, action, company_id, target, before, after, details, "
            f"request_id from ops.audit_log where {' and '.join(where)} "
            "order by audit_id desc limit :limit"
        ),
        params,
    ).all()
    entries = [AuditEntry(**row._asdict()) for row in rows[:limit]]
    following = encode_cursor(entries[-1].audit_id) if len(rows) > limit else None
    return entries, following
