"""PayPal: RSA-SHA256 over "transmission_id|transmission_time|webhook_id|crc32(body)".

The signing certificate is configured per company (never downloaded from the
PAYPAL-CERT-URL header), together with the webhook id PayPal assigned.
"""

from __future__ import annotations

import base64
import binascii
import uuid
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from partner_signals.providers.base import Credentials, SignatureError


@lru_cache(maxsize=256)
def _public_key(pem: str) -> rsa.RSAPublicKey:
    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("PayPal certificates carry RSA keys")
    return key


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


class PayPalScheme:
    """Scheme `paypal`."""

    def __init__(self, tolerance: int = 300) -> None:
        self.tolerance = tolerance

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None:
        tid = headers.get("paypal-transmission-id")
        ttime = headers.get("paypal-transmission-time")
        sig = headers.get("paypal-transmission-sig")
        algo = headers.get("paypal-auth-algo", "SHA256withRSA")
        if not (tid and ttime and sig):
            raise SignatureError("missing PAYPAL-TRANSMISSION-ID, -TIME or -SIG header")
        if algo != "SHA256withRSA":
            raise SignatureError(f"unsupported PAYPAL-AUTH-ALGO {algo[:40]!r}")
        try:
            sent = datetime.fromisoformat(ttime.replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise SignatureError("PAYPAL-TRANSMISSION-TIME is not a timestamp") from exc
        if abs(now - sent) > self.tolerance:
            raise SignatureError(f"transmission time outside the {self.tolerance} s tolerance")
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError("PAYPAL-TRANSMISSION-SIG is not base64") from exc
        webhook_id = str(creds.config.get("webhook_id", ""))
        pems = creds.config.get("certificates") or []
        message = signed_message(tid, ttime, webhook_id, body)
        for pem in pems:
            try:
                _public_key(pem).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            except (InvalidSignature, ValueError):
                continue
            return
        raise SignatureError("PAYPAL-TRANSMISSION-SIG does not verify")

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        """Sign as PayPal does; `secret` is a PEM private key and `event_id` the
        webhook id this company's certificate was configured with."""
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(secret.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("PayPal signs with RSA keys")
        tid = uuid.uuid4().hex
        ttime = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = key.sign(
            signed_message(tid, ttime, event_id, body), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "PAYPAL-TRANSMISSION-ID": tid,
            "PAYPAL-TRANSMISSION-TIME": ttime,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(sig).decode(),
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/CERT-configured",
        }


def make_test_certificate(common_name: str = "partner-signals test") -> tuple[str, str]:
    """(certificate PEM, private key PEM): a self-signed pair standing in for PayPal's
    in tests and the demo, since nothing may be downloaded."""
    from datetime import timedelta

    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


PAYPAL = PayPalScheme()
