"""Stripe's webhooks: intents linked to POS orders, failed cards retried, some refunded."""

from __future__ import annotations

from synthetic import Delivery
from tests.synthetic.days import SPECS, minor, pos_events, webhooks


def test_stripe_payments_link_to_pos_orders(calm_day: list[Delivery]) -> None:
    events = pos_events(calm_day)
    created = {e["order_id"]: e for e in events if e["type"] == "order.created"}
    paid_by_ref = {
        e["data"]["payment_ref"]: e
        for e in events
        if e["type"] == "order.paid" and "payment_ref" in e["data"]
    }
    intents = [p for p in webhooks(calm_day, "stripe") if p["type"] == "payment_intent.succeeded"]
    assert len(intents) > 100
    for payload in intents:
        intent = payload["data"]["object"]
        meta = intent["metadata"]
        order = created[meta["order_id"]]
        assert order["restaurant_id"] == meta["restaurant_id"]
        assert order.get("table_id") == meta.get("table_id")
        pos_paid = paid_by_ref[intent["id"]]
        assert pos_paid["order_id"] == meta["order_id"]
        currency = SPECS[meta["restaurant_id"]].currency
        assert intent["currency"] == currency.lower()
        assert intent["amount"] == minor(pos_paid["data"]["amount"], currency)
    kwd = [p for p in intents if p["data"]["object"]["currency"] == "kwd"]
    assert kwd
    assert all(p["data"]["object"]["amount"] % 10 == 0 for p in kwd)


def test_failed_card_payments_are_retried_and_some_are_refunded(calm_day: list[Delivery]) -> None:
    stripe = webhooks(calm_day, "stripe")
    failed = {p["data"]["object"]["id"] for p in stripe if p["type"].endswith("payment_failed")}
    succeeded = {p["data"]["object"]["id"] for p in stripe if p["type"].endswith("succeeded")}
    assert failed
    assert failed <= succeeded
    refunds = [p["data"]["object"] for p in stripe if p["type"] == "charge.refunded"]
    assert refunds
    assert all(r["payment_intent"] in succeeded for r in refunds)
