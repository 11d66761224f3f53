"""Test and demo data: synthetic service days as a POS, Stripe, PayPal and delivery platforms
would send them. Above the core: it imports `partner_signals`, which never imports it.

`restaurants` (who is simulated, their menus), `day` (the day's timeline and the senders'
habits), then one module per source's bodies: `pos`, `stripe`, `paypal`, and `platforms`
(the delivery platforms, one table of payload shapes and one builder).
"""

from __future__ import annotations

from synthetic.day import Delivery, service_day, signed_headers
from synthetic.platforms import DELIVERY_PLATFORMS
from synthetic.pos import to_pos_ndjson
from synthetic.restaurants import (
    CURRENCY_DECIMALS,
    DEMO_RESTAURANTS,
    ID_PATTERN,
    LUNCH_AND_DINNER,
    Course,
    MenuItem,
    RestaurantSpec,
)

__all__ = [
    "CURRENCY_DECIMALS",
    "DELIVERY_PLATFORMS",
    "DEMO_RESTAURANTS",
    "ID_PATTERN",
    "LUNCH_AND_DINNER",
    "Course",
    "Delivery",
    "MenuItem",
    "RestaurantSpec",
    "service_day",
    "signed_headers",
    "to_pos_ndjson",
]
