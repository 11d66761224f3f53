"""Each delivery platform's outbound call shapes, read from its catalogue entry.

A platform's staging yml declares, beside its inbound vocabulary, `delivery.outbound`: its
production API base URL, how it authenticates (an API key in a header, or OAuth client
credentials), one call per canonical status it takes from us, and its webhook
registration call. Paths and bodies are templates: a string that is exactly
"{placeholder}" becomes the value (keeping its JSON type), any other string is formatted.
This module turns that into typed shapes and builds requests from them; it sends nothing.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import quote

from partner_signals.catalogue.sources import DELIVERY_STATUSES, CatalogueError, sources

# The statuses the POS can move an order to, and so the calls a platform may declare.
OUTBOUND_STATUSES = ("accepted", "rejected", "preparing", "ready", "cancelled")
PLACEHOLDERS = frozenset(
    {
        "external_order_id",
        "pos_order_id",
        "restaurant_id",
        "occurred_at",
        "reason",
        "webhook_url",
        "webhook_secret",
    }
)
AuthKind = Literal["api_key", "oauth_client_credentials"]


@dataclass(frozen=True)
class Call:
    """One HTTP call: a method, a path under the API base URL, a JSON body template."""

    method: str
    path: str
    body: Mapping[str, Any]

    def render(self, values: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """(method, path, body) with the placeholders filled; path values are URL-quoted."""
        path = self.path.format_map({k: quote(str(v), safe="") for k, v in values.items()})
        return self.method, path, _fill(self.body, values)


@dataclass(frozen=True)
class Auth:
    kind: AuthKind
    header: str = "Authorization"
    prefix: str = ""
    # OAuth: the token endpoint; a path is taken under the API base URL.
    token_url: str = ""


@dataclass(frozen=True)
class PlatformShape:
    platform: str
    api_base_url: str
    auth: Auth
    status_calls: Mapping[str, Call]
    webhook_registration: Call | None

    @property
    def integration(self) -> str:
        """The ops.integrations provider (and outbox adapter) holding its API credentials:
        apart from the inbound row, whose secret a rotation replaces whole."""
        return f"{self.platform}-api"


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, str):
        names = _placeholders(value)
        if len(names) == 1 and value == "{" + names[0] + "}":
            return values.get(names[0])
        return value.format_map({k: "" if v is None else v for k, v in values.items()})
    return value


def _placeholders(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def _check_template(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_template(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_template(v, f"{where}[{i}]")
    elif isinstance(value, str):
        unknown = sorted(set(_placeholders(value)) - PLACEHOLDERS)
        if unknown:
            raise CatalogueError(f"{where}: unknown placeholders {unknown}")


def _call(value: Any, where: str) -> Call:
    if not isinstance(value, Mapping) or not value.get("method") or not value.get("path"):
        raise CatalogueError(f"{where} needs a method and a path")
    method = str(value["method"]).upper()
    if method not in ("POST", "PUT", "PATCH"):
        raise CatalogueError(f"{where}.method must be POST, PUT or PATCH")
    path = str(value["path"])
    if not path.startswith("/"):
        raise CatalogueError(f"{where}.path must start with /")
    body = value.get("body") or {}
    if not isinstance(body, Mapping):
        raise CatalogueError(f"{where}.body must be a mapping")
    _check_template(path, f"{where}.path")
    _check_template(body, f"{where}.body")
    return Call(method, path, MappingProxyType(dict(body)))


def parse_shape(platform: str, value: Any) -> PlatformShape:
    where = f"{platform}: delivery.outbound"
    if not isinstance(value, Mapping):
        raise CatalogueError(f"{where} must be a mapping")
    base = str(value.get("api_base_url") or "")
    if not base.startswith("https://"):
        raise CatalogueError(f"{where}.api_base_url must be the platform's https production URL")
    auth = value.get("auth") or {}
    kind = auth.get("kind")
    if kind not in ("api_key", "oauth_client_credentials"):
        raise CatalogueError(f"{where}.auth.kind must be api_key or oauth_client_credentials")
    if kind == "oauth_client_credentials" and not auth.get("token_url"):
        raise CatalogueError(f"{where}.auth needs token_url")
    calls = value.get("status_calls") or {}
    unknown = sorted(set(calls) - set(OUTBOUND_STATUSES))
    if unknown or not calls:
        raise CatalogueError(f"{where}.status_calls: one or more of {OUTBOUND_STATUSES}")
    assert set(OUTBOUND_STATUSES) <= set(DELIVERY_STATUSES)
    registration = value.get("webhook_registration")
    return PlatformShape(
        platform=platform,
        api_base_url=base.rstrip("/"),
        auth=Auth(
            kind=kind,
            header=str(auth.get("header") or "Authorization"),
            prefix=str(auth.get("prefix") or ""),
            token_url=str(auth.get("token_url") or ""),
        ),
        status_calls=MappingProxyType(
            {s: _call(c, f"{where}.status_calls.{s}") for s, c in calls.items()}
        ),
        webhook_registration=(
            _call(registration, f"{where}.webhook_registration") if registration else None
        ),
    )


@cache
def shapes() -> Mapping[str, PlatformShape]:
    """Every delivery platform that declares outbound calls, by platform name."""
    return MappingProxyType(
        {
            s.name: parse_shape(s.name, s.delivery.outbound)
            for s in sources()
            if s.delivery is not None and s.delivery.outbound is not None
        }
    )


def shape(platform: str) -> PlatformShape:
    return shapes()[platform]


def platform_of_integration(provider: str) -> str | None:
    """`talabat-api` -> `talabat` (None when it is no platform's API integration)."""
    name = provider.removesuffix("-api")
    return name if name != provider and name in shapes() else None
