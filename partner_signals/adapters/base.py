"""The adapter interface: what a partner subscribes to, how it is checked and how it is sent."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import httpx
import orjson
import sqlalchemy as sa

from partner_signals.adapters.config import (
    AdapterConfig,
    AdapterSecrets,
    FieldSpec,
    check_model,
    check_url,
    field_specs,
)
from partner_signals.catalogue import signals as catalogue

# The canonical event types (dbt_project/models/canonical/canonical_events.yml).
CANONICAL_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "order.created",
        "order.item_added",
        "order.item_fired",
        "order.item_ready",
        "order.item_served",
        "order.bill_requested",
        "order.paid",
        "order.cancelled",
        "order.rejected",
        "table.seated",
        "table.cleared",
        "payment.succeeded",
        "payment.failed",
        "payment.refunded",
        "delivery.status_changed",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
    }
)
# Signals pushed as versioned messages (type "signal.<name>"): the signal catalogue's.
SIGNALS: frozenset[str] = frozenset(s.name for s in catalogue.pushed())
ENVELOPE_FIELDS = (
    "id",
    "type",
    "schema_version",
    "occurred_at",
    "received_at",
    "source",
    "company_id",
    "restaurant_id",
    "order_id",
    "data",
)


class CredentialError(ValueError):
    """Configuration or credentials an adapter cannot use; the message says which field."""


@dataclass(frozen=True)
class Target:
    """One enabled integration as the worker sees it, credentials already decrypted."""

    integration_id: int
    adapter: str
    company_id: str
    restaurant_id: str | None
    config: Mapping[str, Any]
    # repr=False: a Target in a traceback or a log line must not print credentials.
    secrets: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def secret_values(self) -> list[str]:
        """Every credential string, for redacting partner answers before they are stored."""
        values: list[str] = []
        for value in self.secrets.values():
            items = value if isinstance(value, list | tuple) else [value]
            values += [str(v) for v in items if v]
        return values


@dataclass(frozen=True)
class Planned:
    """A message an adapter wants sent for one event or signal change."""

    key: str  # unique per integration; the idempotency key is "<integration_id>:<key>"
    event_type: str
    payload: dict[str, Any]
    event_id: str
    version: int = 1
    # The key of a message this one only makes sense after (a clock's stop after its
    # start): it is enqueued only when that one is, in the same batch or before.
    requires: str | None = None


@dataclass(frozen=True)
class Message:
    """One outbox row handed to an adapter for an attempt."""

    delivery_id: int
    idempotency_key: str
    event_id: str
    event_type: str
    version: int
    payload: Mapping[str, Any]
    attempt: int


@dataclass(frozen=True)
class Outgoing:
    """An HTTP request, built purely so tests can look at it without a server."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes = b""


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    status_code: int | None
    detail: str


