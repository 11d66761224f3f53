"""Dead letters under operator control: pushes that gave up, listed with filters and
replayed one by one or as a selection (through `pushes.replay.replay_dead_letters`).

A listing never shows a credential: the reason and last error were redacted by the
worker when stored, and are redacted again here against the current secrets of every
integration of the company (a partner may echo any key); payload keys that name a
secret are shown as `[redacted]`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from partner_signals.adapters import ADAPTERS
from partner_signals.control.actor import Actor
from partner_signals.control.audit import _scrub
from partner_signals.control.errors import Invalid, NotFound
from partner_signals.control.lookups import require_company
from partner_signals.crypto import DecryptionError
from partner_signals.pushes.replay import replay_dead_letters
from partner_signals.registry import read_integration_secrets

PAGE_MAX = 500
REPLAY_IDS_MAX = 1000
Fault = Literal["partner", "ours", "credentials"]


@dataclass(frozen=True)
class DeadLetter:
    dead_letter_id: int
    delivery_id: int
    company_id: str
    restaurant_id: str | None
    adapter: str
    event_type: str
    event_id: str
    idempotency_key: str
    fault: str
    reason: str
    at: datetime
    replayed_at: datetime | None
    attempts: int
    last_response_code: int | None
    last_error: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Replayed:
    requeued: int
    # Dead letters of disabled integrations stay put: enable again, then replay.
    skipped_disabled: int


def encode_cursor(dead_letter_id: int) -> str:
    return base64.urlsafe_b64encode(f"d{dead_letter_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("d"):
            raise ValueError(raw)
        return int(raw[1:])
    except ValueError:
        raise Invalid("cursor", "not a cursor this API issued") from None


def _check_adapter(adapter: str | None) -> None:
    from partner_signals.platforms.adapter import PLATFORM_ADAPTERS

    known = {*ADAPTERS, *PLATFORM_ADAPTERS}
    if adapter is not None and adapter not in known:
        raise Invalid("adapter", f"one of {', '.join(sorted(known))}")


def _redact(text: str | None, secrets: list[str]) -> str | None:
    if text is None:
        return None
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def _secret_values(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _secret_values(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _secret_values(v)]
    return [str(value)] if value else []


def _credentials(conn: sa.Connection, key: bytes | None, company_id: str) -> list[str]:
    """Every stored credential string of the company's integrations, to redact with (a
    partner may echo any of them, and a payload is no place for one)."""
    if key is None:
        return []
    rows = conn.execute(
        sa.text(
            "select company_id, provider, restaurant_id from ops.integrations "
            "where company_id = :c and secret_ciphertext is not null"
        ),
        {"c": company_id},
    ).all()
    found: list[str] = []
    for r in rows:
        try:
            stored = read_integration_secrets(
                conn,
                key=key,
                company_id=r.company_id,
                provider=r.provider,
                restaurant_id=r.restaurant_id,
            )
        except DecryptionError:
            continue
        found += _secret_values(stored)
    return found


def list_dead_letters(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    *,
    key: bytes | None = None,
    adapter: str | None = None,
    event_type: str | None = None,
    restaurant_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_replayed: bool = False,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[DeadLetter], str | None]:
    """One company's dead letters, newest first, waiting ones only unless
    `include_replayed`; filters on adapter, event type, restaurant and when they were
    dead-lettered. Returns a page and the next page's cursor (None at the end)."""
    actor.require("viewer", company_id)
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid("limit", f"between 1 and {PAGE_MAX}")
    _check_adapter(adapter)
    require_company(conn, company_id)
    rows = (
        conn.execute(
            sa.text(
                """
                select d.dead_letter_id, d.delivery_id, o.company_id, o.restaurant_id,
                       o.adapter, o.event_type, o.event_id, o.idempotency_key, d.fault,
                       d.reason, d.at, d.replayed_at, o.attempts, o.last_response_code,
                       o.last_error, o.payload, o.integration_id
                from ops.dead_letters d join ops.outbox o using (delivery_id)
                where o.company_id = :c
                  and (:all or (d.replayed_at is null and o.status = 'dead'))
                  and (cast(:adapter as text) is null or o.adapter = :adapter)
                  and (cast(:event_type as text) is null or o.event_type = :event_type)
                  and (cast(:restaurant as text) is null or o.restaurant_id = :restaurant)
                  and (cast(:since as timestamptz) is null or d.at >= :since)
                  and (cast(:until as timestamptz) is null or d.at < :until)
                  and (cast(:after as bigint) is null or d.dead_letter_id < :after)
                order by d.dead_letter_id desc
                limit :n
                """
            ),
            {
                "c": company_id,
                "all": include_replayed,
                "adapter": adapter,
                "event_type": event_type,
                "restaurant": restaurant_id,
                "since": since,
                "until": until,
                "after": decode_cursor(cursor) if cursor else None,
                "n": limit + 1,
            },
        )
        .mappings()
        .all()
    )
    page = rows[:limit]
    secrets = _credentials(conn, key, company_id) if page else []
    letters = []
    for r in page:
        fields = {k: v for k, v in r.items() if k != "integration_id"}
        fields["reason"] = _redact(r["reason"], secrets) or ""
        fields["last_error"] = _redact(r["last_error"], secrets)
        fields["payload"] = _redact_payload(r["payload"] or {}, secrets)
        letters.append(DeadLetter(**fields))
    following = encode_cursor(letters[-1].dead_letter_id) if len(rows) > limit else None
    return letters, following


