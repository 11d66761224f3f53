"""The console's pages. Each reads and changes through the same `partner_signals.control`
services as the admin API, as the logged-in operator, so roles, company scope and the
audit trail hold exactly as they do there. A page offers only what the role may do."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.admin.console.session import (
    COOKIE,
    FormSession,
    LoginRequired,
    Session,
    acting,
    back,
    login_url,
)
from api.admin.deps import Engine, request_id
from partner_signals.control import audit, companies, glance, operators, sessions
from partner_signals.control.errors import ControlError

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)

# What a console page may load: only this origin; no inline script at all.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def ago(moment: datetime | None) -> str:
    """'3 min ago' for the tables; the exact time is in the cell's title."""
    if moment is None:
        return "never"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(seconds) >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"


def duration(seconds: float | None) -> str:
    """'12 min' for a wait; '' when nothing waits."""
    if seconds is None:
        return ""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


templates.env.filters["ago"] = ago
templates.env.filters["duration"] = duration
templates.env.filters["when"] = lambda m: m.strftime("%Y-%m-%d %H:%M:%S UTC") if m else ""


def render(
    request: Request,
    template: str,
    session: sessions.Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    actor = session.actor if session else None
    response = templates.TemplateResponse(
        request,
        template,
        {
            "actor": actor,
            "csrf_token": session.csrf_token if session else "",
            "may": (lambda role: actor is not None and actor.may(role)),
            "ok": request.query_params.get("ok"),
            "error": request.query_params.get("error"),
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def install(app: FastAPI) -> None:
    """Mount the console on the admin app: its pages, its stylesheet, and answers for a
    missing session (to the login page) and for refusals (an HTML page, not JSON)."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    api_handler = app.exception_handlers.get(ControlError)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(login_url(exc.next_url), status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ControlError)
        if not request.url.path.startswith("/console") and api_handler is not None:
            result = api_handler(request, exc)
            answer: Response = await result if inspect.isawaitable(result) else result
            return answer
        return render(
            request,
            "refused.html",
            None,
            status_code=exc.status,
            message=str(exc),
            code=exc.code,
            request_id=request_id(request),
        )

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(ControlError, refused)


def _safe_next(value: str | None) -> str:
    # Only a path of this console: never an absolute URL (no open redirect).
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    eng: Engine,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/console",
) -> Response:
    with eng.begin() as conn:
        session = sessions.login(conn, token)
    if session is None:
        return render(
            request,
            "login.html",
            None,
            status_code=401,
            next=_safe_next(next),
            error="unknown or revoked operator token",
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        session.session_id,
        max_age=sessions.SESSION_HOURS * 3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request, eng: Engine, session: FormSession) -> Response:
    with eng.begin() as conn:
        sessions.logout(conn, session.session_id)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("")
def home(request: Request, eng: Engine, session: Session) -> Response:
    with acting(eng) as conn:
        rows = companies.list_companies(conn, session.actor)
    if session.actor.company_id is not None and len(rows) == 1:
        return RedirectResponse(f"/console/companies/{rows[0].company_id}", status_code=303)
    return render(request, "companies.html", session, companies=rows)


@router.post("/companies/{company_id}/set-plan")
def set_plan(
    company_id: str, eng: Engine, session: FormSession, plan: Annotated[str, Form()]
) -> Response:
    url = f"/console/companies/{company_id}"
    try:
        with acting(eng) as conn:
            companies.set_plan(conn, session.actor, company_id, plan)
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(url, ok=f"plan set to {plan}")


@router.get("/audit")
def audit_page(
    request: Request,
    eng: Engine,
    session: Session,
    company: Annotated[str | None, Query()] = None,
    action: Annotated[str | None, Query()] = None,
    who: Annotated[str | None, Query(alias="actor")] = None,
    target: Annotated[str | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    filters = {"company": company, "action": action, "actor": who, "target": target}
    with acting(eng) as conn:
        entries, following = audit.list_entries(
            conn,
            session.actor,
            company_id=company or None,
            action=action or None,
            who=who or None,
            target=target or None,
            limit=50,
            cursor=cursor or None,
        )
    return render(
        request,
        "audit.html",
        session,
        entries=entries,
        next_cursor=following,
        filters={k: v or "" for k, v in filters.items()},
    )


@router.get("/operators")
def operators_page(request: Request, eng: Engine, session: Session) -> Response:
    with acting(eng) as conn:
        rows = operators.list_operators(conn, session.actor, include_revoked=True)
    return render(
        request, "operators.html", session, operators=rows, roles=("viewer", "operator", "admin")
    )


@router.post("/operators")
def operators_create(
    request: Request,
    eng: Engine,
    session: FormSession,
    name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    company: Annotated[str, Form()] = "",
) -> Response:
    try:
        with acting(eng) as conn:
            made, token = operators.create(
                conn, session.actor, name=name, role=role, company_id=company or None
            )
    except ControlError as exc:
        return back("/console/operators", error=str(exc))
    return render(
        request,
        "secret_once.html",
        session,
        what=f"operator {made.name} ({made.role})",
        secret=token,
        back_url="/console/operators",
    )


@router.post("/operators/{name}/revoke")
def operators_revoke(name: str, eng: Engine, session: FormSession) -> Response:
    try:
        with acting(eng) as conn:
            operators.revoke(conn, session.actor, name=name)
    except ControlError as exc:
        return back("/console/operators", error=str(exc))
    return back("/console/operators", ok=f"operator {name} revoked")


@router.get("/companies/{company_id}/signals")
def signals_page(request: Request, company_id: str, eng: Engine, session: Session) -> Response:
    with acting(eng) as conn:
        company = companies.get_company(conn, session.actor, company_id)
        now = glance.restaurants_now(conn, session.actor, company_id)
        lags = glance.freshness(conn, session.actor)
    return render(request, "signals.html", session, company=company, restaurants=now, lags=lags)
