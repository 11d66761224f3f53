"""The provider interface: verify the raw body, then name the event it carries."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from partner_signals.catalogue.sources import Locator


class SignatureError(Exception):
    """The request is not provably from the provider (answered 401)."""


class MalformedEvent(Exception):
    """The body is signed but is not an event we can name (answered 400)."""


@dataclass(frozen=True)
class Credentials:
    """What one company configured for one provider. `secrets` holds the current
    signing secret first and, during a rotation, the previous ones after it."""

    secrets: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    # None: every restaurant of the company; else only events for these restaurants.
    restaurants: frozenset[str] | None = None
    # When a previous secret's grace ends (Unix time): whoever keeps these must read
    # them again then, to stop accepting it.
    renew_at: float | None = None


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None:
        """Raise SignatureError unless `body` is signed for these credentials."""

    def identify(self, payload: Any, headers: Mapping[str, str]) -> tuple[str, str]:
        """(event_id, event_type) of a verified, parsed payload; MalformedEvent if absent."""

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        """The headers the real sender would attach (used by the demo, tests and benches).
        For PayPal `secret` is the PEM private key matching the configured certificate."""


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def any_signature_matches(expected: list[str], given: str) -> bool:
    """Constant-time check of one presented signature against every valid secret's."""
    given_b = given.strip().lower().encode()
    matched = False
    for candidate in expected:
        # no short-circuit: each comparison runs whatever the previous one said
        matched |= hmac.compare_digest(candidate.encode(), given_b)
    return matched


def _lookup(payload: Any, path: tuple[str, ...]) -> Any:
    node = payload
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise MalformedEvent(f"missing field {'.'.join(path)}")
        node = node[key]
    return node


# Marks an event id the sender wrote as a JSON integer (see event_id_text).
NUMBER_MARK = "#"


def event_id_text(value: Any, where: str) -> str:
    """A provider's event id as stored and deduplicated on: an id keeps its JSON type, so
    the integer 123 and the string "123" are two events, never one duplicate of the
    other. A string is itself, NFC-normalised (two encodings of one visible id are one
    id); an integer is "#123"; a string that starts with "#" gets one more ("##…"), so no
    string can take an integer's place. Anything else (a float, a boolean, an object) is
    MalformedEvent."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{NUMBER_MARK}{value}"
    elif isinstance(value, str) and value:
        text = unicodedata.normalize("NFC", value)
        if text.startswith(NUMBER_MARK):
            text = NUMBER_MARK + text
    else:
        raise MalformedEvent(f"field {where} must be a non-empty string or an integer")
    if len(text) > 256:
        raise MalformedEvent(f"field {where} is longer than 256 characters")
    return text


def require_str(payload: Any, *path: str) -> str:
    """payload[path...] as a non-empty string, or MalformedEvent naming the field."""
    node = _lookup(payload, path)
    if isinstance(node, int) and not isinstance(node, bool):
        node = str(node)
    if not isinstance(node, str) or not node:
        raise MalformedEvent(f"field {'.'.join(path)} must be a non-empty string")
    if len(node) > 256:
        raise MalformedEvent(f"field {'.'.join(path)} is longer than 256 characters")
    return node


class SignatureScheme(Protocol):
    """How one provider proves a request is theirs (named by its catalogue entry)."""

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None: ...

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]: ...


def locate(locator: Locator, payload: Any, headers: Mapping[str, str]) -> str:
    """The value a catalogue locator points at, as a non-empty string (MalformedEvent if
    absent). A hash_of locator is a stable id for a sender that carries none: SHA-256 over
    the identifying fields (NFC-normalised), so the same update sent twice gets the same
    id."""
    if locator.header:
        value = headers.get(locator.header, "")
        if not value or len(value) > 256:
            raise MalformedEvent(f"missing {locator.header} header")
        return value
    if locator.hash_of:
        parts = [
            unicodedata.normalize("NFC", require_str(payload, *path)) for path in locator.hash_of
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return require_str(payload, *locator.json)


def locate_event_id(locator: Locator, payload: Any, headers: Mapping[str, str]) -> str:
    """The event id a catalogue locator points at, typed (see event_id_text)."""
    if locator.json:
        return event_id_text(_lookup(payload, locator.json), ".".join(locator.json))
    if locator.header:
        return event_id_text(locate(locator, payload, headers), locator.header)
    return locate(locator, payload, headers)


@dataclass(frozen=True)
class DeclaredProvider:
    """A catalogue entry bound to its signature scheme: the scheme verifies and signs;
    the event id and type are where the entry says."""

    name: str
    scheme: SignatureScheme
    event_id: Locator
    event_type: Locator

    def verify(
        self, body: bytes, headers: Mapping[str, str], creds: Credentials, now: float
    ) -> None:
        self.scheme.verify(body, headers, creds, now)

    def identify(self, payload: Any, headers: Mapping[str, str]) -> tuple[str, str]:
        return (
            locate_event_id(self.event_id, payload, headers),
            locate(self.event_type, payload, headers),
        )

    def sign(self, body: bytes, secret: str, now: float, event_id: str = "") -> dict[str, str]:
        return self.scheme.sign(body, secret, now, event_id)
