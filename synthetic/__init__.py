"""Test and demo data: synthetic service days as a POS, Stripe, PayPal and delivery platforms
would send them. Above the core: it imports `partner_signals`, which never imports it."""

from __future__ import annotations

from synthetic.day import (
    CURRENCY_DECIMALS,
    DELIVERY_PLATFORMS,
    DEMO_RESTAURANTS,
    ID_PATTERN,
    LUNCH_AND_DINNER,
    Course,
    Delivery,
    MenuItem,
    RestaurantSpec,
    service_day,
    signed_headers,
    to_pos_ndjson,
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
