"""A Dagster run SIGKILLed mid-materialization: the next run gives the same marts as a
clean build of the same events."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest

from partner_signals.processes import bin_path, child_env, start, stop
from partner_signals.settings import Settings
from synthetic import DEMO_RESTAURANTS, Delivery, service_day
from tests.pipelines.conftest import run_dbt, snapshot
from tests.pipelines.service_day import drop_database, new_database
from tests.reliability.conftest import record

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def land(url: str, deliveries: list[Delivery], company_id: str, restaurant_id: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into ops.companies (company_id, name) values (%s, %s)", (company_id, company_id)
        )
        conn.execute(
            "insert into ops.restaurants (restaurant_id, company_id, name, timezone) "
            "values (%s, %s, %s, 'Asia/Dubai')",
            (restaurant_id, company_id, restaurant_id),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into raw.order_events (company_id, restaurant_id, event_id, event_type, "
                "occurred_at, received_at, headers, body) values (%s, %s, %s, %s, %s, %s, '{}', %s) "
                "on conflict do nothing",
                [
                    (company_id, d.restaurant_id, d.event_id, d.event_type, d.occurred_at,
                     d.send_at, d.body.decode())
                    for d in deliveries if d.source == "pos"
                ],
            )  # fmt: skip
            cur.executemany(
                "insert into raw.webhook_events (source, company_id, event_id, event_type, "
                "received_at, headers, body) values (%s, %s, %s, %s, %s, %s, %s) "
                "on conflict do nothing",
                [
                    (d.source, company_id, d.event_id, d.event_type, d.send_at,
                     orjson.dumps({"x-deliveroo-sequence-guid": d.event_id}).decode(),
                     d.body.decode())
                    for d in deliveries if d.source != "pos"
                ],
            )  # fmt: skip


@pytest.mark.slow
def test_killed_materialization_then_rerun_equals_clean_build(
    server_url: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    spec = dataclasses.replace(
        DEMO_RESTAURANTS[0], company_id=f"kill-{suffix}", restaurant_id=f"kill-r-{suffix}"
    )
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    deliveries = service_day([spec], day, seed=11)
    killed_url = new_database(server_url, "ps_killed")
    clean_url = new_database(server_url, "ps_clean")
    try:
        for url in (killed_url, clean_url):
            land(url, deliveries, spec.company_id, spec.restaurant_id)
        run_dbt(clean_url, ["build"], tmp_path / "clean-dbt")

        settings = Settings(database_url=killed_url, data_dir=tmp_path / "data", secret_key=KEY)
        env = child_env(settings)
        cmd = [bin_path("partner-signals"), "materialize", "--quiet"]
        proc = start(cmd, env, quiet=True)
        # Kill once dbt has written its first model and before the run can finish.
        deadline = time.monotonic() + 120
        killed_at = None
        with psycopg.connect(killed_url, autocommit=True) as conn:
            while time.monotonic() < deadline and proc.poll() is None:
                row = conn.execute("select to_regclass('canonical.canonical_events')").fetchone()
                if row and row[0] is not None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed_at = time.monotonic()
                    break
                time.sleep(0.05)
        stop(proc)
        assert killed_at is not None, "the run finished (or never started) before the kill"

        rerun = start(cmd, env, quiet=True)
        assert rerun.wait(timeout=600) == 0, "the run after the kill failed"
        assert snapshot(killed_url, spec.company_id) == snapshot(clean_url, spec.company_id)
        record(
            "killed_dagster_run",
            events=len(deliveries),
            killed_mid_run=True,
            marts_equal_clean_build=True,
        )
    finally:
        drop_database(server_url, killed_url)
        drop_database(server_url, clean_url)
