"""Signal freshness: the lag behind waiting events, its asset check and its gauge, on dbt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import dagster as dg
import psycopg
import pytest

from partner_signals.catalogue import lineage
from partner_signals.catalogue import signals as catalogue
from partner_signals.observability import FRESHNESS_GOAL_SECONDS, DatabaseGauges, signal_lags
from pipelines.project import dbt_project, ensure_manifest
from pipelines.resources import DatabaseResource
from pipelines.signals.checks import SIGNAL_LAG_CHECK, mart_key, signals_freshness
from tests.pipelines.conftest import run_dbt
from tests.pipelines.service_day import (
    drop_database,
    land,
    new_database,
    pos,
    register,
    service_day,
)

WAITED = 200.0  # seconds the late event has waited when it is looked at


@pytest.fixture
def built(server_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A database with a service day landed an hour ago and `dbt run` over it."""
    suffix = uuid.uuid4().hex[:8]
    company_id, restaurant_id = f"co-fr-{suffix}", f"dxb-fr-{suffix}"
    url = new_database(server_url, "ps_fresh")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    try:
        with psycopg.connect(url) as conn:
            register(conn, company_id, restaurant_id)
            day = service_day(company_id, restaurant_id)
            land(conn, company_id, [e.received(an_hour_ago) for e in day.events])
        run_dbt(url, ["run"], tmp_path / "dbt")
        yield url, company_id, restaurant_id
    finally:
        drop_database(server_url, url)


def lags(url: str) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {lag.signal: lag.seconds for lag in signal_lags(conn)}


def check(url: str) -> dict[str, tuple[bool, dict[str, object]]]:
    """The asset check called as a plain function: signal -> (passed, metadata)."""
    by_key = {mart_key(s): s.name for s in catalogue.signals()}
    called = signals_freshness(database=DatabaseResource(database_url=url))
    results = list(cast(Iterable[dg.AssetCheckResult], called))
    assert {r.check_name for r in results} == {SIGNAL_LAG_CHECK}
    return {
        by_key[r.asset_key]: (r.passed, {k: v.value for k, v in r.metadata.items()})
        for r in results
        if r.asset_key is not None
    }


def test_the_check_fails_while_an_event_waits_and_passes_once_its_marts_have_it(
    built: tuple[str, str, str], tmp_path: Path
) -> None:
    url, company_id, restaurant_id = built
    names = {s.name for s in catalogue.signals()}

    # Caught up an hour after the last event: no lag, although nothing changed for an
    # hour (a last-update check would be counting towards its 26 hours here).
    assert lags(url) == dict.fromkeys(names, 0.0)
    assert all(passed for passed, _ in check(url).values())

    # An event canonical_events never takes (an order event without an order id: the
    # envelope drops it) is not waiting for any signal.
    received = datetime.now(UTC) - timedelta(seconds=WAITED)
    with psycopg.connect(url) as conn:
        dropped = pos(restaurant_id, 901, "order.created", "20:00", order_id=None)
        land(conn, company_id, [dropped.received(received)])
    assert lags(url) == dict.fromkeys(names, 0.0)

    # A real order landed 200 s ago and not in any mart yet: every signal is that far
    # behind, over the 60 s goal, and the check fails saying so.
    with psycopg.connect(url) as conn:
        late = pos(restaurant_id, 902, "order.created", "20:01", order_id="late-1", table_id="t9")
        land(conn, company_id, [late.received(received)])
    behind = lags(url)
    assert set(behind) == names
    assert all(WAITED <= seconds < WAITED + 120 for seconds in behind.values()), behind
    results = check(url)
    assert not any(passed for passed, _ in results.values())
    metadata = results["order_velocity"][1]
    assert metadata["goal_seconds"] == FRESHNESS_GOAL_SECONDS
    assert float(str(metadata["lag_seconds"])) >= WAITED
    gauges = DatabaseGauges(url)
    gauge = {
        s.labels["signal"]: s.value
        for family in gauges.collect()
        if family.name == "partner_signals_signal_lag_seconds"
        for s in family.samples
    }
    assert gauge.keys() == names and min(gauge.values()) >= WAITED

    # A run of only order velocity and what it reads: the signals whose incremental models
    # all ran caught up, and their checks pass again; the others still wait and fail.
    run_dbt(url, ["run", "--select", "+fct_order_velocity"], tmp_path / "dbt-velocity")
    partly = lags(url)
    fed_by_velocity_run = {
        s.name
        for s in catalogue.signals()
        if set(lineage.watermarked_models(s.model))
        <= set(lineage.watermarked_models("fct_order_velocity"))
    }
    assert "order_velocity" in fed_by_velocity_run and fed_by_velocity_run != names
    for name, seconds in partly.items():
        if name in fed_by_velocity_run:
            assert seconds == 0.0, (name, partly)
        else:
            assert seconds >= WAITED, (name, partly)

    results = check(url)
    for name, (passed, _) in results.items():
        assert passed == (name in fed_by_velocity_run), (name, results[name])


def test_watermarked_models_match_the_manifest() -> None:
    """The core reads refs from SQL (no manifest at run time); dbt's graph agrees."""
    ensure_manifest(dbt_project)
    manifest = json.loads(Path(dbt_project.manifest_path).read_text())
    nodes, parents = manifest["nodes"], manifest["parent_map"]

    def records_watermark(unique_id: str) -> bool:
        hooks = nodes[unique_id]["config"].get("post-hook") or []
        return any("record_watermark" in hook["sql"] for hook in hooks)

    for signal in catalogue.signals():
        todo, seen = [f"model.partner_signals.{signal.model}"], set()
        while todo:
            unique_id = todo.pop()
            if unique_id in seen or not unique_id.startswith("model."):
                continue
            seen.add(unique_id)
            todo.extend(parents.get(unique_id, []))
        expected = tuple(sorted(nodes[u]["name"] for u in seen if records_watermark(u)))
        assert expected, f"{signal.name}: no incremental model bounds its freshness"
        assert lineage.watermarked_models(signal.model) == expected, signal.name


def test_a_running_schedule_evaluates_every_signals_freshness_check() -> None:
    from pipelines.definitions import defs
    from pipelines.signals.jobs import freshness_job
    from pipelines.signals.schedules import freshness_every_ten_minutes

    schedule = freshness_every_ten_minutes
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job is freshness_job  # an asset job: its selection says what it runs
    checks = freshness_job.selection.resolve_checks(defs.resolve_asset_graph())
    expected = {dg.AssetCheckKey(mart_key(s), SIGNAL_LAG_CHECK) for s in catalogue.signals()}
    assert expected <= checks
