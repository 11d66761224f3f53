"""The dbt project as Dagster assets; dbt tests become asset checks."""
# Dagster reads these annotations at definition time, so no postponed annotations here.

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import dbt_assets

from pipelines.project import dbt_project, ensure_manifest
from pipelines.resources import DatabaseResource, SignalsDbtResource
from pipelines.signals.raw import RawHighWater, read_high_water
from pipelines.signals.translator import SignalsTranslator

ensure_manifest(dbt_project)

translator = SignalsTranslator()
CANONICAL_EVENTS_KEY = dg.AssetKey(["canonical", "canonical_events"])
# Tells concurrent runs (sensor, schedule, CLI) apart from nothing else in the instance.
DBT_CONCURRENCY_TAG = "partner-signals/dbt"


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


def dbt_build_args(*, full_refresh: bool, with_tests: bool = True) -> list[str]:
    """`dbt build`; without tests (the sensor's runs select no checks) unit tests are
    left out too, as dbt would otherwise run them for every selected model."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if not with_tests:
        args += ["--exclude-resource-type", "unit_test"]
    return args


def with_high_water(context: dg.AssetExecutionContext, event: Any, high_water: RawHighWater) -> Any:
    """Stamp canonical_events' materialization with the raw ids it had seen before the run."""
    if isinstance(event, dg.Output):
        if context.asset_key_for_output(event.output_name) == CANONICAL_EVENTS_KEY:
            return event.with_metadata({**event.metadata, **high_water.as_metadata()})
    elif isinstance(event, dg.AssetMaterialization) and event.asset_key == CANONICAL_EVENTS_KEY:
        return event.with_metadata({**event.metadata, **high_water.as_metadata()})
    return event


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    name="signals_dbt",
    op_tags={DBT_CONCURRENCY_TAG: "build"},
)
def signals_dbt(
    context: dg.AssetExecutionContext,
    dbt: SignalsDbtResource,
    database: DatabaseResource,
    config: DbtBuildConfig,
) -> Iterator[Any]:
    """dbt build of the selected models, their tests as checks, and their unit tests."""
    with database.connect() as conn:
        high_water = read_high_water(conn)
    with_tests = bool(context.selected_asset_check_keys)
    invocation = dbt.invoke(
        dbt_build_args(full_refresh=config.full_refresh, with_tests=with_tests),
        database=database,
        context=context,
    )
    for event in invocation.stream():
        yield with_high_water(context, event, high_water)
    keep_partial_parse(dbt.target_dir())


def keep_partial_parse(run_target: Path) -> None:
    """Hand this run's partial-parse state to the next run. dagster-dbt seeds every run
    with the project's own copy, parsed when the manifest was prepared, often under
    another profile; dbt then re-parses the whole project (about 10 s) on every run."""
    produced = run_target / "partial_parse.msgpack"
    kept = Path(dbt_project.project_dir) / "target" / "partial_parse.msgpack"
    if produced.exists() and produced.resolve() != kept.resolve():
        tmp = kept.with_suffix(".msgpack.tmp")
        shutil.copyfile(produced, tmp)
        tmp.replace(kept)
