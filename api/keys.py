"""Partner API keys, as the partner API and its tests have always made them: a thin
front of `partner_signals.control.keys` acting as the command line."""

from __future__ import annotations

import sqlalchemy as sa

from partner_signals.control import keys
from partner_signals.control.actor import Actor
from partner_signals.control.errors import ControlError, NotFound
from partner_signals.registry import RegistryError

SCOPES = keys.SCOPES
KEY_PREFIX = keys.PARTNER_KEY_PREFIX


def create_partner_key(
    conn: sa.Connection,
    *,
    company_id: str,
    scopes: list[str],
    restaurant_id: str | None = None,
    name: str | None = None,
) -> str:
    try:
        _, secret = keys.create_partner_key(
            conn, Actor.cli(), company_id, scopes=scopes, restaurant_id=restaurant_id, name=name
        )
    except ControlError as exc:
        raise RegistryError(str(exc)) from None
    return secret


def revoke_partner_key(conn: sa.Connection, *, prefix: str) -> int:
    """Revoke the live partner keys that start with `prefix`; how many (0: none)."""
    actor = Actor.cli()
    try:
        company = keys.company_of_prefix(conn, actor, "partner", prefix)
        return len(keys.revoke_partner_key(conn, actor, company, prefix))
    except NotFound:
        return 0
