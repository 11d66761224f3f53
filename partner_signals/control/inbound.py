"""Inbound integrations (payment and delivery platforms' webhooks) under operator control:
list, enable, disable, rotate the signing secret with a grace period, test with a signed
sample, and status.

What ingest accepts is decided here once: `CREDENTIALS_SQL` and `webhook_credentials`
turn a company's enabled rows of ops.integrations into the `Credentials` a provider
verifies against, and `restaurant_refusal` keeps a restaurant-scoped integration to its
restaurants. Ingest's directory calls both; `verify_sample` calls the very same ones,
then the provider's own `verify` and `identify`, so a passing test is what ingest would
accept (it lands nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from partner_signals import unmapped
from partner_signals.catalogue.sources import JsonPath, Source, source
from partner_signals.control import audit
from partner_signals.control.actor import Actor
from partner_signals.control.errors import Conflict, Invalid, NotFound
from partner_signals.control.lookups import require_company, require_restaurant
from partner_signals.crypto import decrypt_json, encrypt_json
from partner_signals.providers import PROVIDERS, Credentials, MalformedEvent, SignatureError
from partner_signals.providers.base import locate
from partner_signals.registry import (
    enable_integration,
    integration_context,
    read_integration_secrets,
)

DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)
SECRET_MIN, SECRET_MAX = 8, 512
# The scheme whose signatures only the provider can make (RSA with its private key).
CERTIFICATE_SCHEMES = frozenset({"paypal"})
# A sample event type for sources whose catalogue entry lists no vocabulary (their staging
# model translates it): the event each sends when a payment succeeds.
SAMPLE_TYPES = {"stripe": "payment_intent.succeeded", "paypal": "PAYMENT.CAPTURE.COMPLETED"}

# Every enabled row of one company's provider: the company-wide one first. Read by
# ingest's directory (psycopg, %s) and by `verify_sample`, as the same text.
CREDENTIALS_SQL = (
    "select restaurant_id, config, secret_ciphertext, "
    "coalesce(previous_secret_expires_at <= now(), false) as previous_expired, "
    "extract(epoch from previous_secret_expires_at)::float8 as previous_expires_epoch "
    "from ops.integrations where company_id = %s and provider = %s and enabled "
    "order by restaurant_id nulls first"
)


def webhook_credentials(
    key: bytes, company_id: str, provider: str, rows: Sequence[Sequence[Any]]
) -> Credentials | None:
    """What a webhook from `provider` for `company_id` is verified against (rows of
    CREDENTIALS_SQL), or None when nothing is enabled: ingest answers that 404. The
    secrets of every enabled scope are accepted (a company is one tenant); a previous
    secret only until its grace ends. When no row is company-wide, only the enabled
    restaurants' events are accepted."""
    if not rows:
        return None
    secrets: list[str] = []
    restaurants: set[str] = set()
    company_wide = False
    config: dict[str, Any] = {}
    renew_at: float | None = None
    for restaurant_id, row_config, blob, previous_expired, previous_expires in rows:
        sealed = (
            decrypt_json(
                key, bytes(blob), context=integration_context(company_id, provider, restaurant_id)
            )
            if blob
            else {}
        )
        accepted = [str(s) for s in sealed.get("webhook_secrets", ())]
        if previous_expired:
            accepted = accepted[:1]
        elif previous_expires is not None and len(accepted) > 1:
            renew_at = min(renew_at or previous_expires, previous_expires)
        secrets += [s for s in accepted if s not in secrets]
        if restaurant_id is None:
            company_wide = True
            config = dict(row_config or {})
        else:
            restaurants.add(str(restaurant_id))
            config = config or dict(row_config or {})
    return Credentials(
        secrets=tuple(secrets),
        config=config,
        restaurants=None if company_wide else frozenset(restaurants),
        renew_at=renew_at,
    )


def restaurant_refusal(
    provider: str, body: bytes, headers: Mapping[str, str], creds: Credentials
) -> str | None:
    """Why a verified webhook is refused for its restaurant (None: accepted): a
    restaurant-scoped integration takes only its restaurants' events."""
    if creds.restaurants is None:
        return None
    try:
        restaurant = locate(source(provider).restaurant, orjson.loads(body), headers)
    except (orjson.JSONDecodeError, MalformedEvent):
        return f"no {provider} integration for this event's restaurant"
    if restaurant not in creds.restaurants:
        return f"no {provider} integration for restaurant {restaurant[:64]!r}"
    return None


