"""The messaging adapter (Twilio-class): receipts after payment, nudges for unpaid bills.

A receipt is a guest message: it is queued only for a guest with a recorded opt-in
(ops.message_consents) who has not opted out since, in the restaurant's language and
template (ops.message_templates, else the default), and always ends with the opt-out line.
A nudge is a staff message: it goes to the configured staff number only, never to a
guest's. Replies (STOP) arrive signed by Twilio and are checked here too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from pydantic import Field, ValidationInfo, field_validator

from partner_signals.adapters import message_templates as templates
from partner_signals.adapters.base import (
    Adapter,
    ConnectionCheck,
    Message,
    Outgoing,
    Planned,
    Target,
    basic_auth,
    envelope,
)
from partner_signals.adapters.config import AdapterConfig, AdapterSecrets, Cli, check_url

DEFAULT_BASE_URL = "https://api.twilio.com"
DEFAULT_NUDGE_AFTER_MINUTES = 20
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
# Where a guest's phone number may sit in a canonical event's data.
PHONE_FIELDS = ("guest_phone", "customer_phone", "phone")
NUDGE_TYPE = "bill.unpaid_nudge"

log = logging.getLogger(__name__)


class MessagingConfig(AdapterConfig):
    base_url: Annotated[
        str,
        Field(description="The Twilio API base URL (or a gateway of the same shape)"),
        Cli(flag="--url"),
    ] = DEFAULT_BASE_URL
    sender: Annotated[
        str,
        Field(alias="from", description="Sending number (E.164) or MG... messaging service"),
        Cli(flag="--from-number"),
    ]
    receipt_to: Annotated[
        str | None, Field(description="Number for receipts when the guest's is unknown (E.164)")
    ] = None
    nudge_to: Annotated[
        str | None,
        Field(description="Staff number for unpaid-bill nudges (E.164); none, no nudges"),
    ] = None
    nudge_after_minutes: Annotated[
        float, Field(description="Nudge when a bill is unpaid this many minutes")
    ] = DEFAULT_NUDGE_AFTER_MINUTES

    @field_validator("base_url", mode="before")
    @classmethod
    def _url(cls, value: Any, info: ValidationInfo) -> str:
        return check_url(value, str(info.field_name))

    @field_validator("sender", mode="before")
    @classmethod
    def _sender(cls, value: Any) -> str:
        if not (PHONE.match(str(value or "")) or MESSAGING_SERVICE.match(str(value or ""))):
            raise ValueError("from must be an E.164 number (+971...) or an MG... service")
        return str(value)

    @field_validator("receipt_to", "nudge_to", mode="before")
    @classmethod
    def _phone(cls, value: Any, info: ValidationInfo) -> str | None:
        if value is not None and not PHONE.match(str(value)):
            raise ValueError(f"{info.field_name} must be an E.164 number")
        return None if value is None else str(value)

    @field_validator("nudge_after_minutes", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError("nudge_after_minutes must be a positive number")
        return float(value)


class MessagingSecrets(AdapterSecrets):
    account_sid: Annotated[str, Field(description="Twilio AccountSid (AC + 32 hex digits)")]
    auth_token: Annotated[
        str,
        Field(description="Twilio AuthToken"),
        Cli(stdin=True, envvar="PARTNER_SIGNALS_ADAPTER_AUTH_TOKEN"),
    ]

    @field_validator("account_sid", mode="before")
    @classmethod
    def _sid(cls, value: Any) -> str:
        if not ACCOUNT_SID.match(str(value)):
            raise ValueError("account_sid looks like AC followed by 32 hex digits")
        return str(value)

    @field_validator("auth_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> str:
        if len(str(value)) < 16:
            raise ValueError("auth_token is too short to be a real token")
        return str(value)


class MessagingAdapter(Adapter):
    name: ClassVar[str] = "messaging"
    description: ClassVar[str] = "SMS through the Twilio REST API: receipts and unpaid-bill nudges"
    event_types: ClassVar[frozenset[str]] = frozenset(
        {"order.paid", "payment.succeeded", "invoice.paid"}
    )
    signals: ClassVar[frozenset[str]] = frozenset()
    config_model: ClassVar[type[AdapterConfig]] = MessagingConfig
    secrets_model: ClassVar[type[AdapterSecrets]] = MessagingSecrets

    def plan_event(self, config: Mapping[str, Any], event: Mapping[str, Any]) -> list[Planned]:
        if event["type"] not in self.subscribed_events(config) or not event.get("order_id"):
            return []
        body = envelope(event)
        data = body.get("data") or {}
        to = next((data[f] for f in PHONE_FIELDS if data.get(f)), None) or config.get("receipt_to")
        if not to:
            return []  # no number to text: a receipt is impossible, not a failure
        restaurant, order = body["restaurant_id"], body["order_id"]
        payload = {
            "kind": "receipt",
            "audience": "guest",
            "to": to,
            "restaurant_id": restaurant,
            "order_id": order,
            "table_id": data.get("table_id"),
            "amount": data.get("amount", data.get("total")),
            "currency": data.get("currency"),
            "paid_at": body["occurred_at"],
        }
        # One receipt per order, however many payment events (POS and Stripe) say it is paid.
        return [Planned(f"receipt:{restaurant}:{order}:1", "receipt", payload, str(body["id"]))]

    def plan_nudge(self, config: Mapping[str, Any], bill: Mapping[str, Any]) -> Planned | None:
        """A nudge for one bill left unpaid past the threshold, to the configured staff
        number; without one, none. Never to the guest: the bill's phone is not read."""
        to = config.get("nudge_to")
        if not to:
            return None
        restaurant, order = str(bill["restaurant_id"]), str(bill["order_id"])
        payload = {
            "kind": "nudge",
            "audience": "staff",
            "to": to,
            "restaurant_id": restaurant,
            "order_id": order,
            "table_id": bill.get("table_id"),
            "bill_requested_at": str(bill["bill_requested_at"]),
            "minutes_unpaid": int(bill["minutes_unpaid"]),
        }
        return Planned(f"nudge:{restaurant}:{order}:1", NUDGE_TYPE, payload, str(bill["event_id"]))

    def admit(self, conn: sa.Connection, company_id: str, planned: Planned) -> Planned | None:
        """A guest message only to a guest who opted in and has not opted out; a staff
        message never to a number known as a guest's. Admitted, the text is rendered
        from the restaurant's template in its language (the opt-out line on a guest's)."""
        payload = dict(planned.payload)
        kind = str(payload.get("kind") or "receipt")
        to, restaurant = str(payload["to"]), str(payload["restaurant_id"])
        who = templates.audience(kind)
        if who == "guest" and not may_text_guest(conn, company_id, restaurant, to):
            return None
        if who == "staff" and is_guest_contact(conn, company_id, to):
            log.warning(
                "a %s message for restaurant %s was not queued: its staff number is a "
                "guest's contact in company %s",
                kind,
                restaurant,
                company_id,
            )
            return None
        language, template, name = restaurant_template(conn, restaurant, kind)
        rendered = templates.render(kind, template, language, {**payload, "restaurant_name": name})
        payload.update(audience=rendered.audience, language=language, body=rendered.body)
        return Planned(
            planned.key,
            planned.event_type,
            payload,
            planned.event_id,
            planned.version,
            planned.requires,
        )

    @staticmethod
    def text(payload: Mapping[str, Any]) -> str:
        """What is sent: the text rendered when it was queued (or, for a message queued
        before templates existed, the default one), and on a guest's message always the
        opt-out line."""
        kind = str(payload.get("kind") or "receipt")
        language = str(payload.get("language") or templates.DEFAULT_LANGUAGE)
        body = payload.get("body")
        if not body:
            template = templates.default_template(kind, language) or ""
            body = templates.render(kind, template, language, payload).body
        if templates.audience(kind) == "guest":
            body = templates.with_opt_out(str(body), language)
        return str(body)

    def build_request(self, target: Target, message: Message, *, now: float) -> Outgoing:
        sid, token = str(target.secrets["account_sid"]), str(target.secrets["auth_token"])
        base = str(target.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        sender = str(target.config["from"])
        form = {
            "To": str(message.payload["to"]),
            # Twilio takes either a sending number or a messaging service.
            ("MessagingServiceSid" if sender.startswith("MG") else "From"): sender,
            "Body": self.text(message.payload),
        }
        return Outgoing(
            method="POST",
            url=f"{base}/2010-04-01/Accounts/{sid}/Messages.json",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "authorization": basic_auth(sid, token),
                # Twilio ignores it; a Twilio-shaped gateway of our own can deduplicate.
                "idempotency-key": message.idempotency_key,
                "user-agent": "partner-signals/1",
            },
            content=urlencode(form).encode(),
        )

    async def test_connection(self, client: httpx.AsyncClient, target: Target) -> ConnectionCheck:
        """GET the account resource: it answers 200 only for a valid SID and token."""
        sid, token = str(target.secrets["account_sid"]), str(target.secrets["auth_token"])
        base = str(target.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        try:
            response = await client.get(
                f"{base}/2010-04-01/Accounts/{sid}.json",
                headers={"authorization": basic_auth(sid, token)},
            )
        except httpx.HTTPError as exc:
            return ConnectionCheck(False, None, type(exc).__name__)
        ok = response.status_code == 200
        return ConnectionCheck(ok, response.status_code, response.reason_phrase)


# -- who may be texted, and in which words -------------------------------------------------


def may_text_guest(conn: sa.Connection, company_id: str, restaurant_id: str, contact: str) -> bool:
    """The guest opted in for this restaurant or every restaurant of the company, and has
    not opted out since (a STOP opts out every row of the company)."""
    return bool(
        conn.execute(
            sa.text(
                """
                select exists (
                    select 1 from ops.message_consents
                    where company_id = :c and contact = :to
                        and (restaurant_id = :r or restaurant_id is null)
                        and opted_in_at is not null and opted_out_at is null
                )
                """
            ),
            {"c": company_id, "r": restaurant_id, "to": contact},
        ).scalar()
    )


def is_guest_contact(conn: sa.Connection, company_id: str, contact: str) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "select exists (select 1 from ops.message_consents "
                "where company_id = :c and contact = :to)"
            ),
            {"c": company_id, "to": contact},
        ).scalar()
    )


