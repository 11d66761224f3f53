"""Workforce (Nory-class) and CRM (SevenRooms-class) adapters: JSON pushes with a bearer key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from partner_signals.adapters.base import (
    Adapter,
    CredentialError,
    Message,
    Outgoing,
    Planned,
    Target,
    dumps,
    envelope,
    require_url,
)
from partner_signals.catalogue import signals as catalogue


class JsonPushAdapter(Adapter):
    """POST {url} a JSON message with `Authorization: Bearer <api_key>` and an
    `Idempotency-Key` header, the common shape of workforce and CRM partner APIs."""

    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    def validate(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        super().validate(config, secrets)
        require_url(config)
        if len(str(secrets["api_key"])) < 16:
            raise CredentialError(f"{self.name} api_key is too short to be a real key")

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
        {"table.seated", "table.cleared", "order.bill_requested", "order.paid", "payment.succeeded"}
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
        # One start and one stop per bill: a POS order.paid and a Stripe payment for the
        # same order are two events but one stopped clock, so the key is the order's.
        if kind == "order.bill_requested":
            return [
                Planned(
                    f"time_to_pay.started:{body['restaurant_id']}:{order_id}:1",
                    "time_to_pay.started",
                    clock,
                    str(event["id"]),
                )
            ]
        return [
            Planned(
                f"time_to_pay.stopped:{body['restaurant_id']}:{order_id}:1",
                "time_to_pay.stopped",
                clock,
                str(event["id"]),
            )
        ]
