"""The signal catalogue: read from the marts' yml, equal to dbt's manifest, used everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partner_signals.catalogue import signals as catalogue
from partner_signals.catalogue.signals import CatalogueError, load

VALID = """
version: 2
models:
  - name: fct_covers
    description: Covers per visit. One row per visit.
    config:
      meta:
        signal:
          name: covers
          key: [visit_id]
          span: {column: seated_at}
          served: {route: crm, scope: "read:crm"}
          exported: {day_column: business_date}
          pushed: {recent: "seated_at > now() - interval '1 day'"}
          watched: true
    columns:
      - name: visit_id
      - name: seated_at
      - name: business_date
"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "fct_covers.yml").write_text(text)
    return tmp_path


def test_a_valid_entry_reads_whole(tmp_path: Path) -> None:
    (signal,) = load(write(tmp_path, VALID))
    assert (signal.name, signal.model, signal.group) == ("covers", "fct_covers", "crm")
    assert signal.key == ("visit_id",) and signal.span.column == "seated_at"
    assert signal.served is not None and signal.served.route == "crm"
    assert signal.export_day_column == "business_date"
    assert signal.pushed and signal.watched and signal.push_type == "signal.covers"
    assert signal.order_by == ("seated_at",)
    assert signal.materialized == "table"  # the marts' default


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (VALID.replace("key: [visit_id]", "key: [guest_id]"), "'guest_id' is not a documented"),
        (VALID.replace("route: crm", "route: payroll"), "route 'payroll'"),
        (VALID.replace("name: covers", "name: Covers!"), "not a lowercase identifier"),
        (VALID.replace("watched: true", "watched: false"), "must be watched"),
        (VALID.replace("          span: {column: seated_at}\n", ""), "needs `span`"),
        (VALID.replace("day_column: business_date", "day_column: day"), "'day' is not"),
    ],
)
def test_a_broken_entry_is_refused_naming_its_file(
    tmp_path: Path, broken: str, message: str
) -> None:
    with pytest.raises(CatalogueError, match=message) as error:
        load(write(tmp_path, broken))
    assert "fct_covers" in str(error.value)


def test_one_name_per_signal(tmp_path: Path) -> None:
    root = write(tmp_path, VALID)
    (root / "crm" / "fct_covers_again.yml").write_text(VALID.replace("fct_covers", "fct_more"))
    with pytest.raises(CatalogueError, match="declared twice: covers"):
        load(root)


def test_the_catalogue_is_the_manifest() -> None:
    """What Python reads from the yml is what dbt parsed: every mart that declares a
    signal, with the same block, materialization and columns."""
    from pipelines.project import ensure_manifest

    manifest = json.loads(ensure_manifest().read_text())
    declared = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and "signal" in node["config"].get("meta", {})
    }
    assert sorted(declared) == sorted(s.model for s in catalogue.signals())
    for signal in catalogue.signals():
        node = declared[signal.model]
        block = node["config"]["meta"]["signal"]
        assert block["name"] == signal.name
        assert tuple(block["key"]) == signal.key
        assert node["config"]["materialized"] == signal.materialized
        assert node["schema"] == "marts" and node["fqn"][1:3] == ["marts", signal.group]
        assert {*signal.key, signal.span.column} <= set(node["columns"])


def test_every_reader_takes_its_list_from_the_catalogue() -> None:
    from api.routers.signals import SERVED, CrmSignals, WorkforceSignals
    from partner_signals.adapters import ADAPTERS, SIGNALS
    from partner_signals.exports import EXPORTED_SIGNALS
    from pipelines.exports.assets import MART_KEYS
    from pipelines.pushes.signals import PUSHED_SIGNALS

    assert set(EXPORTED_SIGNALS) == {s.name for s in catalogue.exported()}
    assert {p.name for p in PUSHED_SIGNALS} == {s.name for s in catalogue.pushed()} == SIGNALS
    assert {k.path[-1] for k in MART_KEYS} == {s.model for s in catalogue.exported()}
    served = {s.name for route in SERVED.values() for s in route}
    assert served == {s.name for s in catalogue.signals() if s.served}
    assert set(WorkforceSignals.model_fields) >= {s.name for s in catalogue.served("workforce")}
    assert set(CrmSignals.model_fields) >= {s.name for s in catalogue.served("crm")}
    by_adapter = {name: adapter.signals for name, adapter in ADAPTERS.items()}
    assert by_adapter["workforce"] == {s.name for s in catalogue.pushed("workforce")}
    assert by_adapter["crm"] == {s.name for s in catalogue.pushed("crm")}


def test_docs_show_the_catalogue() -> None:
    """docs/signals.md carries the catalogue's table as the catalogue renders it."""
    docs = (catalogue.DBT_PROJECT_DIR.parent / "docs" / "signals.md").read_text()
    assert catalogue.markdown_table() in docs, (
        "docs/signals.md is out of date; paste the output of "
        "`python -m partner_signals.catalogue.signals`"
    )


def test_the_change_watcher_covers_every_watched_signal() -> None:
    """A mart that is a table is watched itself; one that is a view (computed when read,
    never materialized) through the stored models it reads."""
    from pipelines.project import ensure_manifest
    from pipelines.pushes.sensors import watched_asset_keys

    manifest = json.loads(ensure_manifest().read_text())
    watched = {key.path[-1] for key in watched_asset_keys(manifest)}
    for signal in catalogue.watched():
        if signal.materialized == "view":
            parents = {
                p.rsplit(".", 1)[-1]
                for p in manifest["parent_map"][f"model.partner_signals.{signal.model}"]
            }
            assert signal.model not in watched
            assert parents & watched or any(
                watched & {q.rsplit(".", 1)[-1] for q in manifest["parent_map"].get(p, [])}
                for p in manifest["parent_map"][f"model.partner_signals.{signal.model}"]
            ), f"{signal.name}: nothing it reads is watched"
        else:
            assert signal.model in watched
