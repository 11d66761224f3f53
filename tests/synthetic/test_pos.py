"""The POS's events: valid against its schema, summing to what was paid, batched as NDJSON."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from partner_signals.pos import parse_pos_event
from synthetic import Delivery, to_pos_ndjson
from tests.synthetic.days import SPECS, pos_events


def test_every_pos_body_is_a_valid_pos_event(day: list[Delivery]) -> None:
    for d in day:
        if d.source != "pos":
            continue
        event = parse_pos_event(d.body)
        assert (event.event_id, event.type) == (d.event_id, d.event_type)
        assert event.restaurant_id == d.restaurant_id
        assert event.occurred_at == d.occurred_at
        assert d.company_id == SPECS[d.restaurant_id].company_id


def test_paid_amount_is_the_sum_of_the_lines(calm_day: list[Delivery]) -> None:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    paid = 0
    for e in pos_events(calm_day):
        if e["type"] == "order.item_added":
            totals[e["order_id"]] += Decimal(e["data"]["quantity"]) * Decimal(
                e["data"]["unit_price"]
            )
        elif e["type"] == "order.paid":
            spec = SPECS[e["restaurant_id"]]
            assert Decimal(e["data"]["amount"]) == totals[e["order_id"]]
            assert e["data"]["currency"] == spec.currency
            assert len(str(e["data"]["amount"]).split(".")[1]) == spec.decimals
            paid += 1
    assert paid > 200


def test_pos_ndjson_is_one_pos_event_a_line(day: list[Delivery]) -> None:
    batch = to_pos_ndjson(day)
    lines = batch.splitlines()
    assert len(lines) == sum(1 for d in day if d.source == "pos")
    assert batch.endswith(b"\n")
    for line in lines[:200]:
        parse_pos_event(line)
    assert to_pos_ndjson([d for d in day if d.source != "pos"]) == b""