def _redact_payload(payload: Any, secrets: list[str]) -> Any:
    scrubbed = _scrub(payload)
    return _walk(scrubbed, secrets)


def _walk(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _walk(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, secrets) for v in value]
    if isinstance(value, str):
        return _redact(value, secrets)
    return value


def replay(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    *,
    ids: list[int] | None = None,
    adapter: str | None = None,
    event_type: str | None = None,
    restaurant_id: str | None = None,
    fault: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    everything: bool = False,
) -> Replayed:
    """Put one company's dead letters back in the outbox: the ones named by `ids` (an
    id the company does not have is 404), or those matching the filters, or all of them
    with `everything`. Already replayed ones are left alone (replaying twice is a no-op).
    Audited as dead_letters.replay with the filters and the count."""
    actor.require("operator", company_id)
    _check_adapter(adapter)
    if fault not in (None, "partner", "ours", "credentials"):
        raise Invalid("fault", "partner, ours or credentials")
    chosen: Fault | None = fault  # type: ignore[assignment]
    require_company(conn, company_id)
    filtered = any(v is not None for v in (adapter, event_type, restaurant_id, fault, since, until))
    if ids is not None:
        if not 1 <= len(ids) <= REPLAY_IDS_MAX:
            raise Invalid("ids", f"1 to {REPLAY_IDS_MAX} dead letter ids")
        known: set[int] = set(
            conn.execute(
                sa.text(
                    "select d.dead_letter_id from ops.dead_letters d join ops.outbox o "
                    "using (delivery_id) where o.company_id = :c and d.dead_letter_id = any(:ids)"
                ),
                {"c": company_id, "ids": ids},
            ).scalars()
        )
        missing = sorted(set(ids) - known)
        if missing:
            raise NotFound(f"no dead letter {', '.join(str(i) for i in missing)} in {company_id!r}")
    elif not (filtered or everything):
        raise Invalid(
            "ids",
            "give ids, a filter (adapter, event_type, restaurant_id, fault, since, until) "
            "or all: true",
        )
    result = replay_dead_letters(
        conn,
        company_id=company_id,
        ids=sorted(set(ids)) if ids is not None else None,
        adapter=adapter,
        event_type=event_type,
        restaurant_id=restaurant_id,
        fault=chosen,
        since=since,
        until=until,
        actor=actor,
        action="dead_letters.replay",
    )
    return Replayed(result.requeued, result.skipped_disabled)
