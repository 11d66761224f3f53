"""The canonical event envelope every source is translated into (schema version 1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

CanonicalType = Literal[
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
]

CANONICAL_TYPES: tuple[str, ...] = CanonicalType.__args__  # type: ignore[attr-defined]

DELIVERY_STATUSES = (
    "received",
    "accepted",
    "rejected",
    "preparing",
    "ready",
    "picked_up",
    "delivered",
    "cancelled",
)


class CanonicalEvent(BaseModel):
    """One event in the partner-facing envelope, whatever its source."""

    model_config = ConfigDict(title="Canonical event", extra="forbid")

    id: str = Field(description="Stable id: the same source event always has the same id")
    type: CanonicalType
    schema_version: int = Field(SCHEMA_VERSION, description="Version of this envelope")
    occurred_at: datetime = Field(description="When it happened, per the source")
    received_at: datetime = Field(description="When partner-signals received it")
    source: str = Field(description="pos, stripe, paypal, careem, talabat, deliveroo or jahez")
    company_id: str
    restaurant_id: str
    order_id: str | None = None
    data: dict[str, Any] = Field(
        default_factory=dict, description="Type-specific fields, typed and translated"
    )


def canonical_event_schema() -> dict[str, Any]:
    schema = CanonicalEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"partner-signals/canonical-event/v{SCHEMA_VERSION}"
    return schema
