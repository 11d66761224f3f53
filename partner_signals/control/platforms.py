"""Two-way delivery platforms under operator control: connect a platform's API (the
credentials its status calls use), read external orders and the sync log, and register
our webhook with the platform.

A platform's API credentials live in their own ops.integrations row, `<platform>-api`,
apart from the inbound row `<platform>` that holds the webhook signing secret: a rotation
of the signing secret replaces that row's sealed secrets whole, and the two are enabled,
disabled and replaced on their own schedules.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from partner_signals.adapters.base import basic_auth
from partner_signals.adapters.config import check_url
from partner_signals.catalogue.sources import DELIVERY_STATUSES, delivery_platform_names
from partner_signals.control import audit
from partner_signals.control.actor import Actor
from partner_signals.control.errors import Conflict, Invalid, NotFound
from partner_signals.control.lookups import require_company, require_restaurant
from partner_signals.platforms.adapter import USER_AGENT, api_base_url, token_url
from partner_signals.platforms.shapes import PlatformShape, shapes
from partner_signals.platforms.sync import sequence_key
from partner_signals.pushes.policy import redact
from partner_signals.registry import enable_integration, read_integration_secrets

PAGE_MAX = 500
SECRET_MIN, SECRET_MAX = 8, 1024
DETAIL_CHARS = 300
REGISTER_TIMEOUT = 10.0


def _shape(name: str) -> PlatformShape:
    found = shapes().get(name)
    if found is None:
        raise NotFound(
            f"no delivery platform {name[:40]!r} takes status calls; one of "
            f"{', '.join(sorted(shapes()))}"
        )
    return found


def _target(company_id: str, name: str) -> str:
    return f"company/{company_id}/platform/{name}"


# -- connections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    name: str
    auth: str  # api_key or oauth_client_credentials
    connected: bool
    restaurants: list[str] | None  # None: the whole company (or not connected)
    api_base_url: str  # the configured one, else the platform's production URL
    statuses: list[str]  # the statuses it takes from us
    webhook_registration: bool  # whether it has a registration call
    calls_pending: int
    calls_dead: int
    last_registration_at: datetime | None
    last_registration_ok: bool | None


def list_platforms(conn: sa.Connection, actor: Actor, company_id: str) -> list[Platform]:
    """Every platform that takes status calls, connected or not, with its backlog."""
    actor.require("viewer", company_id)
    require_company(conn, company_id)
    return [_describe(conn, company_id, s) for s in shapes().values()]


def get_platform(conn: sa.Connection, actor: Actor, company_id: str, name: str) -> Platform:
    actor.require("viewer", company_id)
    shape = _shape(name)
    require_company(conn, company_id)
    return _describe(conn, company_id, shape)


def _describe(conn: sa.Connection, company_id: str, shape: PlatformShape) -> Platform:
    rows = conn.execute(
        sa.text(
            "select restaurant_id, enabled, config from ops.integrations "
            "where company_id = :c and provider = :p order by restaurant_id nulls first"
        ),
        {"c": company_id, "p": shape.integration},
    ).all()
    live = [r for r in rows if r.enabled]
    config = dict(live[0].config or {}) if live else {}
    backlog = conn.execute(
        sa.text(
            "select count(*) filter (where status = 'pending'), "
            "count(*) filter (where status = 'dead') from ops.outbox "
            "where company_id = :c and adapter = :a and status in ('pending', 'dead')"
        ),
        {"c": company_id, "a": shape.integration},
    ).one()
    last = conn.execute(
        sa.text(
            "select at, ok from ops.webhook_registrations where company_id = :c "
            "and platform = :p order by registration_id desc limit 1"
        ),
        {"c": company_id, "p": shape.platform},
    ).first()
    return Platform(
        name=shape.platform,
        auth=shape.auth.kind,
        connected=bool(live),
        restaurants=(
            None
            if not live or any(r.restaurant_id is None for r in live)
            else [str(r.restaurant_id) for r in live]
        ),
        api_base_url=api_base_url(shape, config),
        statuses=list(shape.status_calls),
        webhook_registration=shape.webhook_registration is not None,
        calls_pending=int(backlog[0]),
        calls_dead=int(backlog[1]),
        last_registration_at=last.at if last else None,
        last_registration_ok=last.ok if last else None,
    )


def _secret(value: str | None, field: str) -> str:
    if value is None or not SECRET_MIN <= len(value.strip()) <= SECRET_MAX:
        raise Invalid(field, f"{SECRET_MIN} to {SECRET_MAX} characters")
    return value.strip()


def _url(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return check_url(value.strip(), field).rstrip("/")
    except ValueError as exc:
        raise Invalid(field, str(exc).removeprefix(f"{field} ")) from None


def connect(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    key: bytes,
    api_key: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    api_base_url: str | None = None,
    token_url: str | None = None,
    restaurant_id: str | None = None,
) -> Platform:
    """Store the platform's API credentials (sealed, never shown again) and its base URL
    (default: its production URL). An API-key platform takes `api_key`, an OAuth one
    `client_id` and `client_secret`. Without credentials, re-enables what is stored."""
    actor.require("operator", company_id)
    shape = _shape(name)
    require_company(conn, company_id)
    if restaurant_id is not None:
        require_restaurant(conn, company_id, restaurant_id)
    prior = conn.execute(
        sa.text(
            "select config, secret_ciphertext is not null as sealed from ops.integrations "
            "where company_id = :c and provider = :p "
            "and coalesce(restaurant_id, '') = coalesce(:r, '')"
        ),
        {"c": company_id, "p": shape.integration, "r": restaurant_id},
    ).one_or_none()
    secrets: dict[str, Any] | None = None
    oauth = shape.auth.kind == "oauth_client_credentials"
    given = (api_key, client_id, client_secret)
    if oauth and api_key is not None:
        raise Invalid("api_key", f"{name} authenticates with client_id and client_secret")
    if not oauth and (client_id is not None or client_secret is not None):
        raise Invalid("client_id", f"{name} authenticates with an api_key")
    if any(v is not None for v in given) or prior is None or not prior.sealed:
        if oauth:
            secrets = {
                "client_id": _secret(client_id, "client_id"),
                "client_secret": _secret(client_secret, "client_secret"),
            }
        else:
            secrets = {"api_key": _secret(api_key, "api_key")}
    config: dict[str, Any] = dict(prior.config or {}) if prior else {}
    for field, value in (("api_base_url", api_base_url), ("token_url", token_url)):
        checked = _url(value, field)
        if checked is not None:
            config[field] = checked
    enable_integration(
        conn,
        key=key,
        company_id=company_id,
        provider=shape.integration,
        secrets=secrets,
        config=config,
        restaurant_id=restaurant_id,
        actor=actor,
        action="platforms.connect",
    )
    return _describe(conn, company_id, shape)


def disconnect(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    restaurant_id: str | None = None,
) -> Platform:
    """Stop status calls to the platform (every scope, or one restaurant's). What is queued
    waits in the outbox; a later `connect` sends it."""
    actor.require("operator", company_id)
    shape = _shape(name)
    require_company(conn, company_id)
    changed = conn.execute(
        sa.text(
            "update ops.integrations set enabled = false, updated_at = now() "
            "where company_id = :c and provider = :p and enabled "
            "and (cast(:r as text) is null or restaurant_id = :r) returning restaurant_id"
        ),
        {"c": company_id, "p": shape.integration, "r": restaurant_id},
    ).all()
    for row in changed:
        audit.record(
            conn,
            actor,
            action="platforms.disconnect",
            target=_target(company_id, name),
            company_id=company_id,
            before={"enabled": True},
            after={"enabled": False},
            details={"platform": name, "restaurant_id": row.restaurant_id},
        )
    return _describe(conn, company_id, shape)


# -- external orders -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExternalOrder:
    company_id: str
    platform: str
    external_order_id: str
    restaurant_id: str | None
    pos_order_id: str | None
    status: str  # received, accepted, rejected, preparing, ready, picked_up, delivered, cancelled
    platform_status: str | None
    raw: dict[str, Any]
    received_at: datetime
    updated_at: datetime
    synced_at: datetime | None  # the last status call the platform acknowledged (as of
    # the platforms step's last pass)
    synced_status: str | None
    calls_pending: int
    calls_dead: int


ORDER_SQL = """
select e.company_id, e.platform, e.external_order_id, e.restaurant_id, e.pos_order_id,
    e.status, e.platform_status, e.raw, e.received_at, e.updated_at,
    e.synced_at, e.synced_status, coalesce(s.pending, 0) as calls_pending,
    coalesce(s.dead, 0) as calls_dead
from ops.external_orders e
left join lateral (
    select count(*) filter (where o.status = 'pending') as pending,
        count(*) filter (where o.status = 'dead') as dead
    from ops.outbox o
    where o.sequence_key = e.company_id || ':' || e.platform || ':' || e.external_order_id
) s on true
"""


def _order(row: Any) -> ExternalOrder:
    return ExternalOrder(**dict(row._mapping))


def encode_cursor(received_at: datetime, platform: str, external_id: str) -> str:
    raw = orjson.dumps([received_at.isoformat(), platform, external_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    try:
        at, platform, external = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        return datetime.fromisoformat(at), str(platform), str(external)
    except (ValueError, TypeError):
        raise Invalid("cursor", "not a cursor this API issued") from None


def list_external_orders(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    *,
    platform: str | None = None,
    status: str | None = None,
    restaurant_id: str | None = None,
    pos_order_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[ExternalOrder], str | None]:
    """Newest first (by when the order was first seen). Returns a page and the cursor of
    the next one (None at the end)."""
    actor.require("viewer", company_id)
    require_company(conn, company_id)
    return query_external_orders(
        conn,
        company_id,
        platform=platform,
        status=status,
        restaurant_id=restaurant_id,
        pos_order_id=pos_order_id,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


def query_external_orders(
    conn: sa.Connection,
    company_id: str,
    *,
    platform: str | None = None,
    status: str | None = None,
    restaurant_id: str | None = None,
    pos_order_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[ExternalOrder], str | None]:
    """The read both APIs share (the caller has checked who may see the company)."""
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid("limit", f"between 1 and {PAGE_MAX}")
    if platform is not None and platform not in delivery_platform_names():
        raise Invalid("platform", f"one of {', '.join(delivery_platform_names())}")
    if status is not None and status not in DELIVERY_STATUSES:
        raise Invalid("status", f"one of {', '.join(DELIVERY_STATUSES)}")
    where = ["e.company_id = :c"]
    params: dict[str, Any] = {"c": company_id, "limit": limit + 1}
    for column, value in (
        ("platform", platform),
        ("status", status),
        ("restaurant_id", restaurant_id),
        ("pos_order_id", pos_order_id),
    ):
        if value is not None:
            where.append(f"e.{column} = :{column}")
            params[column] = value
    if since is not None:
        where.append("e.received_at >= :since")
        params["since"] = since
    if until is not None:
        where.append("e.received_at < :until")
        params["until"] = until
    if cursor:
        params["at"], params["cp"], params["cx"] = decode_cursor(cursor)
        where.append("(e.received_at, e.platform, e.external_order_id) < (:at, :cp, :cx)")
    rows = conn.execute(
        sa.text(
            ORDER_SQL + f" where {' and '.join(where)} "
            "order by e.received_at desc, e.platform desc, e.external_order_id desc "
            "limit :limit"
        ),
        params,
    ).all()
    orders = [_order(r) for r in rows[:limit]]
    following = (
        encode_cursor(orders[-1].received_at, orders[-1].platform, orders[-1].external_order_id)
        if len(rows) > limit
        else None
    )
    return orders, following


def get_external_order(
    conn: sa.Connection, actor: Actor, company_id: str, platform: str, external_order_id: str
) -> ExternalOrder:
    actor.require("viewer", company_id)
    require_company(conn, company_id)
    found = find_external_order(conn, company_id, platform, external_order_id)
    if found is None:
        raise NotFound(f"no {platform[:40]} order {external_order_id[:64]!r} for {company_id!r}")
    return found


def find_external_order(
    conn: sa.Connection, company_id: str, platform: str, external_order_id: str
) -> ExternalOrder | None:
    row = conn.execute(
        sa.text(
            ORDER_SQL + " where e.company_id = :c and e.platform = :p and e.external_order_id = :x"
        ),
        {"c": company_id, "p": platform, "x": external_order_id},
    ).first()
    return _order(row) if row else None


# -- sync log --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncEntry:
    sync_id: int
    company_id: str
    platform: str
    integration_id: int | None
    sync_type: str  # order_webhooks (inbound) or order_status (outbound)
    direction: str
    status: str  # completed or failed
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    records_processed: int
    errors: list[str]


def list_sync_log(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    *,
    platform: str | None = None,
    direction: str | None = None,
    status: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[SyncEntry], str | None]:
    """Newest first; filters by platform, direction (inbound/outbound), status."""
    actor.require("viewer", company_id)
    require_company(conn, company_id)
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid("limit", f"between 1 and {PAGE_MAX}")
    if direction not in (None, "inbound", "outbound"):
        raise Invalid("direction", "inbound or outbound")
    if status not in (None, "completed", "failed"):
        raise Invalid("status", "completed or failed")
    where = ["company_id = :c"]
    params: dict[str, Any] = {"c": company_id, "limit": limit + 1}
    for column, value in (("platform", platform), ("direction", direction), ("status", status)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    if cursor:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            params["after"] = int(raw.removeprefix("s"))
        except ValueError:
            raise Invalid("cursor", "not a cursor this API issued") from None
        where.append("sync_id < :after")
    rows = conn.execute(
        sa.text(
            "select sync_id, company_id, platform, integration_id, sync_type, direction, "
            "status, started_at, completed_at, failed_at, records_processed, errors "
            f"from ops.sync_log where {' and '.join(where)} order by sync_id desc limit :limit"
        ),
        params,
    ).all()
    entries = [SyncEntry(**dict(r._mapping)) for r in rows[:limit]]
    following = (
        base64.urlsafe_b64encode(f"s{entries[-1].sync_id}".encode()).decode().rstrip("=")
        if len(rows) > limit
        else None
    )
    return entries, following


# -- webhook registration ----------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    platform: str
    company_id: str
    url: str
    ok: bool
    response_code: int | None
    detail: str


def register_webhook(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    key: bytes,
    public_url: str,
    client: httpx.Client | None = None,
) -> Registration:
    """Call the platform's webhook registration endpoint with our URL for this company
    (`public_url` is the ingest API's address as the platform reaches it) and the stored
    signing secret, and record what it answered. The secret is sent to the platform only."""
    actor.require("operator", company_id)
    shape = _shape(name)
    require_company(conn, company_id)
    base = _url(public_url, "public_url")
    assert base is not None
    call = shape.webhook_registration
    if call is None:
        raise Conflict(f"{name} has no registration call: set the webhook in its own portal")
    signing = read_integration_secrets(conn, key=key, company_id=company_id, provider=name).get(
        "webhook_secrets", []
    )
    if not signing:
        raise Conflict(
            f"{name} has no company-wide signing secret: `integrations enable {name}` first"
        )
    creds = conn.execute(
        sa.text(
            "select config from ops.integrations where company_id = :c and provider = :p "
            "and restaurant_id is null and enabled"
        ),
        {"c": company_id, "p": shape.integration},
    ).first()
    if creds is None:
        raise Conflict(f"{name}'s API is not connected: `platforms connect {name}` first")
    secrets = read_integration_secrets(
        conn, key=key, company_id=company_id, provider=shape.integration
    )
    config = dict(creds.config or {})
    url = f"{base}/webhooks/{name}/{company_id}"
    method, path, body = call.render({"webhook_url": url, "webhook_secret": str(signing[0])})
    hidden = [str(signing[0]), *(str(v) for v in secrets.values())]
    own = client is None
    http = client or httpx.Client(timeout=REGISTER_TIMEOUT, follow_redirects=False)
    try:
        headers = {"content-type": "application/json", "user-agent": USER_AGENT}
        refusal: httpx.Response | None = None
        if shape.auth.kind == "oauth_client_credentials":
            granted = http.post(
                token_url(shape, config),
                headers={
                    "authorization": basic_auth(
                        str(secrets.get("client_id")), str(secrets.get("client_secret"))
                    ),
                    "user-agent": USER_AGENT,
                },
                data={"grant_type": "client_credentials"},
            )
            if 200 <= granted.status_code < 300:
                headers["authorization"] = f"Bearer {granted.json()['access_token']}"
            else:
                refusal = granted
        else:
            headers[shape.auth.header.lower()] = f"{shape.auth.prefix}{secrets.get('api_key')}"
        answer = refusal or http.request(
            method, api_base_url(shape, config) + path, headers=headers, content=orjson.dumps(body)
        )
        code: int | None = answer.status_code
        ok = 200 <= answer.status_code < 300
        what = "registered" if ok else ("credentials refused" if code in (401, 403) else "refused")
        detail = f"{what} (HTTP {code})" + ("" if ok else f": {answer.text}")
    except httpx.HTTPError as exc:
        code, ok, detail = None, False, f"could not reach {name} ({type(exc).__name__})"
    finally:
        if own:
            http.close()
    detail = redact(detail, hidden, DETAIL_CHARS)
    conn.execute(
        sa.text(
            "insert into ops.webhook_registrations (company_id, platform, url, ok, "
            "response_code, detail) values (:c, :p, :u, :ok, :code, :d)"
        ),
        {"c": company_id, "p": name, "u": url, "ok": ok, "code": code, "d": detail},
    )
    audit.record(
        conn,
        actor,
        action="integrations.register_webhook",
        target=f"company/{company_id}/provider/{name}",
        company_id=company_id,
        details={"provider": name, "url": url, "ok": ok, "response_code": code},
    )
    return Registration(name, company_id, url, ok, code, detail)


__all__ = [
    "ExternalOrder",
    "Platform",
    "Registration",
    "SyncEntry",
    "connect",
    "delivery_platform_names",
    "disconnect",
    "get_external_order",
    "list_external_orders",
    "list_platforms",
    "list_sync_log",
    "register_webhook",
    "sequence_key",
]
