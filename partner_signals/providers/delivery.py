"""The delivery platforms' signature schemes: HMAC-SHA256 of the body, and Deliveroo's.

Deliveroo publishes its scheme (HMAC-SHA256 of "<sequence guid> <body>"); Careem, Talabat
and Jahez publish nothing more specific, so they sign the raw body with HMAC-SHA256 and
send the hex digest in one header (their catalogue entries name the header). Where each
platform puts its event id and type is its catalogue entry, not code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from partner_signals.providers.base import (
    Credentials,
    SignatureError,
    any_signature_matches,
    hmac_sha256_hex,
)


@dataclass(frozen=True)
class BodyHmacScheme:
    """Scheme `body_hmac_sha256_hex`: HMAC-SHA256 of the raw body, hex, in one header."""

    signature_header: str

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None:
        given = headers.get(self.signature_header)
        if not given:
            raise SignatureError(f"missing {self.signature_header} header")
        expected = [hmac_sha256_hex(secret, body) for secret in creds.secrets]
        if not any_signature_matches(expected, given.removeprefix("sha256=")):
            raise SignatureError(f"{self.signature_header} does not match")

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        return {self.signature_header: hmac_sha256_hex(secret, body)}


@dataclass(frozen=True)
class DeliverooScheme:
    """Scheme `deliveroo`: X-Deliveroo-Hmac-Sha256 = hex HMAC-SHA256(secret, guid + " " +
    body); the X-Deliveroo-Sequence-Guid is unique per event (the catalogue names it as
    the event id)."""

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None:
        guid = headers.get("x-deliveroo-sequence-guid")
        given = headers.get("x-deliveroo-hmac-sha256")
        if not guid or not given:
            raise SignatureError("missing X-Deliveroo-Sequence-Guid or X-Deliveroo-Hmac-Sha256")
        message = guid.encode() + b" " + body
        expected = [hmac_sha256_hex(secret, message) for secret in creds.secrets]
        if not any_signature_matches(expected, given):
            raise SignatureError("X-Deliveroo-Hmac-Sha256 does not match")

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        if not event_id:
            raise ValueError("Deliveroo signs with the event's sequence guid")
        return {
            "X-Deliveroo-Sequence-Guid": event_id,
            "X-Deliveroo-Hmac-Sha256": hmac_sha256_hex(secret, event_id.encode() + b" " + body),
        }
