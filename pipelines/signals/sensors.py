"""The raw-events sensor: raw rows past the last successful run -> a run of the models they
affect (and of any model not built yet), with the checks of what it builds.

Where it starts is read from Dagster, not kept in the sensor: the raw high water stamped on
canonical_events by the newest run that succeeded (any run of the signals job: this
sensor's, the nightly rebuild, `partner-signals materialize`). A failed run therefore
leaves its window to the next tick, and a first `serve` after a `materialize` goes on from
there. The sensor's own cursor only remembers raw rows that no model reads."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg

from pipelines.instance import RUN_MAX_RUNTIME_TAG
from pipelines.project import dbt_project
from pipelines.resources import DatabaseResource
from pipelines.signals.assets import signals_dbt
from pipelines.signals.checks import raw_events_processed
from pipelines.signals.health import RunHealth, signals_run_health, signals_run_in_flight
from pipelines.signals.jobs import signals_job
from pipelines.signals.raw import (
    STAGING_MODEL_BY_SOURCE,
    RawHighWater,
    read_high_water,
    sources_landed_between,
)
from pipelines.signals.translator import SignalsTranslator

DBT_PACKAGE = "partner_signals"
# After the second failure in a row, wait this long before trying again, doubling per
# failure up to RETRY_MAX_WAIT: a broken model is retried, not hammered every 30 s.
RETRY_FIRST_WAIT = timedelta(seconds=60)
RETRY_MAX_WAIT = timedelta(minutes=10)
# An incremental run takes 36-43 s on 10 M events (docs/benchmarks.md): one still running
# after 15 minutes has lost its process, and run monitoring fails it (a run that builds
# missing models keeps the instance's longer limit).
INCREMENTAL_MAX_RUNTIME = timedelta(minutes=15)
# The checks a signals run can evaluate besides the dbt tests (the job selects them too).
PYTHON_CHECKS: tuple[dg.AssetChecksDefinition, ...] = (raw_events_processed,)


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


def model_relations(manifest: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Each model's (schema, relation name) in the database; ephemeral models have none."""
    return {
        unique_id: (node["schema"], node.get("alias") or node["name"])
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
        and node.get("config", {}).get("materialized") != "ephemeral"
    }


def missing_models(conn: psycopg.Connection[Any], manifest: Mapping[str, Any]) -> set[str]:
    """The models whose table or view is not in the database: never built (a fresh
    deployment, a model added since), or dropped."""
    relations = model_relations(manifest)
    schemas = sorted({schema for schema, _ in relations.values()})
    present = {
        (str(row[0]), str(row[1]))
        for row in conn.execute(
            """
            select n.nspname, c.relname
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f')
            """,
            (schemas,),
        )
    }
    return {unique_id for unique_id, relation in relations.items() if relation not in present}


def asset_keys(
    manifest: Mapping[str, Any], unique_ids: Iterable[str], translator: SignalsTranslator
) -> list[dg.AssetKey]:
    keys = {translator.get_asset_key(manifest["nodes"][unique_id]) for unique_id in unique_ids}
    return sorted(keys, key=lambda key: key.to_user_string())


def affected_asset_keys(
    manifest: Mapping[str, Any], sources: Iterable[str], translator: SignalsTranslator
) -> list[dg.AssetKey]:
    return asset_keys(manifest, affected_models(manifest, sources), translator)


def check_keys_for(keys: Iterable[dg.AssetKey]) -> list[dg.AssetCheckKey]:
    """Every check of the signals job on these assets: their dbt tests and the Python
    checks, so a run leaves none of what it built "Not Evaluated"."""
    wanted = set(keys)
    candidates = [*signals_dbt.check_keys]
    for checks in PYTHON_CHECKS:
        candidates.extend(checks.check_keys)
    return sorted(
        {key for key in candidates if key.asset_key in wanted},
        key=lambda key: key.to_user_string(),
    )


def sensor_run_config(*, latest_batch_checks: bool) -> dict[str, Any]:
    return {"ops": {"signals_dbt": {"config": {"latest_batch_checks": latest_batch_checks}}}}


def retry_wait(failed_in_a_row: int) -> timedelta:
    """How long after the last failure the next try waits: none after one failure (the
    next tick retries), then RETRY_FIRST_WAIT doubling up to RETRY_MAX_WAIT."""
    if failed_in_a_row <= 1:
        return timedelta(0)
    return min(RETRY_MAX_WAIT, RETRY_FIRST_WAIT * 2 ** (failed_in_a_row - 2))


