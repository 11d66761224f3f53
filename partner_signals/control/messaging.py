"""Messaging a guest would accept: each restaurant's language and message templates, the
guests' opt-ins and opt-outs, and the STOP replies that arrive signed by the provider.

The adapter (partner_signals/adapters/messaging.py) reads what is kept here when it queues
a message: no guest message without an opt-in in scope and no opt-out since; the template
of the restaurant's language; the opt-out line on every guest message. An opt-out also
cancels what is still waiting in the outbox for that guest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from partner_signals.adapters import message_templates as templates
from partner_signals.adapters.messaging import PHONE, restaurant_template, verify_twilio
from partner_signals.control import audit
from partner_signals.control.actor import Actor
from partner_signals.control.errors import ControlError, Invalid, NotFound
from partner_signals.control.lookups import require_company
from partner_signals.registry import read_integration_secrets

SOURCE_MAX = 100


class BadSignature(ControlError):
    """A reply whose signature is not the provider's for this company."""

    status = 401
    code = "bad_signature"


# -- restaurants and templates -------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    restaurant_id: str
    kind: str
    language: str
    audience: str
    body: str
    source: str  # restaurant (its own) or default
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class Preview:
    restaurant_id: str
    kind: str
    language: str
    audience: str
    text: str


def _restaurant(conn: sa.Connection, company_id: str, restaurant_id: str) -> str:
    """The restaurant's name; NotFound unless it is the company's."""
    name = conn.execute(
        sa.text("select name from ops.restaurants where restaurant_id = :r and company_id = :c"),
        {"r": restaurant_id, "c": company_id},
    ).scalar()
    if name is None:
        require_company(conn, company_id)
        raise NotFound(f"no restaurant {restaurant_id!r} in company {company_id!r}")
    return str(name)


def _language(conn: sa.Connection, restaurant_id: str) -> str:
    found = conn.execute(
        sa.text("select language from ops.restaurant_messaging where restaurant_id = :r"),
        {"r": restaurant_id},
    ).scalar()
    return str(found or templates.DEFAULT_LANGUAGE)


def _checked(fn: Any, value: str) -> str:
    try:
        return str(fn(value))
    except templates.TemplateError as exc:
        raise Invalid(exc.field, str(exc)) from None


def list_templates(
    conn: sa.Connection, actor: Actor, company_id: str, restaurant_id: str
) -> list[Template]:
    """The restaurant's own templates (every language), and the default of each known
    kind in its language where it has none of its own."""
    actor.require("viewer", company_id)
    _restaurant(conn, company_id, restaurant_id)
    language = _language(conn, restaurant_id)
    rows = conn.execute(
        sa.text(
            """
            select kind, language, body, updated_at, updated_by from ops.message_templates
            where restaurant_id = :r order by kind, language
            """
        ),
        {"r": restaurant_id},
    ).all()
    own = [
        Template(
            restaurant_id,
            r.kind,
            r.language,
            templates.audience(r.kind),
            r.body,
            "restaurant",
            r.updated_at,
            r.updated_by,
        )
        for r in rows
    ]
    have = {(t.kind, t.language) for t in own}
    defaults = [
        Template(restaurant_id, kind, language, templates.audience(kind), body, "default")
        for kind in templates.AUDIENCES
        if (kind, language) not in have
        and (body := templates.default_template(kind, language)) is not None
    ]
    return sorted(own + defaults, key=lambda t: (t.kind, t.language))


def set_template(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    restaurant_id: str,
    *,
    kind: str,
    body: str,
    language: str | None = None,
) -> Template:
    """Set the restaurant's template of `kind` in `language` (default: the restaurant's).
    Unknown variables, a bad kind or language are refused naming the field; the same
    text again changes nothing."""
    actor.require("operator", company_id)
    _restaurant(conn, company_id, restaurant_id)
    kind = _checked(templates.check_kind, kind)
    language = _checked(templates.check_language, language or _language(conn, restaurant_id))
    body = _checked(templates.check_body, body)
    before = conn.execute(
        sa.text(
            "select body from ops.message_templates "
            "where restaurant_id = :r and kind = :k and language = :l"
        ),
        {"r": restaurant_id, "k": kind, "l": language},
    ).scalar()
    if before != body:
        conn.execute(
            sa.text(
                """
                insert into ops.message_templates
                    (restaurant_id, company_id, kind, language, body, updated_by)
                values (:r, :c, :k, :l, :b, :by)
                on conflict (restaurant_id, kind, language) do update
                    set body = excluded.body, updated_by = excluded.updated_by,
                        updated_at = now()
                """
            ),
            {
                "r": restaurant_id,
                "c": company_id,
                "k": kind,
                "l": language,
                "b": body,
                "by": actor.name,
            },
        )
        audit.record(
            conn,
            actor,
            action="messaging.template_set",
            target=f"company/{company_id}/restaurant/{restaurant_id}/template/{kind}/{language}",
            company_id=company_id,
            before=None if before is None else {"body": before},
            after={"body": body},
        )
    return next(
        t
        for t in list_templates(conn, actor, company_id, restaurant_id)
        if (t.kind, t.language) == (kind, language)
    )


