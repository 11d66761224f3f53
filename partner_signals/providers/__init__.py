"""Inbound webhook providers: each one's signature scheme and event id/type in one module.

A provider module exposes one `Provider` instance. Status words and event names are
translated downstream, in that provider's dbt staging model.
"""

from __future__ import annotations

from partner_signals.providers.base import (
    Credentials,
    MalformedEvent,
    Provider,
    SignatureError,
)
from partner_signals.providers.delivery import CAREEM, DELIVEROO, JAHEZ, TALABAT
from partner_signals.providers.paypal import PAYPAL
from partner_signals.providers.stripe import STRIPE

PROVIDERS: dict[str, Provider] = {
    p.name: p for p in (STRIPE, PAYPAL, CAREEM, TALABAT, DELIVEROO, JAHEZ)
}

__all__ = ["PROVIDERS", "Credentials", "MalformedEvent", "Provider", "SignatureError"]