def restaurant_template(conn: sa.Connection, restaurant_id: str, kind: str) -> tuple[str, str, str]:
    """(language, template, restaurant name): the restaurant's language, its own template
    of the kind in that language, else the default in that language, else in English."""
    row = conn.execute(
        sa.text(
            """
            select r.name, coalesce(m.language, :default) as language,
                (select t.body from ops.message_templates t
                 where t.restaurant_id = r.restaurant_id and t.kind = :k
                     and t.language = coalesce(m.language, :default)) as body
            from ops.restaurants r
            left join ops.restaurant_messaging m using (restaurant_id)
            where r.restaurant_id = :r
            """
        ),
        {"r": restaurant_id, "k": kind, "default": templates.DEFAULT_LANGUAGE},
    ).one_or_none()
    name = str(row.name) if row is not None else restaurant_id
    language = str(row.language) if row is not None else templates.DEFAULT_LANGUAGE
    body = row.body if row is not None else None
    if body is None:
        body = templates.default_template(kind, language)
    if body is None:
        language = templates.DEFAULT_LANGUAGE
        body = templates.default_template(kind, language) or ""
    return language, str(body), name


def twilio_signature(auth_token: str, url: str, form: Sequence[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature of a form POST: base64 HMAC-SHA1 of the full URL and
    every parameter name and value, sorted by name, keyed with the AuthToken."""
    signed = url + "".join(k + v for k, v in sorted(form, key=lambda kv: kv[0]))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio(
    auth_tokens: Sequence[str], url: str, form: Sequence[tuple[str, str]], signature: str
) -> bool:
    """True when `signature` is Twilio's for this request under one of the tokens."""
    return bool(signature) and any(
        hmac.compare_digest(twilio_signature(token, url, form), signature) for token in auth_tokens
    )
