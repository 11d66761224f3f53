"""The console's pages for one company: the integrations hub, an inbound integration's
page, an adapter's page, pushes and dead letters, and keys. Each calls the control
services as the logged-in operator; each form is CSRF-checked and each change audited by
the service, exactly as through the admin API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from api.admin.console.charts import hourly_bars
from api.admin.console.pages import render, router
from api.admin.console.session import FormSession, Session, acting, back
from api.admin.deps import Engine
from partner_signals.adapters import ADAPTERS
from partner_signals.control import adapters, companies, dead_letters, health, inbound, keys
from partner_signals.control.errors import ControlError, Invalid


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.settings.master_key()
    return key


@dataclass(frozen=True)
class Tile:
    """One integration on the hub: what it is, its state and what an operator can do."""

    kind: str  # inbound or adapter
    name: str
    description: str
    state: str  # connected, disabled, failing, locked
    detail: str  # why failing, or the plan that unlocks it
    last_label: str  # "last event" or "last delivery"
    last_at: datetime | None
    page: str
    can_reenable: bool = False  # an adapter with a stored configuration


def _inbound_tile(company_id: str, item: inbound.Inbound, st: inbound.Status) -> Tile:
    refused = sum(r.last_hour for r in st.rejections)
    if not item.enabled:
        state, detail = "disabled", ""
    elif refused and not st.events_last_hour:
        state = "failing"
        detail = f"{refused} refused in the last hour, none accepted: " + ", ".join(
            f"{r.reason} {r.last_hour}" for r in st.rejections if r.last_hour
        )
    else:
        state = "connected"
        detail = f"{st.events_last_hour} event{'s' * (st.events_last_hour != 1)} last hour" + (
            f", {refused} refused" if refused else ""
        )
    return Tile(
        "inbound",
        item.name,
        f"{item.kind} · {item.signature_scheme}",
        state,
        detail,
        "last event",
        item.last_event_at,
        f"/console/companies/{company_id}/integrations/{item.name}",
    )


def _adapter_tile(company_id: str, item: adapters.AdapterSummary, st: Any) -> Tile:
    page = f"/console/companies/{company_id}/adapters/{item.adapter}"
    if item.plan_locked:
        return Tile(
            "adapter",
            item.adapter,
            item.description,
            "locked",
            f"needs the {item.unlocked_by} plan",
            "last delivery",
            None,
            page,
        )
    if not item.enabled:
        return Tile(
            "adapter",
            item.adapter,
            item.description,
            "disabled",
            "",
            "last delivery",
            st.last_success_at if st else None,
            page,
            can_reenable=bool(item.scopes),
        )
    rate = st.success_rate_last_hour
    failing = st.dead_letters_waiting or (rate is not None and rate < 0.5)
    detail = (f"{st.dead_letters_waiting} dead letters, " if st.dead_letters_waiting else "") + (
        f"{rate:.0%} delivered last hour" if rate is not None else f"{st.pending} pending"
    )
    return Tile(
        "adapter",
        item.adapter,
        item.description,
        "failing" if failing else "connected",
        detail,
        "last delivery",
        st.last_success_at,
        page,
    )


@router.get("/companies/{company_id}")
def hub(request: Request, company_id: str, eng: Engine, session: Session) -> Response:
    actor = session.actor
    with acting(eng) as conn:
        company = companies.get_company(conn, actor, company_id)
        inbound_tiles = [
            _inbound_tile(company_id, item, inbound.status(conn, actor, company_id, item.name))
            for item in inbound.list_integrations(conn, actor, company_id)
        ]
        adapter_tiles = [
            _adapter_tile(
                company_id,
                item,
                None
                if item.plan_locked
                else adapters.status(conn, actor, company_id, item.adapter),
            )
            for item in adapters.list_adapters(conn, actor, company_id)
        ]
        checked = health.summary(conn, actor, company_id)
    # summary() lists this company's reasons (prefixed with its id), then what every
    # company shares (signal lag, failing checks and runs), as GET /admin/v1/status does.
    own = next((c.reasons for c in checked.companies if c.company_id == company_id), [])
    return render(
        request,
        "hub.html",
        session,
        verdict=checked.verdict,
        reasons=own + checked.reasons[len(own) :],
        company=company,
        plans=companies.PLANS,
        inbound_tiles=inbound_tiles,
        adapter_tiles=adapter_tiles,
    )


# --- inbound integrations -------------------------------------------------------------


def _integration_page(
    request: Request,
    eng: Engine,
    session: Any,
    company_id: str,
    name: str,
    **extra: Any,
) -> Response:
    actor = session.actor
    with acting(eng) as conn:
        item = inbound.get_integration(conn, actor, company_id, name)
        st = inbound.status(conn, actor, company_id, name)
        hours = inbound.hourly(conn, actor, company_id, name)
        refusals = inbound.recent_rejections(conn, actor, company_id, name)
    return render(
        request,
        "integration.html",
        session,
        company_id=company_id,
        item=item,
        status=st,
        chart=hourly_bars(hours),
        day_events=sum(h.events for h in hours),
        day_rejections=sum(h.rejections for h in hours),
        refusals=refusals,
        **extra,
    )


@router.get("/companies/{company_id}/integrations/{name}")
def integration_page(
    request: Request, company_id: str, name: str, eng: Engine, session: Session
) -> Response:
    return _integration_page(request, eng, session, company_id, name)


def _integration_url(company_id: str, name: str) -> str:
    return f"/console/companies/{company_id}/integrations/{name}"


@router.post("/companies/{company_id}/integrations/{name}/enable")
def integration_enable(
    request: Request,
    company_id: str,
    name: str,
    eng: Engine,
    session: FormSession,
    secret: Annotated[str, Form()] = "",
    restaurant_id: Annotated[str, Form()] = "",
) -> Response:
    url = _integration_url(company_id, name)
    try:
        with acting(eng) as conn:
            inbound.enable(
                conn,
                session.actor,
                company_id,
                name,
                key=_key(request),
                secret=secret or None,
                restaurant_id=restaurant_id or None,
            )
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(url, ok=f"{name} enabled")


@router.post("/companies/{company_id}/integrations/{name}/disable")
def integration_disable(
    company_id: str,
    name: str,
    eng: Engine,
    session: FormSession,
    back_to: Annotated[str, Form()] = "",
) -> Response:
    url = back_to if back_to.startswith("/console/") else _integration_url(company_id, name)
    try:
        with acting(eng) as conn:
            inbound.disable(conn, session.actor, company_id, name)
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(url, ok=f"{name} disabled: ingest refuses its webhooks from now on")


@router.post("/companies/{company_id}/integrations/{name}/rotate")
def integration_rotate(
    request: Request,
    company_id: str,
    name: str,
    eng: Engine,
    session: FormSession,
    secret: Annotated[str, Form()],
    grace_hours: Annotated[float, Form()] = 24,
) -> Response:
    url = _integration_url(company_id, name)
    try:
        if not 0 <= grace_hours <= 24 * 30:
            raise Invalid("grace_hours", "between 0 and 720")
        with acting(eng) as conn:
            inbound.rotate(
                conn,
                session.actor,
                company_id,
                name,
                key=_key(request),
                secret=secret,
                grace=timedelta(hours=grace_hours),
            )
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(url, ok=f"{name}: new secret stored; the previous one works for {grace_hours:g} h")


@router.post("/companies/{company_id}/integrations/{name}/test")
def integration_test(
    request: Request, company_id: str, name: str, eng: Engine, session: FormSession
) -> Response:
    try:
        with acting(eng) as conn:
            result = inbound.verify_sample(conn, session.actor, company_id, name, key=_key(request))
    except ControlError as exc:
        return back(_integration_url(company_id, name), error=str(exc))
    return _integration_page(request, eng, session, company_id, name, test=result)


# --- outbound adapters ----------------------------------------------------------------


def _adapter_url(company_id: str, name: str) -> str:
    return f"/console/companies/{company_id}/adapters/{name}"


def _adapter_page(
    request: Request, eng: Engine, session: Any, company_id: str, name: str, **extra: Any
) -> Response:
    actor = session.actor
    with acting(eng) as conn:
        item = adapters.get_adapter(conn, actor, company_id, name, key=_key(request))
        st = None if item.plan_locked else adapters.status(conn, actor, company_id, name)
    return render(
        request,
        "adapter.html",
        session,
        company_id=company_id,
        item=item,
        status=st,
        fields=ADAPTERS[name].fields(),
        **extra,
    )


@router.get("/companies/{company_id}/adapters/{name}")
def adapter_page(
    request: Request, company_id: str, name: str, eng: Engine, session: Session
) -> Response:
    return _adapter_page(request, eng, session, company_id, name)


def _field_value(kind: str, raw: str) -> Any:
    if kind == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if kind == "number":
        try:
            return float(raw) if "." in raw else int(raw)
        except ValueError:
            return raw  # the adapter's model names the field in its refusal
    return raw


@router.post("/companies/{company_id}/adapters/{name}/enable")
async def adapter_enable(
    request: Request, company_id: str, name: str, eng: Engine, session: FormSession
) -> Response:
    """Enable with the form's fields (each declared by the adapter's models); a secret
    field left empty keeps the stored one; `reuse` re-enables with the stored config."""
    url = _adapter_url(company_id, name)
    form = await request.form()
    config: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    try:
        with acting(eng) as conn:
            if form.get("reuse"):
                current = adapters.get_adapter(conn, session.actor, company_id, name)
                scope = next((s for s in current.scopes if s.restaurant_id is None), None)
                if scope is None and current.scopes:
                    scope = current.scopes[0]
                if scope is None:
                    raise Invalid("config", "nothing stored yet: fill in the form")
                config = dict(scope.config)
                restaurant = scope.restaurant_id
            else:
                for spec in ADAPTERS[name].fields() if name in ADAPTERS else ():
                    raw = str(form.get(spec.name) or "").strip()
                    if raw:
                        (secrets if spec.secret else config)[spec.name] = _field_value(
                            spec.kind, raw
                        )
                restaurant = str(form.get("restaurant_id") or "") or None
            adapters.enable(
                conn,
                session.actor,
                company_id,
                name,
                key=_key(request),
                config=config,
                secrets=secrets or None,
                restaurant_id=restaurant,
            )
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(
        str(form.get("back_to") or url)
        if str(form.get("back_to") or "").startswith("/console/")
        else url,
        ok=f"{name} enabled",
    )


@router.post("/companies/{company_id}/adapters/{name}/disable")
def adapter_disable(
    request: Request,
    company_id: str,
    name: str,
    eng: Engine,
    session: FormSession,
    back_to: Annotated[str, Form()] = "",
) -> Response:
    url = back_to if back_to.startswith("/console/") else _adapter_url(company_id, name)
    try:
        with acting(eng) as conn:
            current = adapters.get_adapter(conn, session.actor, company_id, name)
            scopes: list[str | None] = [s.restaurant_id for s in current.scopes if s.enabled]
            for restaurant in scopes or [None]:
                adapters.disable(
                    conn,
                    session.actor,
                    company_id,
                    name,
                    restaurant_id=restaurant,
                    key=_key(request),
                )
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(url, ok=f"{name} disabled: nothing more is pushed to it")


@router.post("/companies/{company_id}/adapters/{name}/test")
def adapter_test(
    request: Request, company_id: str, name: str, eng: Engine, session: FormSession
) -> Response:
    try:
        with acting(eng) as conn:
            result = adapters.check_connection(
                conn, session.actor, company_id, name, key=_key(request)
            )
    except ControlError as exc:
        return back(_adapter_url(company_id, name), error=str(exc))
    return _adapter_page(request, eng, session, company_id, name, test=result)


# --- pushes and dead letters ----------------------------------------------------------


@router.get("/companies/{company_id}/pushes")
def pushes_page(
    request: Request,
    company_id: str,
    eng: Engine,
    session: Session,
    adapter: Annotated[str | None, Query()] = None,
    event_type: Annotated[str | None, Query()] = None,
    replayed: Annotated[bool, Query()] = False,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    actor = session.actor
    with acting(eng) as conn:
        company = companies.get_company(conn, actor, company_id)
        backlog = [
            adapters.status(conn, actor, company_id, item.adapter)
            for item in adapters.list_adapters(conn, actor, company_id)
            if not item.plan_locked
        ]
        letters, following = dead_letters.list_dead_letters(
            conn,
            actor,
            company_id,
            key=_key(request),
            adapter=adapter or None,
            event_type=event_type or None,
            include_replayed=replayed,
            limit=50,
            cursor=cursor or None,
        )
    return render(
        request,
        "pushes.html",
        session,
        company=company,
        company_id=company_id,
        backlog=backlog,
        letters=letters,
        next_cursor=following,
        filters={"adapter": adapter or "", "event_type": event_type or "", "replayed": replayed},
        adapter_names=sorted(ADAPTERS),
    )


@router.post("/companies/{company_id}/dead-letters/replay")
def dead_letters_replay(
    company_id: str,
    eng: Engine,
    session: FormSession,
    ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    url = f"/console/companies/{company_id}/pushes"
    if not ids:
        return back(url, error="select the dead letters to replay")
    try:
        with acting(eng) as conn:
            result = dead_letters.replay(conn, session.actor, company_id, ids=ids)
    except ControlError as exc:
        return back(url, error=str(exc))
    note = f"{result.requeued} re-queued"
    if result.skipped_disabled:
        note += f"; {result.skipped_disabled} kept: their integration is disabled"
    return back(url, ok=note)


@router.post("/companies/{company_id}/dead-letters/{dead_letter_id}/replay")
def dead_letter_replay(
    company_id: str, dead_letter_id: int, eng: Engine, session: FormSession
) -> Response:
    return dead_letters_replay(company_id, eng, session, ids=[dead_letter_id])


# --- keys -------------------------------------------------------------------------------


@router.get("/companies/{company_id}/keys")
def keys_page(request: Request, company_id: str, eng: Engine, session: Session) -> Response:
    actor = session.actor
    with acting(eng) as conn:
        company = companies.get_company(conn, actor, company_id)
        partner = keys.list_partner_keys(conn, actor, company_id, include_revoked=True)
        ingest = keys.list_ingest_keys(conn, actor, company_id, include_revoked=True)
    return render(
        request,
        "keys.html",
        session,
        company=company,
        company_id=company_id,
        partner_keys=partner,
        ingest_keys=ingest,
        scopes=keys.SCOPES,
    )


@router.post("/companies/{company_id}/keys")
def keys_create(
    request: Request,
    company_id: str,
    eng: Engine,
    session: FormSession,
    scopes: Annotated[list[str] | None, Form()] = None,
    restaurant_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    url = f"/console/companies/{company_id}/keys"
    try:
        with acting(eng) as conn:
            made, secret = keys.create_partner_key(
                conn,
                session.actor,
                company_id,
                scopes=scopes or [],
                restaurant_id=restaurant_id or None,
                name=name or None,
            )
    except ControlError as exc:
        return back(url, error=str(exc))
    return render(
        request,
        "secret_once.html",
        session,
        what=f"partner key {made.prefix}… ({', '.join(made.scopes)})",
        secret=secret,
        back_url=url,
    )


@router.post("/companies/{company_id}/ingest-keys")
def ingest_keys_create(
    request: Request, company_id: str, eng: Engine, session: FormSession
) -> Response:
    url = f"/console/companies/{company_id}/keys"
    try:
        with acting(eng) as conn:
            made, secret = keys.create_ingest_key(conn, session.actor, company_id)
    except ControlError as exc:
        return back(url, error=str(exc))
    return render(
        request,
        "secret_once.html",
        session,
        what=f"POS ingest key {made.prefix}…",
        secret=secret,
        back_url=url,
    )


@router.post("/companies/{company_id}/keys/{prefix}/revoke")
def keys_revoke(company_id: str, prefix: str, eng: Engine, session: FormSession) -> Response:
    url = f"/console/companies/{company_id}/keys"
    try:
        with acting(eng) as conn:
            keys.revoke_partner_key(conn, session.actor, company_id, prefix)
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(url, ok=f"partner key {prefix}… revoked: refused from now on")


@router.post("/companies/{company_id}/ingest-keys/{prefix}/revoke")
def ingest_keys_revoke(company_id: str, prefix: str, eng: Engine, session: FormSession) -> Response:
    url = f"/console/companies/{company_id}/keys"
    try:
        with acting(eng) as conn:
            keys.revoke_ingest_key(conn, session.actor, company_id, prefix)
    except ControlError as exc:
        return back(url, error=str(exc))
    return back(url, ok=f"ingest key {prefix}… revoked: refused from now on")
