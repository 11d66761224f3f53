"""Lineage end to end in the Definitions: raw -> staging -> canonical -> marts -> outbox and
files, in groups an analyst can read."""

from __future__ import annotations

import dagster as dg
import pytest

from partner_signals.catalogue import signals as catalogue
from partner_signals.catalogue import sources
from pipelines.definitions import build_definitions

OUTBOX = dg.AssetKey(["ops", "outbox"])
FILES = dg.AssetKey(["exports", "signal_files"])
DELIVERIES = dg.AssetKey(["ops", "partner_deliveries"])
CANONICAL = dg.AssetKey(["canonical", "canonical_events"])


@pytest.fixture(scope="module")
def graph() -> dg.AssetGraph:  # type: ignore[type-arg]
    return build_definitions().resolve_asset_graph()


def test_each_staging_model_reads_its_raw_table_asset(graph: dg.AssetGraph) -> None:  # type: ignore[type-arg]
    for source in sources.sources():
        raw = dg.AssetKey(["raw", source.raw_table])
        staging = dg.AssetKey(["staging", source.model])
        assert raw in graph.get(staging).parent_keys, (source.name, staging)
    for table in (*sources.RAW_TABLES, "rejected_requests"):
        # Landed by ingest, observed (not materialized) by Dagster; rejected_requests is
        # read by no model but shown beside the others.
        raw_node = graph.get(dg.AssetKey(["raw", table]))
        assert raw_node.is_external and not raw_node.is_materializable
        assert raw_node.group_name == "raw"


def test_marts_feed_the_outbox_and_the_files(graph: dg.AssetGraph) -> None:  # type: ignore[type-arg]
    outbox_parents = graph.get(OUTBOX).parent_keys
    assert CANONICAL in outbox_parents
    watched = {dg.AssetKey(["marts", s.model]) for s in catalogue.watched()}
    assert watched and watched <= outbox_parents
    exported = {dg.AssetKey(["marts", s.model]) for s in catalogue.exported()}
    assert exported and exported <= graph.get(FILES).parent_keys
    assert graph.get(DELIVERIES).parent_keys == {OUTBOX}
    # And the marts themselves come from the raw tables: one connected graph.
    upstream: set[dg.AssetKey] = set()
    todo = [OUTBOX]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys - upstream:
            upstream.add(parent)
            todo.append(parent)
    assert {CANONICAL, dg.AssetKey(["raw", "order_events"])} <= upstream


def test_every_asset_is_in_a_named_group(graph: dg.AssetGraph) -> None:  # type: ignore[type-arg]
    groups = {key: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert "default" not in set(groups.values()), [k for k, g in groups.items() if g == "default"]
    assert groups[OUTBOX] == groups[DELIVERIES] == "deliveries"
    assert groups[FILES] == "exports"
    assert groups[dg.AssetKey(["ops", "restaurants"])] == "ops"
    assert {"raw", "staging", "canonical", "workforce", "crm"} <= set(groups.values())