@dataclass(frozen=True)
class Scope:
    """One row: the company (restaurant_id None) or one restaurant."""

    restaurant_id: str | None
    enabled: bool
    secret_set_at: datetime | None
    previous_secret_expires_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class Inbound:
    name: str
    kind: str  # payment or delivery
    signature_scheme: str
    enabled: bool
    # Enabled restaurants when not enabled company-wide; None: every restaurant (or off).
    restaurants: list[str] | None
    secret_age_seconds: int | None
    previous_secret_expires_at: datetime | None
    last_event_at: datetime | None
    webhook_path: str
    scopes: list[Scope]


def _provider(name: str) -> Source:
    if name not in PROVIDERS:
        raise NotFound(f"no inbound provider {name[:40]!r}; one of {', '.join(PROVIDERS)}")
    return source(name)


def _describe(
    conn: sa.Connection, company_id: str, names: Sequence[str], now: datetime
) -> list[Inbound]:
    rows = conn.execute(
        sa.text(
            "select provider, restaurant_id, enabled, secret_set_at, "
            "previous_secret_expires_at, updated_at from ops.integrations "
            "where company_id = :c and provider = any(:p) "
            "order by provider, restaurant_id nulls first"
        ),
        {"c": company_id, "p": list(names)},
    ).all()
    # One backward index scan per provider (company_id, source, received_at).
    last: dict[str, datetime | None] = dict(
        conn.execute(
            sa.text(
                "select p, (select max(received_at) from raw.webhook_events w "
                "where w.company_id = :c and w.source = p) from unnest(cast(:p as text[])) p"
            ),
            {"c": company_id, "p": list(names)},
        ).all()
    )
    answers = []
    for name in names:
        src = source(name)
        scopes = [
            Scope(
                r.restaurant_id,
                r.enabled,
                r.secret_set_at,
                r.previous_secret_expires_at,
                r.updated_at,
            )
            for r in rows
            if r.provider == name
        ]
        live = [s for s in scopes if s.enabled]
        set_at = [s.secret_set_at for s in live if s.secret_set_at]
        grace = [
            s.previous_secret_expires_at
            for s in live
            if s.previous_secret_expires_at and s.previous_secret_expires_at > now
        ]
        answers.append(
            Inbound(
                name=name,
                kind="delivery" if src.delivery is not None else "payment",
                signature_scheme=src.signature.scheme,
                enabled=bool(live),
                restaurants=(
                    None
                    if not live or any(s.restaurant_id is None for s in live)
                    else [str(s.restaurant_id) for s in live]
                ),
                secret_age_seconds=int((now - min(set_at)).total_seconds()) if set_at else None,
                previous_secret_expires_at=max(grace) if grace else None,
                last_event_at=last.get(name),
                webhook_path=f"/webhooks/{name}/{company_id}",
                scopes=scopes,
            )
        )
    return answers


def _now(conn: sa.Connection) -> datetime:
    now: datetime = conn.execute(sa.text("select now()")).scalar_one()
    return now


def list_integrations(conn: sa.Connection, actor: Actor, company_id: str) -> list[Inbound]:
    """Every inbound provider a company can enable, enabled or not."""
    actor.require("viewer", company_id)
    require_company(conn, company_id)
    return _describe(conn, company_id, list(PROVIDERS), _now(conn))


def get_integration(conn: sa.Connection, actor: Actor, company_id: str, name: str) -> Inbound:
    actor.require("viewer", company_id)
    _provider(name)
    require_company(conn, company_id)
    return _describe(conn, company_id, [name], _now(conn))[0]


def _target(company_id: str, name: str, restaurant_id: str | None) -> str:
    return f"company/{company_id}/" + (
        f"restaurant/{restaurant_id}/provider/{name}" if restaurant_id else f"provider/{name}"
    )


def _check_secret(secret: str | None, field: str = "secret") -> str:
    if secret is None or not SECRET_MIN <= len(secret.strip()) <= SECRET_MAX:
        raise Invalid(field, f"the provider's signing secret, {SECRET_MIN} to {SECRET_MAX} chars")
    return secret.strip()


