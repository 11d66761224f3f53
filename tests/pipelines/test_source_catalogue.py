"""The source catalogue's Python view agrees with dbt's manifest, and every source is wired."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from partner_signals.catalogue.sources import (
    CatalogueError,
    delivery_platform_names,
    inbound_names,
    parse_entry,
    sources,
    staging_model_by_source,
)
from partner_signals.providers import PROVIDERS
from pipelines.project import dbt_project, ensure_manifest
from pipelines.signals.raw import STAGING_MODEL_BY_SOURCE

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    with open(ensure_manifest(dbt_project), encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def test_the_python_view_matches_the_manifest(manifest: dict[str, Any]) -> None:
    in_manifest = {
        node["name"]: node["config"]["meta"]["source"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("meta", {}).get("source")
    }
    assert {s.model for s in sources()} == set(in_manifest)
    for source in sources():
        entry = in_manifest[source.model]
        assert parse_entry(source.model, entry, source.yml) == source
        node = manifest["nodes"][f"model.partner_signals.{source.model}"]
        assert node["original_file_path"].startswith(f"models/staging/{source.name}/")
        assert ["raw", source.raw_table] in node["sources"]


def test_the_canonical_union_reads_every_staging_model(manifest: dict[str, Any]) -> None:
    for union in ("canonical_events", "live_events"):
        parents = manifest["nodes"][f"model.partner_signals.{union}"]["depends_on"]["nodes"]
        for source in sources():
            assert f"model.partner_signals.{source.model}" in parents, (union, source.name)


def test_every_webhook_source_has_a_provider_and_pos_posts_events() -> None:
    assert set(PROVIDERS) == set(inbound_names())
    assert {s.name for s in sources() if not s.is_webhook} == {"pos"}
    assert staging_model_by_source() == STAGING_MODEL_BY_SOURCE


def test_every_source_has_a_docs_row_and_a_generator() -> None:
    from synthetic import DELIVERY_PLATFORMS

    docs = DOCS.read_text(encoding="utf-8").lower()
    for source in sources():
        assert re.search(rf"^\| {re.escape(source.name)} \|", docs, re.MULTILINE), source.name
    # The generator shapes every catalogued platform from its entry (none left out).
    generated = {"pos", "stripe", "paypal", *DELIVERY_PLATFORMS}
    assert {s.name for s in sources()} == generated
    assert set(DELIVERY_PLATFORMS) == set(delivery_platform_names())


def test_an_entry_without_an_event_id_is_refused() -> None:
    entry = {
        "name": "x",
        "raw_table": "webhook_events",
        "signature": {"scheme": "body_hmac_sha256_hex", "headers": ["x-sig"]},
        "event_type": {"json": ["type"]},
        "restaurant": {"json": ["store"]},
    }
    with pytest.raises(CatalogueError, match="event_id"):
        parse_entry("stg_x__order_events", entry, DOCS)


def test_a_status_outside_the_canonical_ones_is_refused() -> None:
    entry = {
        "name": "x",
        "raw_table": "webhook_events",
        "signature": {"scheme": "body_hmac_sha256_hex", "headers": ["x-sig"]},
        "event_id": {"json": ["id"]},
        "event_type": {"json": ["type"]},
        "restaurant": {"json": ["store"]},
        "delivery": {"statuses": {"done": "finished"}},
    }
    with pytest.raises(CatalogueError, match="finished"):
        parse_entry("stg_x__order_events", entry, DOCS)


def _platform_entry(**delivery: Any) -> dict[str, Any]:
    return {
        "name": "x",
        "raw_table": "webhook_events",
        "signature": {"scheme": "body_hmac_sha256_hex", "headers": ["x-sig"]},
        "event_id": {"json": ["id"]},
        "event_type": {"json": ["type"]},
        "restaurant": {"json": ["store"]},
        "delivery": {"order_status": ["order", "status"], "statuses": {"done": "delivered"}}
        | delivery,
    }


def test_an_update_event_needs_status_words() -> None:
    with pytest.raises(CatalogueError, match="update_events need"):
        parse_entry("stg_x__order_events", _platform_entry(update_events=["updated"]), DOCS)


def test_a_status_word_outside_the_canonical_statuses_is_refused() -> None:
    entry = _platform_entry(update_events=["updated"], status_words={"gone": "vanished"})
    with pytest.raises(CatalogueError, match="vanished"):
        parse_entry("stg_x__order_events", entry, DOCS)


def test_status_words_that_differ_only_by_case_are_refused() -> None:
    entry = _platform_entry(
        update_events=["updated"], status_words={"Done": "delivered", "done ": "delivered"}
    )
    with pytest.raises(CatalogueError, match="repeats a word"):
        parse_entry("stg_x__order_events", entry, DOCS)


def test_a_name_cannot_be_both_a_status_event_and_an_update() -> None:
    entry = _platform_entry(update_events=["done"], status_words={"done": "delivered"})
    with pytest.raises(CatalogueError, match="both"):
        parse_entry("stg_x__order_events", entry, DOCS)


def test_an_ignored_name_cannot_be_mapped() -> None:
    entry = _platform_entry() | {"ignored_event_types": ["done"]}
    with pytest.raises(CatalogueError, match="ignored_event_types lists mapped"):
        parse_entry("stg_x__order_events", entry, DOCS)


def test_status_words_are_kept_lower_case_and_trimmed() -> None:
    entry = _platform_entry(update_events=["updated"], status_words={" Ready ": "ready"})
    delivery = parse_entry("stg_x__order_events", entry, DOCS).delivery
    assert delivery is not None and dict(delivery.status_words) == {"ready": "ready"}
    assert delivery.update_events == ("updated",)


# The delivery-platform brief's event names (issue 11); each must be mapped by name or be
# a generic update whose status comes from the order's status word.
BRIEF_NAMES = {
    "careem": ["order.created", "order.updated", "order.cancelled", "order.delivered"],
    "talabat": ["order_created", "order_confirmed", "order_cancelled", "order_delivered"],
    "deliveroo": ["order_created", "order_acknowledged", "order_cancelled", "order_delivered"],
    "jahez": ["order_received", "order_confirmed", "order_cancelled", "order_delivered"],
}


def test_every_name_of_the_brief_is_in_the_vocabulary() -> None:
    from partner_signals.catalogue.sources import source

    for platform, names in BRIEF_NAMES.items():
        delivery = source(platform).delivery
        assert delivery is not None
        for name in names:
            assert name in delivery.statuses or name in delivery.update_events, (platform, name)
