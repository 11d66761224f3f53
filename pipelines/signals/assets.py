"""The dbt project as Dagster assets; dbt tests become asset checks."""
# Dagster reads these annotations at definition time, so no postponed annotations here.

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import dbt_assets
from pydantic import Field

from pipelines.project import dbt_project, ensure_manifest
from pipelines.resources import DatabaseResource, SignalsDbtResource
from pipelines.signals.raw import RawHighWater, read_high_water
from pipelines.signals.translator import SignalsTranslator

ensure_manifest(dbt_project)

translator = SignalsTranslator()
CANONICAL_EVENTS_KEY = dg.AssetKey(["canonical", "canonical_events"])
# The job that runs these assets (defined in jobs.py); named here for the run records.
SIGNALS_JOB_NAME = "signals_job"
# Tells concurrent runs (sensor, schedule, CLI) apart from nothing else in the instance.
DBT_CONCURRENCY_TAG = "partner-signals/dbt"


# Read by dbt_project/macros/tests_scope.sql: `latest_batch` scopes the data tests.
TESTS_SCOPE_ENV = "PARTNER_SIGNALS_TESTS_SCOPE"


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    latest_batch_checks: bool = Field(
        default=False,
        description=(
            "The dbt tests read only the rows this run wrote (the sensor's runs); unit "
            "tests are left to full runs. Off: every test reads the whole table."
        ),
    )


def dbt_build_args(
    *, full_refresh: bool, with_tests: bool = True, unit_tests: bool = True
) -> list[str]:
    """`dbt build`; unit tests test the SQL, not the data: left out when no checks are
    selected (dbt would otherwise run them for every selected model) and on the
    sensor's runs (the code has not changed since the last full run)."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if not with_tests or not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    return args


def tests_scope_env(config: DbtBuildConfig) -> dict[str, str]:
    return {TESTS_SCOPE_ENV: "latest_batch" if config.latest_batch_checks else "all"}


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
        dbt_build_args(
            full_refresh=config.full_refresh,
            with_tests=with_tests,
            unit_tests=not config.latest_batch_checks,
        ),
        database=database,
        context=context,
        env=tests_scope_env(config),
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
        tmp = kept.with_name(f".partial_parse.{os.getpid()}.tmp")  # runs may end together
        shutil.copyfile(produced, tmp)
        tmp.replace(kept)
