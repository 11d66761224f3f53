"""The POS event format: the restaurant platform's own order and table events.

One event is `{"event_id", "type", "occurred_at", "restaurant_id", "order_id",
"table_id", "data"}`. Unknown fields are kept in the raw body; unknown types are landed,
left out of the signals and counted in marts.unmapped_events. The JSON Schema published
for senders is generated from `PosEvent` (see `pos_event_schema`).

The format is strict about the kind of each value, because the signals read the
verbatim body: a count is a JSON integer, money and quantities are JSON numbers (never
strings or booleans), `occurred_at` is ISO 8601 text with a UTC offset inside a sane
window, and ids are Unicode NFC. Such a value of the wrong kind is refused with 422
naming the field (`InvalidPosEvent.status`); a body that is not an event at all (not
JSON, a required field missing) with 400.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# ISO 8601 extended format with seconds and an offset: what the format documents. Unix
# epochs (numbers or digit strings), offset-less or space-separated times, and years
# outside 0000-9999 all fail it before pydantic's own, more lenient parsing runs.
ISO_WITH_OFFSET: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
# The default window for occurred_at (Settings.occurred_at_earliest and
# occurred_at_max_ahead_seconds configure the one ingest uses).
EARLIEST_OCCURRED_AT: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD: Final = timedelta(days=1)


@dataclass(frozen=True)
class TimeWindow:
    """The occurred_at a POS event may carry: from `earliest` to `latest`, inclusive."""

    earliest: datetime
    latest: datetime

    @classmethod
    def around(
        cls,
        now: datetime,
        *,
        earliest: datetime = EARLIEST_OCCURRED_AT,
        ahead: timedelta = MAX_AHEAD,
    ) -> TimeWindow:
        return cls(earliest=earliest, latest=now + ahead)


def _nfc(value: str) -> str:
    # Two spellings of one visible id would be two orders (or two events) to the signals,
    # which read ids from the verbatim body: refuse rather than rewrite the sender's id.
    if not unicodedata.is_normalized("NFC", value):
        raise PydanticCustomError("id_not_nfc", "must be Unicode NFC (normalise it before sending)")
    return value


def _iso_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "iso_datetime_type",
            "must be ISO 8601 text with a UTC offset, e.g. 2026-11-23T19:04:05+04:00, "
            "not a JSON {kind}",
            {"kind": json_kind(value)},
        )
    if not ISO_WITH_OFFSET.fullmatch(value):
        raise PydanticCustomError(
            "iso_datetime",
            "must be ISO 8601 with seconds and a UTC offset, e.g. 2026-11-23T19:04:05+04:00",
        )
    return value


def json_kind(value: Any) -> str:
    """The JSON type of a parsed value, as a sender would name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


Id = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_nfc)]
# Counts are JSON integers, money and quantities JSON numbers: "2", true or 2.5 covers,
# and "1_000" as an amount, are refused (they would otherwise turn into null or a
# different number in the signals, which read the verbatim body).
Count = Annotated[int, Strict(), Field(ge=0, le=10_000)]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]

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
        # The restaurant turned a delivery platform's order down (docs/platforms.md).
        "order.rejected",
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

    covers: Count | None = None
    channel: Literal["dine_in", "takeaway", "delivery"] | None = None
    line_id: Id | None = None
    item_id: Id | None = None
    item_name: Annotated[str, StringConstraints(max_length=256)] | None = None
    quantity: Annotated[Number, Field(gt=0, le=10_000)] | None = None
    unit_price: Annotated[Number, Field(ge=0)] | None = None
    amount: Annotated[Number, Field(ge=0)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")] | None = None
    payment_ref: Annotated[str, StringConstraints(max_length=256)] | None = None
    # A delivery order names the platform it came from and that platform's order id; the
    # POS's progress on it then goes back to the platform (docs/platforms.md).
    platform: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    platform_order_id: Id | None = None
    reason: Annotated[str, StringConstraints(max_length=256)] | None = None


class PosEvent(BaseModel):
    """One POS event. `occurred_at` must carry a UTC offset."""

    model_config = ConfigDict(extra="allow", title="POS event")

    event_id: Id = Field(description="The POS's own id; a resend with the same id is a duplicate.")
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="e.g. table.seated, order.created, order.item_fired, order.paid"
    )
    occurred_at: Annotated[AwareDatetime, BeforeValidator(_iso_text)] = Field(
        description="ISO 8601 with seconds and a UTC offset, from 2000-01-01 to a day ahead"
    )
    restaurant_id: Id
    order_id: Id | None = Field(default=None, description="Required for order.* events")
    table_id: Id | None = Field(
        default=None, description="Required for table.* events and dine-in orders"
    )
    data: PosEventData = Field(default_factory=PosEventData)

    @field_validator("occurred_at")
    @classmethod
    def _in_window(cls, value: datetime, info: ValidationInfo) -> datetime:
        window = info.context if isinstance(info.context, TimeWindow) else None
        window = window or TimeWindow.around(datetime.now(UTC))
        if not window.earliest <= value <= window.latest:
            raise PydanticCustomError(
                "occurred_at_range",
                "must be from {earliest} to {latest} (now + the allowed clock skew)",
                {
                    "earliest": window.earliest.isoformat(),
                    "latest": window.latest.isoformat(timespec="seconds"),
                },
            )
        return value

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
        if (self.data.platform is None) != (self.data.platform_order_id is None):
            raise ValueError("data.platform and data.platform_order_id go together")
        return self


class InvalidPosEvent(ValueError):
    """A POS event that fails the format; the message names the field. `status` is 400
    when it is not an event (not JSON, not an object, a required field missing) and 422
    when a field holds a value of the wrong kind or out of range."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_pos_event(raw: bytes | str, window: TimeWindow | None = None) -> PosEvent:
    """Validate one JSON-encoded POS event, or raise InvalidPosEvent with a clear message.
    `window` bounds occurred_at (default: 2000-01-01 to a day from now)."""
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
        return PosEvent.model_validate(document, context=window)
    except ValidationError as exc:
        raise InvalidPosEvent(describe(exc), status_of(exc)) from None


# pydantic's words for a value of the wrong JSON type, said the way a sender reads them.
_KIND_WANTED: Final = {
    "int_type": "a JSON integer",
    "int_from_float": "a JSON integer",
    "float_type": "a JSON number",
    "string_type": "a JSON string",
    "bool_type": "a JSON boolean",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "dict_type": "a JSON object",
}


def describe(exc: ValidationError) -> str:
    """The first few problems of a validation error, one line, field names first."""
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "event"
        wanted = _KIND_WANTED.get(err["type"])
        if wanted:
            given = err.get("input")
            kind = f"{given!r}" if json_kind(given) == "number" else f"a JSON {json_kind(given)}"
            parts.append(f"{loc}: must be {wanted}, not {kind}")
        else:
            parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def status_of(exc: ValidationError) -> int:
    """400 when the body is not an event (a required field missing, or one an event type
    requires, which the model checks as a whole); 422 when every problem is a field
    holding a value of the wrong kind or out of range."""
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] == "missing" or not err["loc"]:
            return 400
    return 422


def pos_event_schema() -> dict[str, Any]:
    schema = PosEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "partner-signals/pos-event/v1"
    return schema
