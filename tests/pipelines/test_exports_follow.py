"""Files follow the data under serve: after a signals run the sensors ask for the outbox and
for one export run over the business days the run touched; the files' position moves when
that run succeeds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa

from partner_signals.exports import list_exports, touched_business_days
from partner_signals.readers import EXPORTS, read_position
from pipelines.definitions import build_definitions
from pipelines.exports.assets import EXPORT_JOB_NAME, exports_follow_the_data
from pipelines.exports.plan import EXPORTS_UNTIL_TAG
from pipelines.pushes.assets import OUTBOX_JOB_NAME
from pipelines.pushes.sensors import partner_outbox
from pipelines.resources import DatabaseResource
from pipelines.signals.jobs import SIGNALS_JOB_NAME
from pipelines.signals.sources import raw_tables_observer
from tests.pipelines.service_day import (
    drop_database,
    land,
    new_database,
    register,
    service_day,
)

FILES_KEY = dg.AssetKey(["exports", "signal_files"])


@pytest.fixture
def database(server_url: str) -> Iterator[str]:
    url = new_database(server_url, "ps_follow")
    try:
        yield url
    finally:
        drop_database(server_url, url)


def test_touched_days_are_business_days_in_the_restaurant_time_zone_with_the_margin(
    database: str,
) -> None:
    engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    with psycopg.connect(database) as conn:
        register(conn, "co-days", "dxb-days")  # Asia/Dubai, UTC+4
        conn.execute(
            """
            create table public.events (
                id uuid, restaurant_id text, occurred_at timestamptz, loaded_at timestamptz
            )
            """
        )

        def load(restaurant: str, occurred: str, loaded: str) -> None:
            conn.execute(
                "insert into public.events values (%s, %s, %s, %s)",
                (uuid.uuid4(), restaurant, occurred, loaded),
            )

        # 16:00 in Dubai: the 14th, and 4 h either side stays in it.
        load("dxb-days", "2026-03-14T12:00:00Z", "2026-03-14T12:01:00Z")
        # 03:30 on the 15th in Dubai is still the 14th's business day (it starts at 04:00);
        # four hours later is the 15th's.
        load("dxb-days", "2026-03-14T23:30:00Z", "2026-03-14T23:31:00Z")
        # A restaurant not registered yet counts in UTC.
        load("nowhere", "2026-03-20T12:00:00Z", "2026-03-20T12:01:00Z")

    def days(since: str | None, until: str) -> list[str]:
        with engine.connect() as conn:
            found = touched_business_days(
                conn,
                since=datetime.fromisoformat(since) if since else None,
                until=datetime.fromisoformat(until),
                table="public.events",
            )
        return [d.isoformat() for d in found]

    try:
        assert days(None, "2026-03-14T12:30:00+00:00") == ["2026-03-14"]
        assert days(None, "2026-03-14T23:59:00+00:00") == ["2026-03-14", "2026-03-15"]
        assert days("2026-03-14T12:01:00+00:00", "2026-03-14T23:59:00+00:00") == [
            "2026-03-14",
            "2026-03-15",
        ]
        assert days("2026-03-14T23:31:00+00:00", "2026-03-21T00:00:00+00:00") == ["2026-03-20"]
        assert days("2026-03-21T00:00:00+00:00", "2026-03-22T00:00:00+00:00") == []
    finally:
        engine.dispose()


def test_after_a_signals_run_the_sensors_ask_for_the_outbox_and_the_days_touched(
    database: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    day = service_day(f"co-{suffix}", f"dxb-{suffix}")
    with psycopg.connect(database) as conn:
        register(conn, day.company_id, day.restaurant_id)
        land(conn, day.company_id, day.events)
    defs = build_definitions(
        database_url=database,
        dbt_artifacts_dir=str(tmp_path / "dbt"),
        exports_dir=str(tmp_path / "exports"),
    )
    resources = {"database": DatabaseResource(database_url=database)}
    engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    with dg.instance_for_test() as instance:

        def exports_tick() -> dg.RunRequest | dg.SkipReason:
            context = dg.build_sensor_context(instance=instance, resources=resources)
            result = exports_follow_the_data(context)
            assert isinstance(result, dg.RunRequest | dg.SkipReason)
            return result

        # Nothing built yet: no marts, nothing to write.
        assert isinstance(exports_tick(), dg.SkipReason)

        # The raw tables' newest rows are observed, without a run, once per change.
        observed = raw_tables_observer(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        assert isinstance(observed, dg.SensorResult)
        by_key = {e.asset_key: e for e in observed.asset_events}
        order_events = by_key[dg.AssetKey(["raw", "order_events"])]
        assert isinstance(order_events, dg.AssetObservation)
        with psycopg.connect(database) as conn:
            newest = conn.execute("select max(id) from raw.order_events").fetchone()
        assert newest is not None and order_events.metadata["newest_id"].value == newest[0] > 0
        assert "dagster/last_updated_timestamp" in order_events.metadata
        assert dg.AssetKey(["raw", "rejected_requests"]) in by_key
        unchanged = raw_tables_observer(
            dg.build_sensor_context(instance=instance, resources=resources, cursor=observed.cursor)
        )
        assert isinstance(unchanged, dg.SkipReason)

        signals = defs.resolve_job_def(SIGNALS_JOB_NAME).execute_in_process(instance=instance)
        assert signals.success

        # The outbox sensor asks for a run now that canonical events were materialized.
        outbox = partner_outbox(dg.build_sensor_context(instance=instance))
        assert isinstance(outbox, dg.SensorResult) and outbox.run_requests
        (outbox_request,) = outbox.run_requests
        filled = defs.resolve_job_def(OUTBOX_JOB_NAME).execute_in_process(
            instance=instance, run_config=outbox_request.run_config
        )
        assert filled.success

        # One export run over the business days the load touched.
        request = exports_tick()
        assert isinstance(request, dg.RunRequest)
        # The 14th in Dubai, and the 15th when the last event is within the margin of it.
        touched = request.partition_key_range
        assert touched is not None and touched.start == "2026-03-14"
        assert touched.end in {"2026-03-14", "2026-03-15"}
        assert EXPORTS_UNTIL_TAG in request.tags
        with engine.connect() as conn:
            assert read_position(conn, EXPORTS) is None  # moves on success, not on request

        written = defs.resolve_job_def(EXPORT_JOB_NAME).execute_in_process(
            instance=instance, tags=request.tags
        )
        assert written.success
        assert {touched.start, touched.end} <= instance.get_materialized_partitions(FILES_KEY)
        files = list(list_exports(tmp_path / "exports"))
        assert {f.business_date for f in files} == {"2026-03-14"}
        with engine.connect() as conn:
            position = read_position(conn, EXPORTS)
        assert position is not None
        assert position.loaded_at == datetime.fromisoformat(request.tags[EXPORTS_UNTIL_TAG])

        # Caught up: the next tick asks for nothing.
        assert isinstance(exports_tick(), dg.SkipReason)
    engine.dispose()