def enable(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    key: bytes,
    secret: str | None = None,
    restaurant_id: str | None = None,
    paypal_webhook_id: str | None = None,
    paypal_certificate: str | None = None,
) -> Inbound:
    """Enable a provider for the company (or one restaurant) with its signing secret
    (PayPal: its webhook id and certificate). Without a secret, re-enables a disabled
    integration with the secret it had."""
    actor.require("operator", company_id)
    src = _provider(name)
    require_company(conn, company_id)
    if restaurant_id is not None:
        require_restaurant(conn, company_id, restaurant_id)
    prior = conn.execute(
        sa.text(
            "select config, secret_ciphertext is not null as sealed from ops.integrations "
            "where company_id = :c and provider = :p "
            "and coalesce(restaurant_id, '') = coalesce(:r, '')"
        ),
        {"c": company_id, "p": name, "r": restaurant_id},
    ).one_or_none()
    config: dict[str, Any] = dict(prior.config) if prior else {}
    secrets: dict[str, Any] | None = None
    if src.signature.scheme in CERTIFICATE_SCHEMES:
        if paypal_webhook_id or paypal_certificate or prior is None:
            if not paypal_webhook_id:
                raise Invalid("paypal_webhook_id", "the webhook id PayPal assigned")
            _check_certificate(paypal_certificate)
            config = {"webhook_id": paypal_webhook_id, "certificates": [paypal_certificate]}
    elif secret is not None or prior is None or not prior.sealed:
        secrets = {"webhook_secrets": [_check_secret(secret)]}
    enable_integration(
        conn,
        key=key,
        company_id=company_id,
        provider=name,
        secrets=secrets,
        config=config,
        restaurant_id=restaurant_id,
        actor=actor,
    )
    return get_integration(conn, actor, company_id, name)


def _check_certificate(pem: str | None) -> None:
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate((pem or "").encode())
    except ValueError:
        raise Invalid("paypal_certificate", "a PEM X.509 certificate") from None


def _scoped_rows(
    conn: sa.Connection, company_id: str, name: str, restaurant_id: str | None, *, lock: bool
) -> list[sa.Row[Any]]:
    rows = conn.execute(
        sa.text(
            "select integration_id, restaurant_id, enabled, config from ops.integrations "
            "where company_id = :c and provider = :p "
            "and (cast(:r as text) is null or restaurant_id = :r) "
            "order by restaurant_id nulls first" + (" for update" if lock else "")
        ),
        {"c": company_id, "p": name, "r": restaurant_id},
    ).all()
    if not rows:
        where = f" for restaurant {restaurant_id!r}" if restaurant_id else ""
        raise NotFound(f"no {name} integration for company {company_id!r}{where}")
    return list(rows)


def disable(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    restaurant_id: str | None = None,
) -> Inbound:
    """Disable the provider for the company (every scope) or one restaurant. Ingest
    answers the next webhook 404, as for a provider never enabled (its directory hears
    the change by NOTIFY within milliseconds). Disabling what is off is a no-op."""
    actor.require("operator", company_id)
    _provider(name)
    require_company(conn, company_id)
    rows = _scoped_rows(conn, company_id, name, restaurant_id, lock=True)
    for row in rows:
        if not row.enabled:
            continue
        conn.execute(
            sa.text(
                "update ops.integrations set enabled = false, updated_at = now() "
                "where integration_id = :i"
            ),
            {"i": row.integration_id},
        )
        audit.record(
            conn,
            actor,
            action="integrations.disable",
            target=_target(company_id, name, row.restaurant_id),
            company_id=company_id,
            before={"enabled": True},
            after={"enabled": False},
            details={"provider": name, "restaurant_id": row.restaurant_id},
        )
    return get_integration(conn, actor, company_id, name)


