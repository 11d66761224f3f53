"""Workforce (Nory-class) and CRM (SevenRooms-class) adapters: JSON pushes with a bearer key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from partner_signals.adapters.base import (
    Adapter,
    Message,
    Outgoing,
    Planned,
    Target,
    dumps,
    envelope,
)
from partner_signals.adapters.config import (
    AdapterConfig,
    AdapterSecrets,
    Cli,
    adapter_name,
    check_url,
)
from partner_signals.catalogue import signals as catalogue


class JsonPushConfig(AdapterConfig):
    url: Annotated[str, Field(description="The partner API endpoint messages are POSTed to")]
    location_id: Annotated[
        str | None,
        Field(description="The partner's id of the restaurant (default: the restaurant id)"),
    ] = None

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any, info: ValidationInfo) -> str:
        return check_url(value, str(info.field_name))


class JsonPushSecrets(AdapterSecrets):
    api_key: Annotated[
        str,
        Field(description="The partner API key, sent as a bearer token"),
        Cli(stdin=True, envvar="PARTNER_SIGNALS_ADAPTER_API_KEY"),
    ]

    @field_validator("api_key", mode="before")
    @classmethod
    def _long_enough(cls, value: Any, info: ValidationInfo) -> str:
        if len(str(value)) < 16:
            raise ValueError(f"{adapter_name(info)} api_key is too short to be a real key")
        return str(value)


class JsonPushAdapter(Adapter):
    """POST {url} a JSON message with `Authorization: Bearer <api_key>` and an
    `Idempotency-Key` header, the common shape of workforce and CRM partner APIs."""

    config_model: ClassVar[type[AdapterConfig]] = JsonPushConfig
    secrets_model: ClassVar[type[AdapterSecrets]] = JsonPushSecrets

    def build_request(self, target: Target, message: Message, *, now: float) -> Outgoing:
        body = {
            "id": message.idempotency_key,
            "type": message.event_type,
            "version": message.version,
            # Partners call a restaurant a location (workforce) or a venue (CRM).
            "location_id": target.config.get("location_id") or message.payload.get("restaurant_id"),
            "data": message.payload,
        }
        return Outgoing(
            method="POST",
            url=str(target.config["url"]),
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {target.secrets['api_key']}",
                "idempotency-key": message.idempotency_key,
                "user-agent": "partner-signals/1",
            },
            content=dumps(body),
        )


class WorkforceAdapter(JsonPushAdapter):
    name: ClassVar[str] = "workforce"
    description: ClassVar[str] = "Workforce planning (Nory-class): velocity, prep times, occupancy"
    # The raw material of the three workforce signals, for partners that model it themselves.
    event_types: ClassVar[frozenset[str]] = frozenset(
        {
            "order.created",
            "order.cancelled",
            "order.item_fired",
            "order.item_ready",
            "table.seated",
            "table.cleared",
        }
    )
    signals: ClassVar[frozenset[str]] = frozenset(s.name for s in catalogue.pushed("workforce"))


class CrmAdapter(JsonPushAdapter):
    name: ClassVar[str] = "crm"
    description: ClassVar[str] = (
        "Reservations / CRM (SevenRooms-class): seated, pacing, time-to-pay"
    )
    event_types: ClassVar[frozenset[str]] = frozenset(
        {
            "table.seated",
            "table.cleared",
            "order.bill_requested",
            "order.paid",
            "payment.succeeded",
            "invoice.paid",
        }
    )
    signals: ClassVar[frozenset[str]] = frozenset(s.name for s in catalogue.pushed("crm"))

    def plan_event(self, config: Mapping[str, Any], event: Mapping[str, Any]) -> list[Planned]:
        kind = str(event["type"])
        if kind not in self.subscribed_events(config):
            return []
        body = envelope(event)
        order_id = event.get("order_id")
        if kind.startswith("table."):
            partner_type = "guest.seated" if kind == "table.seated" else "guest.left"
            return [Planned(f"{event['id']}:1", partner_type, body, str(event["id"]))]
        if not order_id:
            return []
        data = body.get("data") or {}
        clock = {
            "order_id": order_id,
            "restaurant_id": body["restaurant_id"],
            "table_id": data.get("table_id"),
            "at": body["occurred_at"],
            "event": body,
        }
        # One start and one stop per bill: a POS order.paid, a Stripe payment and a paid
        # invoice for the same order are three events but one stopped clock, so the key
        # is the order's. Whichever arrives first settles it.
        started = f"time_to_pay.started:{body['restaurant_id']}:{order_id}:1"
        if kind == "order.bill_requested":
            return [Planned(started, "time_to_pay.started", clock, str(event["id"]))]
        # A payment for a bill never requested (a takeaway paid at the counter) started no
        # clock, so there is nothing to stop: the stop waits on its start.
        return [
            Planned(
                f"time_to_pay.stopped:{body['restaurant_id']}:{order_id}:1",
                "time_to_pay.stopped",
                clock,
                str(event["id"]),
                requires=started,
            )
        ]
