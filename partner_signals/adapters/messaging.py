"""The messaging adapter (Twilio-class): receipts after payment, nudges for unpaid bills."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar
from urllib.parse import urlencode

import httpx
from pydantic import Field, ValidationInfo, field_validator

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
        str | None, Field(description="Staff number for unpaid-bill nudges (E.164)")
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
            "to": to,
            "restaurant_id": restaurant,
            "order_id": order,
            "amount": data.get("amount", data.get("total")),
            "currency": data.get("currency"),
            "paid_at": body["occurred_at"],
        }
        # One receipt per order, however many payment events (POS and Stripe) say it is paid.
        return [Planned(f"receipt:{restaurant}:{order}:1", "receipt", payload, str(body["id"]))]

    def plan_nudge(self, config: Mapping[str, Any], bill: Mapping[str, Any]) -> Planned | None:
        """A nudge for one bill left unpaid past the threshold; sent to the configured
        staff number, else the guest's, else nowhere."""
        to = config.get("nudge_to") or bill.get("phone")
        if not to:
            return None
        restaurant, order = str(bill["restaurant_id"]), str(bill["order_id"])
        payload = {
            "kind": "nudge",
            "to": to,
            "restaurant_id": restaurant,
            "order_id": order,
            "table_id": bill.get("table_id"),
            "bill_requested_at": str(bill["bill_requested_at"]),
            "minutes_unpaid": int(bill["minutes_unpaid"]),
        }
        return Planned(f"nudge:{restaurant}:{order}:1", NUDGE_TYPE, payload, str(bill["event_id"]))

    @staticmethod
    def text(payload: Mapping[str, Any]) -> str:
        if payload.get("kind") == "nudge":
            table = f" at table {payload['table_id']}" if payload.get("table_id") else ""
            return (
                f"Bill for order {payload['order_id']}{table} has been waiting "
                f"{payload['minutes_unpaid']} minutes to be paid."
            )
        amount = payload.get("amount")
        paid = f" of {amount} {payload.get('currency') or ''}".rstrip() if amount else ""
        return f"Thank you. Your payment{paid} for order {payload['order_id']} was received."

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
