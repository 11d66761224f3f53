"""Delivery platforms: Careem, Talabat, Deliveroo and Jahez.

Deliveroo publishes its scheme (HMAC-SHA256 of "<sequence guid> <body>"); the others
publish nothing more specific, so they sign the raw body with HMAC-SHA256 and send the
hex digest in one header. Each platform names its event id and type differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partner_signals.providers.base import (
    Credentials,
    MalformedEvent,
    SignatureError,
    any_signature_matches,
    hmac_sha256_hex,
    require_str,
)


@dataclass(frozen=True)
class BodyHmacProvider:
    """HMAC-SHA256 of the raw body, hex, in `signature_header`."""

    name: str
    signature_header: str
    id_field: tuple[str, ...]
    type_field: tuple[str, ...]

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None:
        given = headers.get(self.signature_header)
        if not given:
            raise SignatureError(f"missing {self.signature_header} header")
        expected = [hmac_sha256_hex(secret, body) for secret in creds.secrets]
        if not any_signature_matches(expected, given.removeprefix("sha256=")):
            raise SignatureError(f"{self.signature_header} does not match")

    def identify(self, payload: Any, headers: Mapping[str, str]) -> tuple[str, str]:
        return require_str(payload, *self.id_field), require_str(payload, *self.type_field)

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        return {self.signature_header: hmac_sha256_hex(secret, body)}


@dataclass(frozen=True)
class DeliverooProvider:
    """Deliveroo: X-Deliveroo-Hmac-Sha256 = hex HMAC-SHA256(secret, guid + " " + body);
    the X-Deliveroo-Sequence-Guid is unique per event and is its id."""

    name: str = "deliveroo"

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

    def identify(self, payload: Any, headers: Mapping[str, str]) -> tuple[str, str]:
        guid = headers.get("x-deliveroo-sequence-guid", "")
        if not guid or len(guid) > 256:
            raise MalformedEvent("missing X-Deliveroo-Sequence-Guid")
        return guid, require_str(payload, "event")

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        if not event_id:
            raise ValueError("Deliveroo signs with the event's sequence guid")
        return {
            "X-Deliveroo-Sequence-Guid": event_id,
            "X-Deliveroo-Hmac-Sha256": hmac_sha256_hex(secret, event_id.encode() + b" " + body),
        }


CAREEM = BodyHmacProvider(
    name="careem",
    signature_header="x-careem-signature",
    id_field=("event_id",),
    type_field=("event_type",),
)
TALABAT = BodyHmacProvider(
    name="talabat",
    signature_header="x-talabat-signature",
    id_field=("eventId",),
    type_field=("eventType",),
)
JAHEZ = BodyHmacProvider(
    name="jahez",
    signature_header="x-jahez-signature",
    id_field=("event_id",),
    type_field=("event",),
)
DELIVEROO = DeliverooProvider()
