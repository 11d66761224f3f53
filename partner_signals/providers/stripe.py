"""Stripe: `Stripe-Signature` (t=…,v1=…) over "t.body", verified by the stripe library."""

from __future__ import annotations

from collections.abc import Mapping

import stripe

from partner_signals.providers.base import Credentials, SignatureError


class StripeScheme:
    """Scheme `stripe`."""

    def __init__(self, tolerance: int = 300) -> None:
        self.tolerance = tolerance

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None:
        header = headers.get("stripe-signature")
        if not header:
            raise SignatureError("missing Stripe-Signature header")
        verified = False
        for secret in creds.secrets:
            try:
                # The library checks the HMAC (constant time); the tolerance is checked
                # below against our injected clock, in both directions.
                stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None)
            except stripe.SignatureVerificationError:
                continue
            except UnicodeDecodeError as exc:
                raise SignatureError("body is not UTF-8") from exc
            verified = True
            break
        if not verified:
            raise SignatureError("no valid Stripe signature for this company")
        timestamp = _timestamp(header)
        if abs(now - timestamp) > self.tolerance:
            raise SignatureError(f"timestamp outside the {self.tolerance} s tolerance")

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        header = stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret, timestamp=int(now)
        )
        return {"Stripe-Signature": header}


def _timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            try:
                return int(value)
            except ValueError:
                break
    raise SignatureError("Stripe-Signature has no valid timestamp")


STRIPE = StripeScheme()
