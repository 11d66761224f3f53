"""The raw-events sensor as a deployment meets it: each test makes its own migrated database
with Dagster's storage in it, evaluates the sensor there and executes the run it asks for
in process (the daemon's request: same job, assets, checks and run config)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli.main import app
from partner_signals.settings import Settings, get_settings
from pipelines.definitions import build_definitions
from pipelines.instance import prepare_dagster_home
from pipelines.resources import DatabaseResource
from pipelines.run import materialize_all
from pipelines.signals.health import SignalsRunHealth, signals_run_health
from pipelines.signals.raw import read_high_water
from pipelines.signals.requests import execute_request
from pipelines.signals.sensors import missing_models, raw_events_sensor
from tests.pipelines.service_day import (
    Day,
    RawEvent,
    drop_database,
    land,
    new_database,
    register,
    service_day,
)


@dataclass
class Deployment:
    """One database, its Dagster instance, and the sensor's cursor between ticks."""

    url: str
    settings: Settings
    cursor: str | None = None

    def instance(self) -> dg.DagsterInstance:
        prepare_dagster_home(self.settings)
        return dg.DagsterInstance.get()

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        with self.instance() as instance:
            context = dg.build_sensor_context(
                instance=instance,
                cursor=self.cursor,
                resources={"database": DatabaseResource(database_url=self.url)},
            )
            result = raw_events_sensor(context)
        assert isinstance(result, dg.SensorResult | dg.SkipReason)
        if isinstance(result, dg.SensorResult) and result.cursor:
            self.cursor = result.cursor
        return result

    def run(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        defs = build_definitions(
            database_url=self.url,
            dbt_artifacts_dir=str(self.settings.data_dir / "dbt" / "target"),
        )
        with self.instance() as instance:
            return execute_request(defs, request, instance)

    def health(self) -> SignalsRunHealth:
        with self.instance() as instance:
            return signals_run_health(instance)

    def land(self, day: Day, events: list[RawEvent]) -> None:
        with psycopg.connect(self.url) as conn:
            land(conn, day.company_id, events)

    def status(self, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
        """`partner-signals status` against this deployment: exit code and output."""
        monkeypatch.setenv("DATABASE_URL", self.url)
        monkeypatch.setenv("PARTNER_SIGNALS_DATA_DIR", str(self.settings.data_dir))
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, ["status"])
        finally:
            get_settings.cache_clear()
        return result.exit_code, result.output

    def count(self, sql: str, *params: object) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def deployment(server_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """`db upgrade` on a new database; nothing materialized, no Dagster history."""
    url = new_database(server_url, "ps_sensor_runs")
    try:
        yield Deployment(
            url=url,
            settings=Settings(database_url=url, data_dir=tmp_path, exports_dir=tmp_path / "x"),
        )
    finally:
        drop_database(server_url, url)


@pytest.fixture
def day(deployment: Deployment, ids: str) -> Day:
    day = service_day(f"co-{ids}", f"dxb-{ids}")
    with psycopg.connect(deployment.url) as conn:
        register(conn, day.company_id, day.restaurant_id)
    return day


def requested(result: dg.SensorResult | dg.SkipReason) -> dg.RunRequest:
    assert isinstance(result, dg.SensorResult), result
    (request,) = result.run_requests or []
    return request


def selected(request: dg.RunRequest) -> set[str]:
    return {key.to_user_string() for key in request.asset_selection or []}


def assert_checks_evaluated(request: dg.RunRequest, result: dg.ExecuteInProcessResult) -> None:
    """Every check of every asset the run built was evaluated (none "Not Evaluated"),
    and passed."""
    built = {event.asset_key for event in result.get_asset_materialization_events()}
    evaluations = result.get_asset_check_evaluations()
    evaluated = {evaluation.asset_check_key for evaluation in evaluations}
    assert set(request.asset_check_keys or []) == evaluated
    assert {key.asset_key for key in evaluated} <= built
    failed = [e.asset_check_key.to_user_string() for e in evaluations if not e.passed]
    assert failed == []


# Each test runs dbt two or three times on its own database: about a minute on an idle
# 2-core machine, several under load.
pytestmark = pytest.mark.timeout(900)


def test_a_fresh_deployment_builds_what_is_missing_and_turns_events_into_marts(
    deployment: Deployment, day: Day
) -> None:
    with psycopg.connect(deployment.url) as conn:
        every_model = missing_models(conn, _manifest())
    deployment.land(day, day.events)

    request = requested(deployment.tick())
    # Nothing was ever built: every model, views too, with every check.
    assert len(selected(request)) == len(every_model)
    assert "staging/stg_pos__order_events" in selected(request)
    result = deployment.run(request)
    assert result.success
    assert_checks_evaluated(request, result)

    assert (
        deployment.count(
            "select count(*) from marts.fct_order_pacing where restaurant_id = %s",
            day.restaurant_id,
        )
        > 0
    )
    assert (
        deployment.count(
            "select count(*) from canonical.canonical_events where restaurant_id = %s",
            day.restaurant_id,
        )
        > 0
    )
    health = deployment.health()
    assert health.failed_in_a_row == 0 and health.last_success_at is not None
    with psycopg.connect(deployment.url) as conn:
        assert health.processed_high_water == read_high_water(conn)
        assert missing_models(conn, _manifest()) == set()
    # Done: the next tick has nothing to do.
    assert isinstance(deployment.tick(), dg.SkipReason)


def test_a_failed_run_is_retried_and_its_events_still_arrive(
    deployment: Deployment, day: Day, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, later = day.events[:20], day.events[20:]
    deployment.land(day, first)
    assert deployment.run(requested(deployment.tick())).success
    deployment.land(day, later)

    # The marts' restaurants table goes away for a moment: canonical_events still builds
    # (and is stamped), the marts that read restaurants fail, so the run fails.
    with psycopg.connect(deployment.url, autocommit=True) as conn:
        conn.execute("alter table ops.restaurants rename to restaurants_away")
    failing = requested(deployment.tick())
    result = deployment.run(failing)
    assert not result.success
    with psycopg.connect(deployment.url, autocommit=True) as conn:
        conn.execute("alter table ops.restaurants_away rename to restaurants")

    health = deployment.health()
    assert health.failed_in_a_row == 1
    assert health.last_failure_at is not None and health.last_failure_message
    code, shown = deployment.status(monkeypatch)
    assert code == 1, shown
    assert "1 signals run failed in a row" in shown
    assert "raw events waiting" in shown
    # The failed run's window is asked for again (a new run key: the daemon runs it).
    retry = requested(deployment.tick())
    assert retry.run_key != failing.run_key
    assert selected(retry) == selected(failing)
    result = deployment.run(retry)
    assert result.success
    assert_checks_evaluated(retry, result)
    later_orders = {
        str(e.body["order_id"]) for e in later if e.source == "pos" and e.body.get("order_id")
    }
    assert deployment.count(
        "select count(distinct order_id) from intermediate.int_orders "
        "where restaurant_id = %s and order_id = any(%s)",
        day.restaurant_id,
        sorted(later_orders),
    ) == len(later_orders)
    assert deployment.health().failed_in_a_row == 0
    assert isinstance(deployment.tick(), dg.SkipReason)
    code, shown = deployment.status(monkeypatch)
    assert code == 0, shown
    assert "raw events waiting   0" in shown
    assert "since succeeded" in shown


def test_after_materialize_the_first_tick_goes_on_from_the_marts(
    deployment: Deployment, day: Day, tmp_path: Path
) -> None:
    deployment.land(day, day.events[:30])
    with (tmp_path / "materialize.txt").open("w") as fh:
        assert materialize_all(deployment.settings, console=Console(file=fh, width=120))

    # As the first `serve` after `demo`: no cursor, yet nothing to rebuild.
    skipped = deployment.tick()
    assert isinstance(skipped, dg.SkipReason)

    deployment.land(day, day.events[30:])
    request = requested(deployment.tick())
    keys = selected(request)
    assert "canonical/canonical_events" in keys
    assert not any(key.startswith("staging/") for key in keys)
    assert request.run_config["ops"]["signals_dbt"]["config"]["latest_batch_checks"] is True
    result = deployment.run(request)
    assert result.success
    assert_checks_evaluated(request, result)
    # Its dbt tests read the run's rows: the batch's loaded_at, each restaurant's start.
    run_dir = deployment.settings.data_dir / "dbt" / "target" / "run"
    (company,) = run_dir.rglob("catalogued_source_canonical_events_source.sql")
    assert '"loaded_at" = \'' in company.read_text()
    (visits,) = run_dir.rglob("not_null_int_visits_seated_at.sql")
    assert f"restaurant_id = '{day.restaurant_id}'" in visits.read_text()


def _manifest() -> dict[str, object]:
    from pipelines.signals.sensors import load_manifest

    return load_manifest()
