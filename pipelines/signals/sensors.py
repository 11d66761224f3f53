"""The raw-events sensor: new landed rows -> a run of the models they affect."""

import json
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from pipelines.project import dbt_project
from pipelines.resources import DatabaseResource
from pipelines.signals.jobs import SIGNALS_JOB_NAME, signals_job
from pipelines.signals.raw import (
    STAGING_MODEL_BY_SOURCE,
    RawHighWater,
    read_high_water,
    sources_landed_between,
)
from pipelines.signals.translator import SignalsTranslator

DBT_PACKAGE = "partner_signals"


def load_manifest() -> dict[str, Any]:
    with open(dbt_project.manifest_path, encoding="utf-8") as fh:
        manifest: dict[str, Any] = json.load(fh)
    return manifest


def affected_models(manifest: Mapping[str, Any], sources: Iterable[str]) -> set[str]:
    """Unique ids of the models that store data (tables, incremental) fed by `sources`,
    through the staging views, and downstream. Views compute at read time: a run has
    nothing to refresh in them (the nightly rebuild and `materialize` recreate them)."""
    child_map: Mapping[str, list[str]] = manifest["child_map"]
    todo = [
        f"model.{DBT_PACKAGE}.{STAGING_MODEL_BY_SOURCE[source]}"
        for source in sources
        if source in STAGING_MODEL_BY_SOURCE
    ]
    seen: set[str] = set()
    while todo:
        unique_id = todo.pop()
        if unique_id in seen or not unique_id.startswith("model."):
            continue
        seen.add(unique_id)
        todo.extend(child_map.get(unique_id, []))
    return {unique_id for unique_id in seen if stores_data(manifest["nodes"][unique_id])}


def stores_data(node: Mapping[str, Any]) -> bool:
    return node.get("config", {}).get("materialized") in {"table", "incremental"}


def affected_asset_keys(
    manifest: Mapping[str, Any], sources: Iterable[str], translator: SignalsTranslator
) -> list[dg.AssetKey]:
    keys = {
        translator.get_asset_key(manifest["nodes"][unique_id])
        for unique_id in affected_models(manifest, sources)
    }
    return sorted(keys, key=lambda key: key.to_user_string())


def plan_run(
    previous: RawHighWater,
    current: RawHighWater,
    sources: set[str],
    manifest: Mapping[str, Any],
    translator: SignalsTranslator,
) -> dg.SensorResult | dg.SkipReason:
    """What the sensor does, given where the raw tables stood then and now."""
    if not current.is_ahead_of(previous):
        return dg.SkipReason("no raw events landed since the last run request")
    keys = affected_asset_keys(manifest, sources, translator)
    if not keys:
        return dg.SensorResult(
            skip_reason=f"new raw rows only from sources no model reads: {sorted(sources)}",
            cursor=current.to_cursor(),
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=current.to_cursor(),
                asset_selection=keys,
                # No dbt data tests: each scans whole tables, which a run every 30 s cannot
                # afford. Contracts (types, not null, keys) still hold on every insert; the
                # nightly rebuild and `materialize` run every test.
                asset_check_keys=[],
                tags={"partner-signals/sources": ",".join(sorted(sources))},
            )
        ],
        cursor=current.to_cursor(),
    )


def queued_run_exists(instance: dg.DagsterInstance) -> bool:
    """A signals run that has not started yet will read everything landed so far."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=SIGNALS_JOB_NAME,
            statuses=[dg.DagsterRunStatus.QUEUED],
        ),
        limit=1,
    )
    return bool(runs)


@dg.sensor(
    name="raw_events_sensor",
    job=signals_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Materializes the models affected by newly landed raw events.",
)
def raw_events_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    previous = RawHighWater.from_cursor(context.cursor)
    if queued_run_exists(context.instance):
        return dg.SkipReason("a signals run is queued and will pick the new events up")
    with database.connect() as conn:
        current = read_high_water(conn)
        if not current.is_ahead_of(previous):
            return dg.SkipReason("no raw events landed since the last run request")
        sources = sources_landed_between(conn, previous, current)
    return plan_run(previous, current, sources, load_manifest(), SignalsTranslator())
