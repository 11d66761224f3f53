"""Inbound webhook providers, derived from the source catalogue.

Each webhook source's catalogue entry (its staging model's yml) names a signature scheme
and where its event id and type are; this binds the scheme to the entry. A scheme is one
module here; status words and event names are translated downstream, in the source's dbt
staging model.
"""

from __future__ import annotations

from collections.abc import Callable

from partner_signals.catalogue.sources import Signature, Source, sources
from partner_signals.providers.base import (
    Credentials,
    DeclaredProvider,
    MalformedEvent,
    Provider,
    SignatureError,
    SignatureScheme,
)
from partner_signals.providers.delivery import BodyHmacScheme, DeliverooScheme
from partner_signals.providers.paypal import PAYPAL
from partner_signals.providers.stripe import STRIPE

# Scheme name (the catalogue's signature.scheme) -> the verifier for that entry.
SCHEMES: dict[str, Callable[[Signature], SignatureScheme]] = {
    "body_hmac_sha256_hex": lambda signature: BodyHmacScheme(signature.headers[0]),
    "deliveroo": lambda signature: DeliverooScheme(),
    "stripe": lambda signature: STRIPE,
    "paypal": lambda signature: PAYPAL,
}


def provider_for(source: Source) -> DeclaredProvider:
    try:
        make = SCHEMES[source.signature.scheme]
    except KeyError:
        raise ValueError(
            f"{source.model}: unknown signature scheme {source.signature.scheme!r}"
        ) from None
    return DeclaredProvider(source.name, make(source.signature), source.event_id, source.event_type)


PROVIDERS: dict[str, Provider] = {s.name: provider_for(s) for s in sources() if s.is_webhook}

__all__ = ["PROVIDERS", "SCHEMES", "Credentials", "MalformedEvent", "Provider", "SignatureError"]
