"""The synthetic day the tests look at, and small readers of what it sent."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from synthetic import CURRENCY_DECIMALS, WORLD, Delivery

DAY = date(2026, 11, 23)
SEED = 7
SPECS = {spec.restaurant_id: spec for spec in WORLD}
# 18:45 UTC: dinner is on from London (18:45) to Dubai (22:45), lunch in New York.
MID_DINNER = datetime(2026, 11, 23, 18, 45, tzinfo=UTC)


def pos_events(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    """Each POS event once, by its event id, in the order it occurred."""
    events: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        if d.source == "pos":
            # Money is a JSON number written with its decimals: read it as a Decimal.
            events.setdefault(d.event_id, json.loads(d.body, parse_float=Decimal))
    return sorted(events.values(), key=lambda e: datetime.fromisoformat(e["occurred_at"]))


def webhooks(deliveries: list[Delivery], source: str) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        if d.source == source:
            seen.setdefault(d.event_id, orjson.loads(d.body))
    return list(seen.values())


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def minor(amount: str, currency: str) -> int:
    value = Decimal(amount) * 10 ** CURRENCY_DECIMALS[currency]
    assert value == value.to_integral_value()
    return int(value)
