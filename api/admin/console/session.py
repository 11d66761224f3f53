"""Who is looking at a console page: the session cookie, its CSRF token, and the answers
that send a browser back to the login page or back to the page it came from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse

from api.admin.deps import Engine, request_id
from partner_signals.control import sessions
from partner_signals.control.errors import ControlError, Forbidden

COOKIE = "ps_console"


class LoginRequired(Exception):
    """No live session: the handler answers with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def current_session(request: Request, eng: Engine) -> sessions.Session:
    session_id = request.cookies.get(COOKIE, "")
    with eng.begin() as conn:
        session = sessions.resume(conn, session_id, request_id=request_id(request))
    if session is None:
        raise LoginRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    request.state.actor = session.actor.name
    return session


Session = Annotated[sessions.Session, Depends(current_session)]


def checked_session(
    session: Session, csrf_token: Annotated[str | None, Form()] = None
) -> sessions.Session:
    """For every form that changes something: the form's CSRF token must be the session's."""
    if not sessions.csrf_ok(session, csrf_token):
        raise Forbidden("the form's CSRF token does not match this session; reload the page")
    return session


FormSession = Annotated[sessions.Session, Depends(checked_session)]


def back(url: str, *, ok: str | None = None, error: str | None = None) -> RedirectResponse:
    """Post/redirect/get: back to `url` with a one-time message in the query."""
    params = {k: v for k, v in (("ok", ok), ("error", error)) if v}
    sep = "&" if "?" in url else "?"
    return RedirectResponse(url + (sep + urlencode(params) if params else ""), status_code=303)


@contextmanager
def acting(eng: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction for a form's change (the change and its audit entry together)."""
    with eng.begin() as conn:
        yield conn


def describe(exc: ControlError) -> str:
    return str(exc)


def login_url(next_url: str) -> str:
    return "/console/login?next=" + quote(next_url, safe="")
