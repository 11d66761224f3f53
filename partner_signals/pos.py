"""The POS event format: the restaurant platform's own order and table events.

One event is `{"event_id", "type", "occurred_at", "restaurant_id", "order_id",
"table_id", "data"}`. Unknown fields are kept in the raw body; unknown types are landed,
left out of the signals and counted in marts.unmapped_events. The JSON Schema published
for senders is generated from `PosEvent` (see `pos_event_schema`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]

ORDER_TYPES = frozenset(
    {
        "order.created",
        "order.item_added",
        "order.item_fired",
        "order.item_ready",
        "order.item_served",
        "order.bill_requested",
        "order.paid",
        "order.cancelled",
    }
)
ITEM_TYPES = frozenset(
    {"order.item_added", "order.item_fired", "order.item_ready", "order.item_served"}
)
TABLE_TYPES = frozenset({"table.seated", "table.cleared"})
KNOWN_TYPES = ORDER_TYPES | TABLE_TYPES


class PosEventData(BaseModel):
    """Type-specific fields; which are required depends on the event type. Numbers are
    checked as floats (fast); the verbatim body keeps their exact decimal text."""

    model_config = ConfigDict(extra="allow")

    covers: Annotated[int, Field(ge=0, le=10_000)] | None = None
    channel: Literal["dine_in", "takeaway", "delivery"] | None = None
    line_id: Id | None = None
    item_id: Id | None = None
    item_name: Annotated[str, StringConstraints(max_length=256)] | None = None
    quantity: Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)] | None = None
    unit_price: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")] | None = None
    payment_ref: Annotated[str, StringConstraints(max_length=256)] | None = None


class PosEvent(BaseModel):
    """One POS event. `occurred_at` must carry a UTC offset."""

    model_config = ConfigDict(extra="allow", title="POS event")

    event_id: Id = Field(description="The POS's own id; a resend with the same id is a duplicate.")
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="e.g. table.seated, order.created, order.item_fired, order.paid"
    )
    occurred_at: AwareDatetime = Field(description="ISO 8601 with offset")
    restaurant_id: Id
    order_id: Id | None = Field(default=None, description="Required for order.* events")
    table_id: Id | None = Field(
        default=None, description="Required for table.* events and dine-in orders"
    )
    data: PosEventData = Field(default_factory=PosEventData)

    @model_validator(mode="after")
    def _type_requirements(self) -> PosEvent:
        t = self.type
        if t in ORDER_TYPES and self.order_id is None:
            raise ValueError(f"{t} needs order_id")
        if t in TABLE_TYPES and self.table_id is None:
            raise ValueError(f"{t} needs table_id")
        if t == "order.created" and self.data.channel == "dine_in" and self.table_id is None:
            raise ValueError("a dine_in order.created needs table_id")
        if t in ITEM_TYPES and (self.data.line_id is None or self.data.item_id is None):
            raise ValueError(f"{t} needs data.line_id and data.item_id")
        if t == "order.paid" and self.data.amount is None:
            raise ValueError("order.paid needs data.amount")
        return self


class InvalidPosEvent(ValueError):
    """A POS event that fails the format; `message` names the field."""


def parse_pos_event(raw: bytes | str) -> PosEvent:
    """Validate one JSON-encoded POS event, or raise InvalidPosEvent with a clear message."""
    try:
        # orjson refuses what PostgreSQL's jsonb cannot hold anywhere in the body (numbers
        # that overflow a double, for one), which the model alone would let through in
        # unknown fields; the raw body must stay castable for every downstream model.
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidPosEvent(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidPosEvent("an event is a JSON object")
    try:
        return PosEvent.model_validate(document)
    except ValidationError as exc:
        raise InvalidPosEvent(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """The first few problems of a validation error, one line, field names first."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def pos_event_schema() -> dict[str, Any]:
    schema = PosEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "partner-signals/pos-event/v1"
    return schema
