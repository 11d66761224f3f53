"""The source catalogue: every inbound source, read from its staging model's yml.

Each staging model under dbt_project/models/staging/ declares its source under
`config: meta: source:` (name, raw table, signature scheme, where the event id and type
are, the restaurant field and, for delivery platforms, the JSON paths and vocabulary).
The model and its yml are the definition; the provider registry, the raw-to-staging map,
the CLI help and the docs derive from this view of it. It reads the yml directly, so
ingest starts without dbt or a manifest; tests/core/test_source_catalogue.py checks it
against the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the lock; safe_load only

# Beside the package, as pipelines/project.py finds it.
from partner_signals.catalogue import DBT_PROJECT_DIR

STAGING_DIR = DBT_PROJECT_DIR / "models" / "staging"

# The canonical delivery statuses a platform's vocabulary maps onto.
DELIVERY_STATUSES = (
    "received",
    "accepted",
    "rejected",
    "preparing",
    "ready",
    "picked_up",
    "delivered",
    "cancelled",
)
RAW_TABLES = ("order_events", "webhook_events")

JsonPath = tuple[str, ...]


class CatalogueError(ValueError):
    """A staging model's catalogue entry is incomplete or inconsistent."""


@dataclass(frozen=True)
class Locator:
    """Where a value is in a request: a JSON path in the body, a header, or (for a
    sender that carries no event id) a hash over the JSON fields that identify it."""

    json: JsonPath = ()
    header: str = ""
    hash_of: tuple[JsonPath, ...] = ()


@dataclass(frozen=True)
class Signature:
    """The scheme names a verifier in partner_signals.providers; `headers` are the
    request headers it reads (lower case)."""

    scheme: str
    headers: tuple[str, ...]


@dataclass(frozen=True)
class DeliveryPlatform:
    """A delivery platform's quirks: JSON paths of its order fields, and its vocabulary.

    `statuses`: event names (or status codes, as the event type carries them) ->
    canonical status. `update_events`: the platform's generic update names (Careem's
    `order.updated`), which say nothing by their name: their status is the order's status
    word at `order_status`, translated by `status_words` (matched ignoring case and
    surrounding blanks)."""

    order_id: JsonPath
    occurred_at: JsonPath
    amount: JsonPath
    currency: JsonPath
    order_status: JsonPath
    statuses: MappingProxyType[str, str]
    amount_in_minor_units: bool = False
    # A boolean field by which the platform flags an update it did not apply to the order.
    not_applied_when_true: JsonPath = ()
    update_events: tuple[str, ...] = ()
    status_words: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The status calls back to the platform, as declared (partner_signals.platforms.shapes
    # reads and checks it); None: the platform takes no status from us.
    outbound: Any = None


@dataclass(frozen=True)
class Source:
    name: str
    model: str
    raw_table: str
    signature: Signature
    event_id: Locator
    event_type: Locator
    restaurant: Locator
    delivery: DeliveryPlatform | None
    yml: Path
    # Event names the source sends that the signals deliberately do not use (they repeat
    # or precede a fact a mapped event carries): neither in canonical_events nor counted
    # in marts.unmapped_events. Any other name that maps to nothing is counted there.
    ignored_event_types: tuple[str, ...] = ()

    @property
    def is_webhook(self) -> bool:
        """Sent by a provider to /webhooks/{name}/{company} (POS posts to /events)."""
        return self.raw_table == "webhook_events"


def _path(value: Any, where: str) -> JsonPath:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(k, str) and k for k in value):
        raise CatalogueError(f"{where} must be a list of JSON keys")
    return tuple(value)


def _locator(value: Any, where: str) -> Locator:
    if not isinstance(value, dict):
        raise CatalogueError(f"{where} must be a mapping with json, header or hash_of")
    locator = Locator(
        json=_path(value.get("json"), f"{where}.json"),
        header=str(value.get("header", "")).lower(),
        hash_of=tuple(
            _path(p, f"{where}.hash_of[{i}]") for i, p in enumerate(value.get("hash_of") or [])
        ),
    )
    if sum(map(bool, (locator.json, locator.header, locator.hash_of))) != 1:
        raise CatalogueError(f"{where} needs exactly one of json, header or hash_of")
    return locator


def _names(value: Any, where: str) -> tuple[str, ...]:
    """A list of distinct non-empty names (event names as the sender spells them)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise CatalogueError(f"{where} must be a list of names")
    names = tuple(str(v) for v in value)
    if not all(names) or len(set(names)) != len(names):
        raise CatalogueError(f"{where} has an empty or repeated name")
    return names


def _vocabulary(value: Any, where: str) -> dict[str, str]:
    """A mapping of provider words onto canonical delivery statuses."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogueError(f"{where} must be a mapping onto {DELIVERY_STATUSES}")
    vocabulary = {str(k): str(v) for k, v in value.items()}
    unknown = sorted(set(vocabulary.values()) - set(DELIVERY_STATUSES))
    if unknown or not all(vocabulary):
        raise CatalogueError(f"{where} must map onto {DELIVERY_STATUSES}: {unknown}")
    return vocabulary