def rotate(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    key: bytes,
    secret: str,
    grace: timedelta = DEFAULT_GRACE,
    restaurant_id: str | None = None,
) -> Inbound:
    """Replace the signing secret; the current one stays accepted for `grace` (0: at
    once), so the provider can be switched over without refused webhooks."""
    actor.require("operator", company_id)
    src = _provider(name)
    if src.signature.scheme in CERTIFICATE_SCHEMES:
        raise Conflict(
            f"{name} signs with its own private key; there is no shared secret to rotate: "
            "enable it again with the new certificate"
        )
    new = _check_secret(secret)
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise Invalid("grace_seconds", f"between 0 and {int(MAX_GRACE.total_seconds())}")
    require_company(conn, company_id)
    rows = _scoped_rows(conn, company_id, name, restaurant_id, lock=True)
    row = next((r for r in rows if r.restaurant_id == restaurant_id), None)
    if row is None:
        raise NotFound(f"no company-wide {name} integration for {company_id!r}: name a restaurant")
    if not row.enabled:
        raise Conflict(f"{name} is disabled for this scope: enable it with the new secret")
    current = read_integration_secrets(
        conn, key=key, company_id=company_id, provider=name, restaurant_id=restaurant_id
    ).get("webhook_secrets", [])
    if current and current[0] == new:
        raise Invalid("secret", "is the secret in use now; give the new one")
    kept = current[:1] if grace > timedelta(0) else []
    sealed = encrypt_json(
        key,
        {"webhook_secrets": [new, *kept]},
        context=integration_context(company_id, name, restaurant_id),
    )
    after = conn.execute(
        sa.text(
            "update ops.integrations set secret_ciphertext = :s, updated_at = now(), "
            "previous_secret_expires_at = "
            "case when :keep then now() + make_interval(secs => :g) end "
            "where integration_id = :i returning secret_set_at, previous_secret_expires_at"
        ),
        {"s": sealed, "keep": bool(kept), "g": grace.total_seconds(), "i": row.integration_id},
    ).one()
    audit.record(
        conn,
        actor,
        action="integrations.rotate",
        target=_target(company_id, name, restaurant_id),
        company_id=company_id,
        after={
            "secret_set_at": after.secret_set_at,
            "previous_secret_expires_at": after.previous_secret_expires_at,
        },
        details={
            "provider": name,
            "restaurant_id": restaurant_id,
            "grace_seconds": int(grace.total_seconds()),
        },
    )
    return get_integration(conn, actor, company_id, name)


@dataclass(frozen=True)
class SampleCheck:
    provider: str
    company_id: str
    restaurant_id: str
    verified: bool
    detail: str
    accepted: bool  # what ingest would answer: verified, and the restaurant in scope
    signature_headers: list[str]
    event_id: str | None
    event_type: str
    mapping: str  # mapped, ignored, unmapped, or not_in_catalogue
    canonical_type: str | None
    canonical_status: str | None
    secrets_accepted: int
    landed: bool = False


def _put(doc: dict[str, Any], path: JsonPath, value: Any) -> None:
    node = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(path[-1], value)


def sample_event(
    src: Source, restaurant_id: str, event_type: str, now: datetime
) -> tuple[bytes, dict[str, str], str]:
    """(body, extra headers, event id) of a sample event shaped by the catalogue entry."""
    event_id = f"test_{uuid.uuid4().hex}"
    doc: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for locator, value in ((src.event_id, event_id), (src.event_type, event_type)):
        if locator.json:
            _put(doc, locator.json, value)
        elif locator.header:
            headers[locator.header] = value
    if src.restaurant.json:
        _put(doc, src.restaurant.json, restaurant_id)
    platform = src.delivery
    if platform is not None:
        canonical = _status_of(src, event_type)[1] or "received"
        word = next((w for w, s in platform.status_words.items() if s == canonical), canonical)
        fields: tuple[tuple[JsonPath, Any], ...] = (
            (platform.order_id, f"test-order-{event_id[5:17]}"),
            (platform.occurred_at, now.isoformat().replace("+00:00", "Z")),
            (platform.order_status, word),
            (platform.amount, 1000),
            (platform.currency, "AED"),
        )
        for path, value in fields:
            if path:
                _put(doc, path, value)
    for path in src.event_id.hash_of:
        _put(doc, path, event_id)
    return orjson.dumps(doc), headers, event_id


def _status_of(src: Source, event_type: str) -> tuple[str, str | None]:
    """(mapping, canonical delivery status) of an event name, per the catalogue."""
    if event_type in src.ignored_event_types:
        return "ignored", None
    platform = src.delivery
    if platform is None:
        return "not_in_catalogue", None
    if event_type in platform.statuses:
        return "mapped", platform.statuses[event_type]
    if event_type in platform.update_events:
        return "mapped", None
    return "unmapped", None


def _default_type(src: Source) -> str:
    if src.delivery is not None:
        return next(iter(src.delivery.statuses))
    return SAMPLE_TYPES.get(src.name, "test.event")


