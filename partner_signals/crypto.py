"""Secrets at rest: AES-256-GCM for credentials, SHA-256 digests for API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
VERSION = b"\x01"


class DecryptionError(Exception):
    """The ciphertext was not made with this key and context."""


def encrypt_json(key: bytes, value: dict[str, Any], *, context: str) -> bytes:
    """Seal a JSON object. `context` (e.g. "acme/stripe") is bound as associated data,
    so a ciphertext copied onto another integration row fails to open."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(value), context.encode())
    return VERSION + nonce + sealed


def decrypt_json(key: bytes, blob: bytes, *, context: str) -> dict[str, Any]:
    if not blob or blob[:1] != VERSION:
        raise DecryptionError("unknown ciphertext version")
    nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, context.encode())
    except Exception as exc:  # cryptography raises InvalidTag
        raise DecryptionError("credentials do not open with this key") from exc
    value: dict[str, Any] = orjson.loads(plain)
    return value


def new_api_key(prefix: str) -> str:
    """A fresh bearer key: a readable prefix and 256 bits of randomness."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> bytes:
    # Keys carry 256 bits of entropy, so a fast digest is safe and lets ingest check
    # them per request; the plain key is never stored.
    return hashlib.sha256(key.encode()).digest()


def constant_time_equal(a: bytes | str, b: bytes | str) -> bool:
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)
