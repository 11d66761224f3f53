"""`materialize` then `deliveries run`: the outbox asset and the export partitions of the
business days the run touched are materialized in the project's Dagster instance, the files
are on disk and listed, and every push reaches a real partner on 127.0.0.1, signed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa
from rich.console import Console
from standardwebhooks import Webhook

from partner_signals.adapters.base import CANONICAL_EVENT_TYPES
from partner_signals.exports import list_exports
from partner_signals.pushes.worker import deliver_due_sync
from partner_signals.readers import EXPORTS, OUTBOX, read_position
from partner_signals.registry import ensure_company
from partner_signals.settings import Settings
from pipelines.definitions import build_definitions
from pipelines.run import materialize_all, run_downstream
from tests.pipelines.service_day import (
    TIMEZONE,
    RawEvent,
    drop_database,
    land,
    new_database,
    register,
    service_day,
)
from tests.pushes.conftest import WEBHOOK_SECRET, Partner, Tenant, enable_webhook

FILES_KEY = dg.AssetKey(["exports", "signal_files"])
OUTBOX_KEY = dg.AssetKey(["ops", "outbox"])


@dataclass(frozen=True)
class World:
    settings: Settings
    engine: sa.Engine
    company_id: str
    restaurant_id: str
    partner: Partner


@pytest.fixture
def world(server_url: str, tmp_path: Path) -> Iterator[World]:
    url = new_database(server_url, "ps_downstream")
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        exports_dir=tmp_path / "exports",
        secret_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    suffix = uuid.uuid4().hex[:8]
    company_id, restaurant_id = f"co-{suffix}", f"dxb-{suffix}"
    partner = Partner().start()
    try:
        with engine.begin() as conn:
            ensure_company(conn, company_id=company_id, plan="enterprise")
        with psycopg.connect(url) as conn:
            register(conn, company_id, restaurant_id)
        enable_webhook(
            engine,
            settings,
            Tenant(company_id, restaurant_id, restaurant_id),
            partner.url + "/hooks",
        )
        yield World(settings, engine, company_id, restaurant_id, partner)
    finally:
        partner.stop()
        engine.dispose()
        drop_database(server_url, url)


def materialize(world: World, tmp_path: Path) -> str:
    output = tmp_path / f"materialize-{uuid.uuid4().hex[:6]}.txt"
    with output.open("w") as fh:
        ok = materialize_all(world.settings, console=Console(file=fh, width=160))
    shown = output.read_text()
    assert ok, shown
    return shown


def exported_partitions() -> set[str]:
    # materialize_all points DAGSTER_HOME at the settings' data dir: the project's instance.
    with dg.DagsterInstance.get() as instance:
        return set(instance.get_materialized_partitions(FILES_KEY))


def pushed(world: World) -> list[dict[str, object]]:
    """What the partner received, each verified as Standard Webhooks."""
    verifier = Webhook(WEBHOOK_SECRET)
    return [verifier.verify(r.body, r.headers) for r in world.partner.received]


def outbox_rows(world: World) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("select count(*) from ops.outbox where company_id = :c"),
                {"c": world.company_id},
            ).scalar_one()
        )


def order_now(restaurant_id: str, minutes_ago: int) -> list[RawEvent]:
    """A dine-in order created and paid in the last hour: today's business day, and a
    recent velocity value that pushed signals pick up."""
    now = datetime.now(UTC).replace(microsecond=0)
    order_id = f"o-now-{uuid.uuid4().hex[:6]}"
    events = []
    for i, kind in enumerate(("order.created", "order.bill_requested", "order.paid")):
        when = now - timedelta(minutes=minutes_ago - i)
        event_id = f"pos-now-{uuid.uuid4().hex[:8]}"
        body = {
            "event_id": event_id,
            "type": kind,
            "occurred_at": when.isoformat(),
            "restaurant_id": restaurant_id,
            "order_id": order_id,
            "table_id": "t-now",
            "data": {"channel": "dine_in", "covers": 2} if kind == "order.created" else {},
        }
        events.append(RawEvent("pos", event_id, kind, when, body, restaurant_id=restaurant_id))
    return events


def business_day(at: datetime) -> str:
    from zoneinfo import ZoneInfo

    return (at.astimezone(ZoneInfo(TIMEZONE)) - timedelta(hours=4)).date().isoformat()


# Two dbt builds through Dagster, each with every test: minutes on a loaded 2-core machine.
@pytest.mark.timeout(900)
def test_materialize_then_deliveries_run_pushes_and_writes_the_days_touched(
    world: World, tmp_path: Path
) -> None:
    day = service_day(world.company_id, world.restaurant_id)
    with psycopg.connect(str(world.settings.database_url)) as conn:
        land(conn, world.company_id, day.events)

    shown = materialize(world, tmp_path)

    # The business day of the load (14 March in Dubai) is an export partition Dagster shows
    # materialized, its files are on disk, and /v1/exports lists them (it lists the folder).
    assert "2026-03-14" in exported_partitions()
    assert "after the signals" in shown and "2026-03-14" in shown
    files = list(list_exports(Path(world.settings.exports_dir)))
    assert {(f.restaurant_id, f.business_date) for f in files} == {
        (world.restaurant_id, "2026-03-14")
    }
    assert {f.format for f in files} == {"parquet", "csv"}
    # The outbox asset ran after the signals and filled ops.outbox; both positions are kept.
    # The raw tables the run read were observed: their newest row and when it landed.
    with dg.DagsterInstance.get() as instance:
        assert instance.get_latest_materialization_event(OUTBOX_KEY) is not None
        (observation,) = instance.fetch_observations(
            dg.AssetKey(["raw", "order_events"]), limit=1
        ).records
        assert observation.asset_observation is not None
        assert "newest_received_at" in observation.asset_observation.metadata
    queued = outbox_rows(world)
    assert queued > 0
    with world.engine.connect() as conn:
        assert read_position(conn, OUTBOX) is not None
        assert read_position(conn, EXPORTS) is not None

    # `deliveries run`: everything queued reaches the partner, signed.
    summary = deliver_due_sync(
        world.engine, key=world.settings.master_key(), company_id=world.company_id
    )
    assert summary.delivered == queued
    received = pushed(world)
    assert len(received) == queued
    canonical_ids = {str(p["id"]) for p in received if not str(p["type"]).startswith("signal.")}
    with world.engine.connect() as conn:
        expected = set(
            conn.execute(
                sa.text(
                    "select id::text from canonical.canonical_events "
                    "where company_id = :c and type = any(:t)"
                ),
                {"c": world.company_id, "t": sorted(CANONICAL_EVENT_TYPES)},
            ).scalars()
        )
    assert expected and canonical_ids == expected

    # Nothing new since: what follows the signals queues nothing and writes no partition.
    before = exported_partitions()
    defs = build_definitions(
        database_url=str(world.settings.database_url),
        exports_dir=str(world.settings.exports_dir),
    )
    with dg.DagsterInstance.get() as instance:
        again = run_downstream(defs, instance, world.settings)
    assert again.ok and again.export_partitions == [] and "0 event messages" in again.outbox
    assert exported_partitions() == before
    assert outbox_rows(world) == queued

    # An order now: today's business day is written (and only days near it), its events
    # and the changed order velocity are queued and delivered.
    land_now = order_now(world.restaurant_id, minutes_ago=30)
    with psycopg.connect(str(world.settings.database_url)) as conn:
        land(conn, world.company_id, land_now)
    materialize(world, tmp_path)
    today = business_day(land_now[0].occurred_at)
    written = exported_partitions() - before
    assert today in written
    assert all(
        abs((datetime.fromisoformat(d) - datetime.fromisoformat(today)).days) <= 1 for d in written
    )
    assert (Path(world.settings.exports_dir) / world.restaurant_id / today).is_dir()
    summary = deliver_due_sync(
        world.engine, key=world.settings.master_key(), company_id=world.company_id
    )
    assert summary.delivered == outbox_rows(world) - queued > len(land_now)
    received = pushed(world)
    now_types = {p["type"] for p in received[queued:]}
    assert {"order.created", "order.paid"} <= now_types
    assert "signal.order_velocity" in now_types, now_types
    velocity = next(p for p in received[queued:] if p["type"] == "signal.order_velocity")
    assert velocity["restaurant_id"] == world.restaurant_id
