"""PayPal's webhooks and cash: captures linked to the POS orders they paid."""

from __future__ import annotations

from synthetic import Delivery
from tests.synthetic.days import pos_events, webhooks


def test_paypal_and_cash_payments(calm_day: list[Delivery]) -> None:
    events = pos_events(calm_day)
    paid = {e["order_id"]: e for e in events if e["type"] == "order.paid"}
    captures = [
        p for p in webhooks(calm_day, "paypal") if p["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
    ]
    assert captures
    for payload in captures:
        resource = payload["resource"]
        restaurant_id, order_id = resource["custom_id"].split(":", 1)
        assert paid[order_id]["restaurant_id"] == restaurant_id
        assert paid[order_id]["data"]["payment_ref"] == resource["id"]
        assert resource["amount"]["value"] == str(paid[order_id]["data"]["amount"])
    assert any("payment_ref" not in e["data"] for e in paid.values())
