"""The POS's order events: the body it posts for each order mutation, and its NDJSON batch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from synthetic.day import Delivery, RestaurantDay
    from synthetic.restaurants import MenuItem


def to_pos_ndjson(deliveries: Iterable[Delivery]) -> bytes:
    """The POS deliveries as one NDJSON batch (redeliveries included, as sent)."""
    lines = [d.body for d in deliveries if d.source == "pos"]
    return b"\n".join(lines) + b"\n" if lines else b""


def send(
    day: RestaurantDay,
    t: float,
    event_type: str,
    order_id: str | None,
    table_id: str | None,
    data: dict[str, Any],
) -> None:
    """Send one POS event (partner_signals/pos.py is its schema)."""
    t = round(t, 3)  # the body carries milliseconds; occurred_at must agree with it
    event_id = day.uuid()
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": day.local(t, "milliseconds"),
        "restaurant_id": day.restaurant_id,
    }
    if order_id is not None:
        event["order_id"] = order_id
    if table_id is not None:
        event["table_id"] = table_id
    event["data"] = data
    day.emit("pos", event_id, event_type, t, orjson.dumps(event))


def send_paid(
    day: RestaurantDay,
    t: float,
    order_id: str,
    table_id: str | None,
    total: int,
    payment_ref: str | None,
    method: str,
) -> None:
    """The POS records an order paid; `payment_ref` links it to the provider's payment."""
    data: dict[str, Any] = {"amount": money(day, total), "currency": day.currency}
    if payment_ref is not None:
        data["payment_ref"] = payment_ref
    data["method"] = method
    send(day, t, "order.paid", order_id, table_id, data)


def money(day: RestaurantDay, minor: int) -> orjson.Fragment:
    """An amount as a JSON number written as the currency writes it (58.00, 1.250): the
    POS format takes money as JSON numbers only, and the text keeps its decimals."""
    return orjson.Fragment(day.money(minor).encode())


def line(day: RestaurantDay, item: MenuItem, quantity: int, n: int) -> dict[str, Any]:
    """The data of an order line's events (added, fired, ready, served)."""
    return {
        "line_id": f"l{n}",
        "item_id": item.item_id,
        "item_name": item.name,
        "quantity": quantity,
        "unit_price": money(day, item.price_minor),
    }