def verify_sample(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    name: str,
    *,
    key: bytes,
    restaurant_id: str | None = None,
    event_type: str | None = None,
) -> SampleCheck:
    """Sign a sample event with the provider's scheme and the stored secret, verify and
    identify it as ingest does, and say how it maps. Lands nothing."""
    actor.require("operator", company_id)
    src = _provider(name)
    provider = PROVIDERS[name]
    require_company(conn, company_id)
    if src.signature.scheme in CERTIFICATE_SCHEMES:
        raise Conflict(
            f"{name} signs with its own private key, which is never stored here: send a test "
            f"event from {name}'s dashboard and read the status"
        )
    if event_type is not None and not 1 <= len(event_type) <= 128:
        raise Invalid("event_type", "1 to 128 characters")
    if restaurant_id is not None:
        require_restaurant(conn, company_id, restaurant_id)
    rows = conn.exec_driver_sql(CREDENTIALS_SQL, (company_id, name)).all()
    creds = webhook_credentials(key, company_id, name, rows)
    if creds is None:
        raise Conflict(f"{name} is not enabled for {company_id!r}: ingest answers its webhooks 404")
    if restaurant_id is None:
        restaurant_id = (
            min(creds.restaurants)
            if creds.restaurants
            else conn.execute(
                sa.text("select min(restaurant_id) from ops.restaurants where company_id = :c"),
                {"c": company_id},
            ).scalar()
        )
        if restaurant_id is None:
            raise Invalid("restaurant_id", f"{company_id!r} has no restaurant to test with")
    # The secret of the restaurant's own scope; out of scope, any enabled scope's (the
    # answer then says ingest would refuse the restaurant).
    scope = (
        None
        if creds.restaurants is None
        else restaurant_id
        if restaurant_id in creds.restaurants
        else min(creds.restaurants)
    )
    stored = read_integration_secrets(
        conn, key=key, company_id=company_id, provider=name, restaurant_id=scope
    ).get("webhook_secrets", [])
    if not stored:
        raise Conflict(f"{name} has no stored secret for this scope: enable it with one")
    now = datetime.now(UTC)
    kind = event_type or _default_type(src)
    body, extra, event_id = sample_event(src, restaurant_id, kind, now)
    signed = provider.sign(body, str(stored[0]), now.timestamp(), event_id)
    # Ingest sees lower-cased header names.
    headers = {
        "content-type": "application/json",
        **{k.lower(): v for k, v in {**extra, **signed}.items()},
    }
    found_id: str | None = None
    try:
        provider.verify(body, headers, creds, now.timestamp())
        verified, detail = True, f"signature verified ({src.signature.scheme} scheme)"
        found_id, kind = provider.identify(orjson.loads(body), headers)
        refusal = restaurant_refusal(name, body, headers, creds)
    except SignatureError as exc:
        verified, detail, refusal = False, f"signature refused: {exc}", None
    except MalformedEvent as exc:
        verified, detail, refusal = True, f"signed but ingest cannot name it: {exc}", str(exc)
    if refusal:
        detail += f"; refused: {refusal}"
    mapping, status = _status_of(src, kind)
    result = SampleCheck(
        provider=name,
        company_id=company_id,
        restaurant_id=restaurant_id,
        verified=verified,
        detail=detail,
        accepted=verified and not refusal,
        signature_headers=sorted(k for k in signed),
        event_id=found_id,
        event_type=kind,
        mapping=mapping,
        canonical_type="delivery.status_changed" if src.delivery and mapping == "mapped" else None,
        canonical_status=status,
        secrets_accepted=len(creds.secrets),
    )
    audit.record(
        conn,
        actor,
        action="integrations.test",
        target=_target(company_id, name, scope),
        company_id=company_id,
        details={
            "provider": name,
            "restaurant_id": restaurant_id,
            "event_type": kind,
            "verified": verified,
            "accepted": result.accepted,
        },
    )
    return result


@dataclass(frozen=True)
class Rejections:
    reason: str  # the refusal's stable code (invalid_signature, unknown_company, ...)
    last_hour: int
    last_day: int


@dataclass(frozen=True)
class UnmappedEvents:
    event_type: str
    reason: str
    events: int
    last_received_at: datetime


