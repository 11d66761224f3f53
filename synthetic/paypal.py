"""PayPal's webhooks for a payment: a completed capture and now and then its refund."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Final

import orjson

from synthetic import pos
from synthetic.restaurants import lines_total

if TYPE_CHECKING:
    from synthetic.day import RestaurantDay
    from synthetic.restaurants import Lines

_UPPER_ALNUM: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MINUTE: Final = 60.0


def pay(
    day: RestaurantDay, order_id: str, table_id: str | None, paid: float, lines: Lines
) -> float:
    """A PayPal payment captured at `paid`; returns when the POS recorded it."""
    rng = day.rng
    total = lines_total(lines)
    capture = _paypal_id(rng)
    resource = {
        "id": capture,
        "status": "COMPLETED",
        "amount": {"currency_code": day.currency, "value": day.money(total)},
        "custom_id": f"{day.restaurant_id}:{order_id}",
        "invoice_id": order_id,
        "final_capture": True,
        "create_time": day.utc(paid),
        "update_time": day.utc(paid),
    }
    _send(day, paid + 1, "PAYMENT.CAPTURE.COMPLETED", "capture", resource)
    pos_paid = paid + rng.uniform(0.5, 4)
    pos.send_paid(day, pos_paid, order_id, table_id, total, capture, "paypal")
    if rng.random() < 0.02:
        refunded_at = paid + rng.uniform(10, 90) * _MINUTE
        refund = {
            "id": _paypal_id(rng),
            "status": "COMPLETED",
            "amount": {"currency_code": day.currency, "value": day.money(total)},
            "custom_id": f"{day.restaurant_id}:{order_id}",
            "invoice_id": order_id,
            "create_time": day.utc(refunded_at),
            "update_time": day.utc(refunded_at),
            "links": [
                {
                    "rel": "up",
                    "href": f"https://api.paypal.com/v2/payments/captures/{capture}",
                }
            ],
        }
        _send(day, refunded_at + 1, "PAYMENT.CAPTURE.REFUNDED", "refund", refund)
    return pos_paid


def _send(
    day: RestaurantDay, t: float, event_type: str, resource_type: str, resource: dict[str, Any]
) -> None:
    t = float(int(t))
    event_id = f"WH-{_paypal_id(day.rng)}-{_paypal_id(day.rng)}"
    body = {
        "id": event_id,
        "event_version": "1.0",
        "create_time": day.utc(t),
        "resource_type": resource_type,
        "event_type": event_type,
        "resource": resource,
    }
    day.emit("paypal", event_id, event_type, t, orjson.dumps(body))


def _paypal_id(rng: random.Random) -> str:
    return "".join(rng.choices(_UPPER_ALNUM, k=17))