def set_language(
    conn: sa.Connection, actor: Actor, company_id: str, restaurant_id: str, language: str
) -> str:
    """The language the restaurant's guests and staff are written to."""
    actor.require("operator", company_id)
    _restaurant(conn, company_id, restaurant_id)
    language = _checked(templates.check_language, language)
    before = _language(conn, restaurant_id)
    if before != language:
        conn.execute(
            sa.text(
                """
                insert into ops.restaurant_messaging (restaurant_id, company_id, language)
                values (:r, :c, :l)
                on conflict (restaurant_id) do update
                    set language = excluded.language, updated_at = now()
                """
            ),
            {"r": restaurant_id, "c": company_id, "l": language},
        )
        audit.record(
            conn,
            actor,
            action="messaging.language_set",
            target=f"company/{company_id}/restaurant/{restaurant_id}",
            company_id=company_id,
            before={"language": before},
            after={"language": language},
        )
    return language


def get_language(conn: sa.Connection, actor: Actor, company_id: str, restaurant_id: str) -> str:
    actor.require("viewer", company_id)
    _restaurant(conn, company_id, restaurant_id)
    return _language(conn, restaurant_id)


def preview(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    restaurant_id: str,
    *,
    kind: str,
    values: Mapping[str, Any],
) -> Preview:
    """The text a message of `kind` would carry now, with these variables."""
    actor.require("viewer", company_id)
    name = _restaurant(conn, company_id, restaurant_id)
    kind = _checked(templates.check_kind, kind)
    unknown = sorted(set(values) - set(templates.VARIABLES))
    if unknown:
        raise Invalid("values", f"unknown variables {', '.join(unknown)}")
    language, body, _ = restaurant_template(conn, restaurant_id, kind)
    if not body:
        raise NotFound(f"no template of kind {kind!r} for restaurant {restaurant_id!r}")
    rendered = templates.render(kind, body, language, {"restaurant_name": name, **values})
    return Preview(restaurant_id, kind, language, rendered.audience, rendered.body)


# -- consents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    consent_id: int
    company_id: str
    restaurant_id: str | None  # None: every restaurant of the company
    contact: str
    opted_in_at: datetime | None
    source: str
    opted_out_at: datetime | None
    opt_out_source: str | None

    @property
    def active(self) -> bool:
        return self.opted_in_at is not None and self.opted_out_at is None


@dataclass(frozen=True)
class OptOut:
    company_id: str
    contact: str
    consents_opted_out: int
    messages_cancelled: int


_CONSENT = """
    select consent_id, company_id, restaurant_id, contact, opted_in_at, source,
        opted_out_at, opt_out_source
    from ops.message_consents
"""


def _contact(contact: str) -> str:
    contact = contact.strip()
    if not PHONE.match(contact):
        raise Invalid("contact", "an E.164 number such as +971501234567")
    return contact


def _source(source: str) -> str:
    source = source.strip()
    if not source or len(source) > SOURCE_MAX:
        raise Invalid("source", f"where the consent was given, 1 to {SOURCE_MAX} characters")
    return source


def list_consents(
    conn: sa.Connection, actor: Actor, company_id: str, *, contact: str | None = None
) -> list[Consent]:
    actor.require("viewer", company_id)
    require_company(conn, company_id)
    rows = conn.execute(
        sa.text(
            _CONSENT + " where company_id = :c and (cast(:to as text) is null or contact = :to)"
            " order by contact, restaurant_id nulls first"
        ),
        {"c": company_id, "to": contact},
    ).all()
    return [Consent(**r._asdict()) for r in rows]


