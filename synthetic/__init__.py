"""Test and demo data: synthetic service days as a POS, Stripe, PayPal and delivery platforms
would send them. Above the core: it imports `partner_signals`, which never imports it.

`restaurants` (who is simulated, their menus, when they serve), `day` (the day's timeline
and the senders' habits), then one module per source's bodies: `pos`, `stripe`, `paypal`,
and `platforms` (the delivery platforms, shaped by the source catalogue).
"""

from __future__ import annotations

from synthetic.day import Delivery, service_day, service_days_until, signed_headers
from synthetic.platforms import DELIVERY_PLATFORMS, DIRECT_PLATFORMS
from synthetic.pos import to_pos_ndjson
from synthetic.restaurants import (
    AROUND_THE_CLOCK,
    CURRENCY_DECIMALS,
    DEMO_RESTAURANTS,
    ID_PATTERN,
    LUNCH_AND_DINNER,
    WORLD,
    Course,
    MenuItem,
    RestaurantSpec,
    in_service,
    serving,
)

__all__ = [
    "AROUND_THE_CLOCK",
    "CURRENCY_DECIMALS",
    "DELIVERY_PLATFORMS",
    "DEMO_RESTAURANTS",
    "DIRECT_PLATFORMS",
    "ID_PATTERN",
    "LUNCH_AND_DINNER",
    "WORLD",
    "Course",
    "Delivery",
    "MenuItem",
    "RestaurantSpec",
    "in_service",
    "service_day",
    "service_days_until",
    "serving",
    "signed_headers",
    "to_pos_ndjson",
]
