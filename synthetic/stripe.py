"""Stripe's webhooks for a card payment: a PaymentIntent that may fail once, then succeeds,
and now and then a refund of its charge."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Final

import orjson

from synthetic import pos
from synthetic.restaurants import lines_total

if TYPE_CHECKING:
    from synthetic.day import RestaurantDay
    from synthetic.restaurants import Lines

API_VERSION: Final = "2024-06-20"
_ALNUM: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MINUTE: Final = 60.0


def pay(
    day: RestaurantDay,
    order_id: str,
    table_id: str | None,
    started: float,
    paid: float,
    lines: Lines,
) -> float:
    """A card payment for a bill started at `started`; returns when the POS recorded it."""
    rng = day.rng
    intent = "pi_" + _stripe_id(rng)
    metadata = {"restaurant_id": day.restaurant_id, "order_id": order_id}
    if table_id is not None:
        metadata["table_id"] = table_id
    total = lines_total(lines)
    if rng.random() < 0.05:
        failed = {
            **_intent(day, intent, total, started, metadata, "requires_payment_method"),
            "last_payment_error": {
                "code": "card_declined",
                "decline_code": rng.choice(["insufficient_funds", "do_not_honor", "expired_card"]),
                "type": "card_error",
            },
        }
        _send(day, paid, "payment_intent.payment_failed", failed)
        paid += rng.uniform(40, 150)  # the guest finds another card
    charge = "ch_" + _stripe_id(rng)
    succeeded = _intent(day, intent, total, started, metadata, "succeeded")
    succeeded["latest_charge"] = charge
    _send(day, paid, "payment_intent.succeeded", succeeded)
    pos_paid = paid + rng.uniform(0.5, 4)
    pos.send_paid(day, pos_paid, order_id, table_id, total, intent, "card")
    if rng.random() < 0.02:
        refunded = total if rng.random() < 0.6 else rng.choice(lines)[0].price_minor
        refund = {
            "id": charge,
            "object": "charge",
            "amount": total,
            "amount_captured": total,
            "amount_refunded": refunded,
            "currency": day.currency.lower(),
            "payment_intent": intent,
            "refunded": refunded == total,
            "status": "succeeded",
            "created": int(paid),
            "metadata": metadata,
        }
        _send(day, paid + rng.uniform(10, 90) * _MINUTE, "charge.refunded", refund)
    return pos_paid


def _intent(
    day: RestaurantDay,
    intent: str,
    amount: int,
    started: float,
    metadata: dict[str, str],
    status: str,
) -> dict[str, Any]:
    return {
        "id": intent,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": day.currency.lower(),
        "status": status,
        "created": int(started),
        "payment_method_types": ["card"],
        "metadata": metadata,
    }


def _send(day: RestaurantDay, t: float, event_type: str, obj: dict[str, Any]) -> None:
    t = float(int(t))  # Stripe's clock has whole seconds
    event_id = "evt_" + _stripe_id(day.rng)
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(t),
        "livemode": False,
        "api_version": API_VERSION,
        "pending_webhooks": 1,
        "data": {"object": obj},
    }
    day.emit("stripe", event_id, event_type, t, orjson.dumps(body))


def _stripe_id(rng: random.Random) -> str:
    return "".join(rng.choices(_ALNUM, k=24))
