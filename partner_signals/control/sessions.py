"""Browser sessions of the operator console.

An operator logs in with its token once; the browser keeps only a random session id in
an HttpOnly, SameSite=Strict cookie. The database keeps the id's digest, the operator
and a CSRF token that every form must send back. A session lasts `SESSION_HOURS`; a
revoked operator's sessions stop working on the next page (the operator is looked up on
every request), and logging out deletes the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from partner_signals.control.actor import Actor
from partner_signals.control.operators import authenticate

SESSION_HOURS = 12


@dataclass(frozen=True)
class Session:
    session_id: str  # the cookie's value; never stored
    csrf_token: str
    actor: Actor


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def login(conn: sa.Connection, token: str) -> Session | None:
    """A new session for the holder of `token`, or None for an unknown or revoked one."""
    actor = authenticate(conn, token.strip())
    if actor is None:
        return None
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        sa.text(
            """
            insert into ops.console_sessions (session_hash, operator_id, csrf_token, expires_at)
            values (:h, :o, :csrf, now() + make_interval(hours => :hours))
            """
        ),
        {"h": _digest(session_id), "o": actor.operator_id, "csrf": csrf, "hours": SESSION_HOURS},
    )
    # Expired sessions of anyone are swept here, the one place sessions are made.
    conn.execute(sa.text("delete from ops.console_sessions where expires_at < now()"))
    return Session(session_id, csrf, actor)


def resume(
    conn: sa.Connection, session_id: str, *, request_id: str | None = None
) -> Session | None:
    """The live session behind a cookie: unexpired, and its operator not revoked."""
    if not session_id or len(session_id) > 100:
        return None
    row = conn.execute(
        sa.text(
            """
            select s.csrf_token, o.operator_id, o.name, o.role, o.company_id
            from ops.console_sessions s join ops.operators o using (operator_id)
            where s.session_hash = :h and s.expires_at > now() and o.revoked_at is null
            """
        ),
        {"h": _digest(session_id)},
    ).one_or_none()
    if row is None:
        return None
    actor = Actor(
        name=row.name,
        role=row.role,
        company_id=row.company_id,
        operator_id=row.operator_id,
        request_id=request_id,
    )
    return Session(session_id, row.csrf_token, actor)


def logout(conn: sa.Connection, session_id: str) -> None:
    conn.execute(
        sa.text("delete from ops.console_sessions where session_hash = :h"),
        {"h": _digest(session_id)},
    )


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf_token, sent or "")