def _delivery(value: Any, where: str) -> DeliveryPlatform | None:
    if value is None:
        return None
    statuses = _vocabulary(value.get("statuses"), f"{where}.statuses")
    if not statuses:
        raise CatalogueError(f"{where}.statuses must map onto {DELIVERY_STATUSES}: empty")
    update_events = _names(value.get("update_events"), f"{where}.update_events")
    words = _vocabulary(value.get("status_words"), f"{where}.status_words")
    # Status words are matched ignoring case and blanks: two spellings of one word are one.
    status_words = {k.strip().lower(): v for k, v in words.items()}
    if len(status_words) != len(words):
        raise CatalogueError(f"{where}.status_words repeats a word (case and blanks ignored)")
    both = sorted(set(update_events) & set(statuses))
    if both:
        raise CatalogueError(f"{where}: {both} are both a status event and an update event")
    order_status = _path(value.get("order_status"), f"{where}.order_status")
    if update_events and not (status_words and order_status):
        raise CatalogueError(f"{where}.update_events need order_status and status_words")
    return DeliveryPlatform(
        order_id=_path(value.get("order_id"), f"{where}.order_id"),
        occurred_at=_path(value.get("occurred_at"), f"{where}.occurred_at"),
        amount=_path(value.get("amount"), f"{where}.amount"),
        currency=_path(value.get("currency"), f"{where}.currency"),
        order_status=order_status,
        statuses=MappingProxyType(statuses),
        amount_in_minor_units=bool(value.get("amount_in_minor_units", False)),
        not_applied_when_true=_path(
            value.get("not_applied_when_true"), f"{where}.not_applied_when_true"
        ),
        update_events=update_events,
        status_words=MappingProxyType(status_words),
        outbound=value.get("outbound"),
    )


def parse_entry(model: str, entry: Any, yml: Path) -> Source:
    """One staging model's `config.meta.source` as a Source."""
    where = f"{model}: config.meta.source"
    if not isinstance(entry, dict) or not entry.get("name"):
        raise CatalogueError(f"{where} needs a name")
    raw_table = entry.get("raw_table")
    if raw_table not in RAW_TABLES:
        raise CatalogueError(f"{where}.raw_table must be one of {RAW_TABLES}")
    signature = entry.get("signature") or {}
    if not signature.get("scheme"):
        raise CatalogueError(f"{where}.signature needs a scheme")
    delivery = _delivery(entry.get("delivery"), f"{where}.delivery")
    ignored = _names(entry.get("ignored_event_types"), f"{where}.ignored_event_types")
    if delivery is not None:
        mapped = sorted(set(ignored) & {*delivery.statuses, *delivery.update_events})
        if mapped:
            raise CatalogueError(f"{where}.ignored_event_types lists mapped names: {mapped}")
    return Source(
        name=str(entry["name"]),
        model=model,
        raw_table=str(raw_table),
        signature=Signature(
            scheme=str(signature["scheme"]),
            headers=tuple(str(h).lower() for h in signature.get("headers") or ()),
        ),
        event_id=_locator(entry.get("event_id"), f"{where}.event_id"),
        event_type=_locator(entry.get("event_type"), f"{where}.event_type"),
        restaurant=_locator(entry.get("restaurant"), f"{where}.restaurant"),
        delivery=delivery,
        yml=yml,
        ignored_event_types=ignored,
    )


@cache
def load_sources(staging_dir: Path = STAGING_DIR) -> tuple[Source, ...]:
    """Every staging model that carries a catalogue entry, sorted by source name."""
    found: dict[str, Source] = {}
    for yml in sorted(staging_dir.rglob("*.yml")):
        document = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
        for model in document.get("models") or []:
            entry = ((model.get("config") or {}).get("meta") or {}).get("source")
            if entry is None:
                continue
            source = parse_entry(str(model["name"]), entry, yml)
            if source.name in found:
                raise CatalogueError(f"source {source.name!r} is declared twice")
            found[source.name] = source
    return tuple(found[name] for name in sorted(found))


def sources() -> tuple[Source, ...]:
    return load_sources()


def source(name: str) -> Source:
    for candidate in load_sources():
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def inbound_names() -> tuple[str, ...]:
    """The webhook providers a company can enable (`integrations enable <name>`)."""
    return tuple(s.name for s in load_sources() if s.is_webhook)


def delivery_platform_names() -> tuple[str, ...]:
    return tuple(s.name for s in load_sources() if s.delivery is not None)


def staging_model_by_source() -> dict[str, str]:
    """Each source's rows feed exactly one staging model."""
    return {s.name: s.model for s in load_sources()}