def to_jsonable(value: Any) -> Any:
    """Rows from PostgreSQL carry datetimes, UUIDs and Decimals; make them JSON types."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    return value


def envelope(event: Mapping[str, Any]) -> dict[str, Any]:
    """The published canonical envelope of an event row (typed helper columns dropped)."""
    body: dict[str, Any] = to_jsonable({name: event.get(name) for name in ENVELOPE_FIELDS})
    if body.get("schema_version") is None:
        body["schema_version"] = 1
    return body


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=to_jsonable)


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def require_url(config: Mapping[str, Any], name: str = "url") -> str:
    try:
        return check_url(config.get(name), name)
    except ValueError as exc:
        raise CredentialError(str(exc)) from None


class Adapter:
    """A partner adapter. Subclasses set `name`, what they subscribe to and how they send.

    The interface is four things: subscriptions (`plan_event` / `plan_signal` decide what
    gets into the outbox), `validate` (credentials and config before they are stored,
    through the adapter's `config_model` and `secrets_model`), `test_connection`, and
    `build_request` (one delivery attempt as an HTTP request).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    event_types: ClassVar[frozenset[str]] = frozenset()
    signals: ClassVar[frozenset[str]] = frozenset()
    # What enabling it takes: its config (stored as JSON) and its secrets (sealed). The
    # CLI's `integrations enable` options and `integrations adapters` come from these.
    config_model: ClassVar[type[AdapterConfig]] = AdapterConfig
    secrets_model: ClassVar[type[AdapterSecrets]] = AdapterSecrets
    # Whose fault a 401/403 is when it gives up: the partner's (its endpoint refused the
    # credentials it gave us), or `credentials` (ours, as for a delivery platform's API).
    credentials_fault: ClassVar[str] = "partner"

    # -- subscriptions -------------------------------------------------------------------

    def subscribed_events(self, config: Mapping[str, Any]) -> frozenset[str]:
        return _narrow(self.event_types, config.get("events"))

    def subscribed_signals(self, config: Mapping[str, Any]) -> frozenset[str]:
        return _narrow(self.signals, config.get("signals"))

    def plan_event(self, config: Mapping[str, Any], event: Mapping[str, Any]) -> list[Planned]:
        """The messages one canonical event becomes for this integration (often none)."""
        if event["type"] not in self.subscribed_events(config):
            return []
        event_id = str(event["id"])
        return [
            Planned(
                key=f"{event_id}:1",
                event_type=str(event["type"]),
                payload=envelope(event),
                event_id=event_id,
            )
        ]

    def plan_signal(
        self,
        config: Mapping[str, Any],
        *,
        company_id: str,
        restaurant_id: str,
        signal: str,
        key: str,
        value: Mapping[str, Any],
        version: int,
    ) -> Planned | None:
        if signal not in self.subscribed_signals(config):
            return None
        event_id = f"signal:{signal}:{restaurant_id}:{key}"
        push_type = catalogue.get(signal).push_type
        payload = {
            "id": f"{event_id}:v{version}",
            "type": push_type,
            "schema_version": 1,
            "company_id": company_id,
            "restaurant_id": restaurant_id,
            "signal": signal,
            "key": key,
            "version": version,
            # A later version of the same key replaces what the partner holds.
            "correction": version > 1,
            "previous_version": version - 1 if version > 1 else None,
            "value": to_jsonable(dict(value)),
        }
        return Planned(
            key=f"{event_id}:{version}",
            event_type=push_type,
            payload=payload,
            event_id=event_id,
            version=version,
        )

    def admit(self, conn: sa.Connection, company_id: str, planned: Planned) -> Planned | None:
        """The last word before a planned message enters the outbox, with the database
        at hand: the message as it will be sent, or None to send nothing (the messaging
        adapter checks a guest's consent and renders the restaurant's template here)."""
        return planned

    # -- credentials ---------------------------------------------------------------------

    def validate(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        """Raise CredentialError unless this configuration can be used; the message names
        every field that is wrong and never carries a value."""
        # An empty secret is a missing one (an unset option, a blank line on stdin).
        given = {k: v for k, v in secrets.items() if v not in (None, "", [])}
        reasons = check_model(self.secrets_model, given, adapter=self, secret=True)
        reasons += check_model(self.config_model, config, adapter=self, secret=False)
        if reasons:
            raise CredentialError("; ".join(reasons))

    @classmethod
    def fields(cls) -> list[FieldSpec]:
        """Every field enabling this adapter takes, config first, then secrets."""
        return field_specs(cls.config_model, secret=False) + field_specs(
            cls.secrets_model, secret=True
        )

    # -- sending -------------------------------------------------------------------------

    def build_request(self, target: Target, message: Message, *, now: float) -> Outgoing:
        raise NotImplementedError

    async def deliver(
        self, client: httpx.AsyncClient, target: Target, message: Message, *, now: float
    ) -> httpx.Response:
        """Send one attempt. Exceptions are classified by the worker, not here."""
        req = self.build_request(target, message, now=now)
        return await client.request(req.method, req.url, headers=req.headers, content=req.content)

    async def test_connection(self, client: httpx.AsyncClient, target: Target) -> ConnectionCheck:
        """Send a harmless signed ping; a 2xx answer means URL and credentials work."""
        ping = Message(
            delivery_id=0,
            idempotency_key=f"test:{target.integration_id}:{int(time.time())}",
            event_id="test",
            event_type="partner_signals.test",
            version=1,
            payload={"type": "partner_signals.test", "company_id": target.company_id},
            attempt=1,
        )
        return await _check(self.deliver(client, target, ping, now=time.time()))


def _narrow(offered: frozenset[str], chosen: Iterable[str] | None) -> frozenset[str]:
    return offered & frozenset(chosen) if chosen is not None else offered


async def _check(pending: Any) -> ConnectionCheck:
    try:
        response: httpx.Response = await pending
    except httpx.HTTPError as exc:
        return ConnectionCheck(False, None, type(exc).__name__)
    ok = 200 <= response.status_code < 300
    return ConnectionCheck(ok, response.status_code, response.reason_phrase)