@dataclass(frozen=True)
class Status:
    name: str
    company_id: str
    enabled: bool
    restaurants: list[str] | None
    last_event_at: datetime | None
    events_last_hour: int
    events_last_day: int
    rejections: list[Rejections]
    # None: the unmapped-events model is not built on this database yet.
    unmapped: list[UnmappedEvents] | None
    secret_age_seconds: int | None
    previous_secret_expires_at: datetime | None


def status(conn: sa.Connection, actor: Actor, company_id: str, name: str) -> Status:
    """Last event, events and rejections (by reason) in the last hour and day, unmapped
    events, secret age. Reads the (company_id, source, received_at) indexes."""
    view = get_integration(conn, actor, company_id, name)
    counts = conn.execute(
        sa.text(
            "select count(*) filter (where received_at >= now() - interval '1 hour'), "
            "count(*) from raw.webhook_events where company_id = :c and source = :p "
            "and received_at >= now() - interval '1 day'"
        ),
        {"c": company_id, "p": name},
    ).one()
    refused = conn.execute(
        sa.text(
            "select split_part(reason, ':', 1) as code, "
            "count(*) filter (where received_at >= now() - interval '1 hour') as hour, "
            "count(*) as day from raw.rejected_requests where company_id = :c and source = :p "
            "and received_at >= now() - interval '1 day' group by 1 order by 3 desc, 1"
        ),
        {"c": company_id, "p": name},
    ).all()
    names = unmapped.read_unmapped(conn, company_id=company_id)
    return Status(
        name=name,
        company_id=company_id,
        enabled=view.enabled,
        restaurants=view.restaurants,
        last_event_at=view.last_event_at,
        events_last_hour=int(counts[0]),
        events_last_day=int(counts[1]),
        rejections=[Rejections(r.code, int(r.hour), int(r.day)) for r in refused],
        unmapped=None
        if names is None
        else [
            UnmappedEvents(u.provider_event_type, u.reason, u.events, u.last_received_at)
            for u in names
            if u.source == name
        ],
        secret_age_seconds=view.secret_age_seconds,
        previous_secret_expires_at=view.previous_secret_expires_at,
    )


@dataclass(frozen=True)
class Hour:
    hour: datetime  # the start of the hour, UTC
    events: int
    rejections: int


def hourly(conn: sa.Connection, actor: Actor, company_id: str, name: str) -> list[Hour]:
    """Events landed and requests refused per hour over the last 24 hours (every hour,
    zeros included), for the console's chart. Reads the (company_id, source, received_at)
    indexes."""
    get_integration(conn, actor, company_id, name)
    rows = conn.execute(
        sa.text(
            """
            with hours as (
                select generate_series(date_trunc('hour', now()) - interval '23 hours',
                                       date_trunc('hour', now()), interval '1 hour') as hour
            ), landed as (
                select date_trunc('hour', received_at) as hour, count(*) as n
                from raw.webhook_events
                where company_id = :c and source = :p
                  and received_at >= date_trunc('hour', now()) - interval '23 hours'
                group by 1
            ), refused as (
                select date_trunc('hour', received_at) as hour, count(*) as n
                from raw.rejected_requests
                where company_id = :c and source = :p
                  and received_at >= date_trunc('hour', now()) - interval '23 hours'
                group by 1
            )
            select h.hour, coalesce(l.n, 0) as events, coalesce(r.n, 0) as rejections
            from hours h left join landed l using (hour) left join refused r using (hour)
            order by h.hour
            """
        ),
        {"c": company_id, "p": name},
    ).all()
    return [Hour(r.hour, int(r.events), int(r.rejections)) for r in rows]


@dataclass(frozen=True)
class Rejection:
    received_at: datetime
    status_code: int
    reason: str
    path: str


def recent_rejections(
    conn: sa.Connection, actor: Actor, company_id: str, name: str, *, limit: int = 20
) -> list[Rejection]:
    """The newest refused requests for this integration with their reasons (never their
    headers or body: a refused request may carry anything)."""
    get_integration(conn, actor, company_id, name)
    rows = conn.execute(
        sa.text(
            "select received_at, status_code, reason, path from raw.rejected_requests "
            "where company_id = :c and source = :p order by received_at desc limit :n"
        ),
        {"c": company_id, "p": name, "n": limit},
    ).all()
    return [Rejection(r.received_at, int(r.status_code), str(r.reason), str(r.path)) for r in rows]
