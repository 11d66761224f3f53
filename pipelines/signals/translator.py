"""How dbt nodes appear in Dagster: keys by schema, groups by layer, readable descriptions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

# The nightly rebuild refreshes every mart at least once a day; older means stale.
MART_MAX_AGE = timedelta(hours=26)

# Marts are grouped by who reads them; the other layers by what they are.
LAYER_GROUPS = {
    "staging": "staging",
    "canonical": "canonical",
    "intermediate": "canonical",
}
LAYER_BLURBS = {
    "staging": "Staging: one provider's raw payloads, typed, its event names translated.",
    "canonical": "Canonical: every source in one versioned event envelope.",
    "intermediate": "Intermediate: reusable per-visit, per-order and per-line facts.",
    "workforce": "Workforce signal (for scheduling and kitchen partners).",
    "crm": "CRM signal (for reservations and guest-experience partners).",
    "ops": "Operations: what the pipeline itself did with the events (for operators).",
}


def layer_of(props: Mapping[str, Any]) -> str:
    """staging, canonical, intermediate, workforce, crm, or raw/ops for sources."""
    if props.get("resource_type") == "source":
        return str(props.get("source_name", "raw"))
    fqn = list(props.get("fqn", []))
    if len(fqn) >= 3 and fqn[1] == "marts":
        return str(fqn[2])
    return str(fqn[1]) if len(fqn) >= 3 else "signals"


def describe(props: Mapping[str, Any]) -> str:
    """The model's yml description, what layer it is, and its documented columns."""
    lines = []
    blurb = LAYER_BLURBS.get(layer_of(props))
    if blurb:
        lines.append(f"*{blurb}*")
        lines.append("")
    description = " ".join(str(props.get("description") or "").split())
    lines.append(description or f"dbt {props.get('resource_type', 'node')} {props.get('name')}.")
    columns: Mapping[str, Mapping[str, Any]] = props.get("columns") or {}
    documented = [(name, col) for name, col in columns.items() if col.get("description")]
    if documented:
        lines.append("")
        lines.append("| column | definition |")
        lines.append("| --- | --- |")
        for name, col in documented:
            text = " ".join(str(col["description"]).split()).replace("|", "\\|")
            lines.append(f"| `{name}` | {text} |")
    return "\n".join(lines)


class SignalsTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if spec.key.path[0] == "marts":
            spec = spec.replace_attributes(
                freshness_policy=dg.FreshnessPolicy.time_window(fail_window=MART_MAX_AGE)
            )
        return spec

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        layer = layer_of(dbt_resource_props)
        if dbt_resource_props.get("resource_type") == "source":
            return None
        return LAYER_GROUPS.get(layer, layer)

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return describe(dbt_resource_props)