def backing_off(
    health: RunHealth, now: datetime, *, runs: str = "signals runs"
) -> dg.SkipReason | None:
    """A skip while the job's failures in a row call for waiting (retry_wait); the
    exports sensor uses it for export runs."""
    if not health.failing or health.last_failure_at is None:
        return None
    retry_at = health.last_failure_at + retry_wait(health.failed_in_a_row)
    if now >= retry_at:
        return None
    return dg.SkipReason(
        f"{health.failed_in_a_row} {runs} failed in a row (last: "
        f"{health.last_failure_message or 'no message'}); next try at {retry_at:%H:%M:%S} UTC"
    )


@dataclass(frozen=True)
class Window:
    """Raw rows in (start, end] are to process; `start` is the last successful run's
    high water (or the rows no model reads, if further on)."""

    start: RawHighWater
    end: RawHighWater

    def key(self) -> str:
        return f"{self.start.to_cursor()}..{self.end.to_cursor()}"


def start_of_window(processed: RawHighWater | None, ignored: RawHighWater) -> RawHighWater:
    """Rows up to `processed` were processed; rows up to `ignored` were found to need no
    run when it was recorded (always at or past a processed mark): both are behind us."""
    return (processed or RawHighWater()).union(ignored)


def ignored_cursor(mark: RawHighWater) -> str:
    """The sensor's cursor: raw rows up to `mark` need no run. Its own key, so a cursor
    of the sensor before it (the high water of its last request) reads as nothing."""
    return json.dumps({"needs_no_run": json.loads(mark.to_cursor())}, sort_keys=True)


def ignored_from_cursor(cursor: str | None) -> RawHighWater:
    try:
        data = json.loads(cursor) if cursor else {}
        return RawHighWater.from_cursor(json.dumps(data["needs_no_run"]))
    except (ValueError, TypeError, KeyError):
        return RawHighWater()


def plan_run(
    window: Window,
    sources: set[str],
    missing: set[str],
    manifest: Mapping[str, Any],
    translator: SignalsTranslator,
    *,
    failed_in_a_row: int = 0,
) -> dg.SensorResult | dg.SkipReason:
    """What the sensor does, given the raw rows to process, the sources they came from,
    and the models not in the database."""
    if not missing and not window.end.is_ahead_of(window.start):
        return dg.SkipReason("no raw events landed since the last successful run")
    keys = asset_keys(manifest, affected_models(manifest, sources) | missing, translator)
    if not keys:
        return dg.SensorResult(
            skip_reason=f"new raw rows only from sources no model reads: {sorted(sources)}",
            cursor=ignored_cursor(window.end),
        )
    run_key = window.key()
    if missing:
        run_key += f" +{len(missing)} not built"
    if failed_in_a_row:
        run_key += f" retry {failed_in_a_row}"
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key,
                asset_selection=keys,
                asset_check_keys=check_keys_for(keys),
                # The dbt tests of an ordinary run read only the rows it wrote: whole-table
                # tests cost more than the run itself (docs/benchmarks.md). A run that
                # builds missing models tests them whole.
                run_config=sensor_run_config(latest_batch_checks=not missing),
                tags={
                    "partner-signals/trigger": "sensor",
                    "partner-signals/sources": ",".join(sorted(sources)),
                    "partner-signals/not-built": str(len(missing)),
                    **(
                        {}
                        if missing
                        else {
                            RUN_MAX_RUNTIME_TAG: str(int(INCREMENTAL_MAX_RUNTIME.total_seconds()))
                        }
                    ),
                },
            )
        ],
    )


@dg.sensor(
    name="raw_events_sensor",
    job=signals_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Materializes the models affected by raw events landed since the last successful "
        "signals run, and any model not built yet, with their checks."
    ),
)
def raw_events_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    if signals_run_in_flight(context.instance):
        return dg.SkipReason("a signals run is queued or running; its outcome comes first")
    health = signals_run_health(context.instance)
    waiting = backing_off(health, datetime.now(UTC))
    if waiting is not None:
        return waiting
    start = start_of_window(health.processed_high_water, ignored_from_cursor(context.cursor))
    manifest = load_manifest()
    with database.connect() as conn:
        window = Window(start=start, end=read_high_water(conn))
        missing = missing_models(conn, manifest)
        sources = (
            sources_landed_between(conn, window.start, window.end)
            if window.end.is_ahead_of(window.start)
            else set()
        )
    return plan_run(
        window,
        sources,
        missing,
        manifest,
        SignalsTranslator(),
        failed_in_a_row=health.failed_in_a_row,
    )