def opt_in(
    conn: sa.Connection,
    actor: Actor,
    company_id: str,
    *,
    contact: str,
    source: str,
    restaurant_id: str | None = None,
    opted_in_at: datetime | None = None,
) -> Consent:
    """Record that a guest agreed to be texted (for one restaurant, or every restaurant
    of the company), when and where (`source`: the booking form, the POS, a QR code).
    A new opt-in after an opt-out is a new decision of the guest's and clears it."""
    actor.require("operator", company_id)
    contact, source = _contact(contact), _source(source)
    if restaurant_id is not None:
        _restaurant(conn, company_id, restaurant_id)
    else:
        require_company(conn, company_id)
    row: int = conn.execute(
        sa.text(
            """
            insert into ops.message_consents
                (company_id, restaurant_id, contact, opted_in_at, source)
            values (:c, :r, :to, coalesce(cast(:at as timestamptz), now()), :s)
            on conflict (company_id, coalesce(restaurant_id, ''), contact) do update
                set opted_in_at = excluded.opted_in_at, source = excluded.source,
                    opted_out_at = null, opt_out_source = null, updated_at = now()
            returning consent_id
            """
        ),
        {"c": company_id, "r": restaurant_id, "to": contact, "at": opted_in_at, "s": source},
    ).scalar_one()
    consent = Consent(
        **conn.execute(sa.text(_CONSENT + " where consent_id = :i"), {"i": row}).one()._asdict()
    )
    audit.record(
        conn,
        actor,
        action="messaging.opt_in",
        target=f"company/{company_id}/contact/{contact}",
        company_id=company_id,
        after={
            "restaurant_id": restaurant_id,
            "source": source,
            "opted_in_at": consent.opted_in_at,
        },
    )
    return consent


def opt_out(
    conn: sa.Connection, actor: Actor, company_id: str, *, contact: str, source: str
) -> OptOut:
    """The guest asked to hear nothing more from this company: every consent of theirs
    in it ends now (one is recorded when there was none, so a later import cannot opt
    them back in unnoticed), and their messages still waiting are cancelled."""
    actor.require("operator", company_id)
    contact, source = _contact(contact), _source(source)
    require_company(conn, company_id)
    ended = conn.execute(
        sa.text(
            """
            update ops.message_consents
            set opted_out_at = now(), opt_out_source = :s, updated_at = now()
            where company_id = :c and contact = :to and opted_out_at is null
            """
        ),
        {"c": company_id, "to": contact, "s": source},
    ).rowcount
    conn.execute(
        sa.text(
            """
            insert into ops.message_consents
                (company_id, restaurant_id, contact, opted_in_at, source, opted_out_at,
                 opt_out_source)
            values (:c, null, :to, null, :s, now(), :s)
            on conflict (company_id, coalesce(restaurant_id, ''), contact) do nothing
            """
        ),
        {"c": company_id, "to": contact, "s": source},
    )
    cancelled = conn.execute(
        sa.text(
            """
            update ops.outbox set status = 'cancelled', updated_at = now(),
                last_error = 'the guest opted out'
            where company_id = :c and adapter = 'messaging' and status = 'pending'
                and payload ->> 'to' = :to
                and coalesce(payload ->> 'audience', 'guest') = 'guest'
            """
        ),
        {"c": company_id, "to": contact},
    ).rowcount
    audit.record(
        conn,
        actor,
        action="messaging.opt_out",
        target=f"company/{company_id}/contact/{contact}",
        company_id=company_id,
        details={"source": source, "consents_ended": ended, "messages_cancelled": cancelled},
    )
    return OptOut(company_id, contact, ended, cancelled)


def receive_reply(
    conn: sa.Connection,
    company_id: str,
    *,
    key: bytes,
    url: str,
    form: Sequence[tuple[str, str]],
    signature: str,
    request_id: str | None = None,
) -> OptOut | None:
    """A guest's SMS reply as the provider posts it (Twilio: a form with From and Body,
    signed in X-Twilio-Signature with the AuthToken of the company's messaging
    integration). A STOP opts the sender out of the company's messages, a START opts
    them back in (company-wide); any other reply is acknowledged and kept nowhere. A signature that is not the provider's is refused."""
    scopes: list[str | None] = list(
        conn.execute(
            sa.text(
                "select restaurant_id from ops.integrations "
                "where company_id = :c and provider = 'messaging'"
            ),
            {"c": company_id},
        ).scalars()
    )
    tokens: list[str] = []
    for restaurant_id in scopes:
        secrets = read_integration_secrets(
            conn, key=key, company_id=company_id, provider="messaging", restaurant_id=restaurant_id
        )
        if secrets.get("auth_token"):
            tokens.append(str(secrets["auth_token"]))
    if not verify_twilio(tokens, url, form, signature):
        raise BadSignature("the reply is not signed by this company's messaging provider")
    fields = dict(form)
    sender, text = fields.get("From", ""), fields.get("Body", "")
    if not PHONE.match(sender):
        return None
    actor = Actor(name="system:messaging-reply", role="operator", request_id=request_id)
    if templates.is_stop(text):
        return opt_out(conn, actor, company_id, contact=sender, source="reply:STOP")
    if templates.is_start(text):
        # The guest asked to hear from the company again: a recorded opt-in of their own.
        opt_in(conn, actor, company_id, contact=sender, source="reply:START")
    return None
