"""Deliverect's integer order statuses reach canonical_events as canonical delivery statuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest

from partner_signals.providers import PROVIDERS
from tests.pipelines.conftest import run_dbt
from tests.pipelines.service_day import RawEvent, drop_database, land, new_database, register

COMPANY, RESTAURANT = "co-deliverect", "dxb-deliverect"
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
# Deliverect's code -> the canonical status (None: no status change), per its table.
EXPECTED = {
    10: "received",
    20: "accepted",
    50: "preparing",
    60: "ready",
    70: "ready",
    83: None,
    87: "picked_up",
    90: "delivered",
    110: "cancelled",
    120: "rejected",
    2: None,
}


def update(order_id: str, status: int, minute: int, ignored: bool = False) -> RawEvent:
    """A raw row as ingest lands it: the body verbatim, the id the catalogue derives."""
    at = START + timedelta(minutes=minute)
    body = {
        "orderId": order_id,
        "status": status,
        "timeStamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reason": "",
        "channelOrderId": f"T5-{order_id}",
        "location": RESTAURANT,
        "isIgnoredPOSStatus": ignored,
    }
    event_id, event_type = PROVIDERS["deliverect"].identify(orjson.loads(orjson.dumps(body)), {})
    return RawEvent("deliverect", event_id, event_type, at, body, received_at=at)


@pytest.fixture(scope="module")
def built(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = new_database(server_url, "ps_deliverect")
    events = [update("o-1", status, minute) for minute, status in enumerate(EXPECTED)]
    events.append(update("o-2", 50, 1, ignored=True))
    try:
        with psycopg.connect(url) as conn:
            register(conn, COMPANY, RESTAURANT)
            land(conn, COMPANY, events)
        run_dbt(
            url,
            ["build", "--select", "+canonical_events", "--indirect-selection", "cautious"],
            Path(tmp_path_factory.mktemp("d")),
        )
        yield url
    finally:
        drop_database(server_url, url)


def test_statuses_reach_canonical_events(built: str) -> None:
    with psycopg.connect(built) as conn:
        rows = conn.execute(
            """
            select provider_event_type, type, delivery_status, order_id, channel, data
            from canonical.canonical_events where source = 'deliverect' and order_id = 'o-1'
            """
        ).fetchall()
    got = {int(r[0]): r[2] for r in rows}
    assert got == {code: status for code, status in EXPECTED.items() if status}
    assert {(r[1], r[3], r[4]) for r in rows} == {("delivery.status_changed", "o-1", "delivery")}
    assert all(r[5]["provider"] == "deliverect" and r[5]["status"] == r[2] for r in rows)


def test_an_update_deliverect_did_not_apply_changes_no_status(built: str) -> None:
    with psycopg.connect(built) as conn:
        staged = conn.execute(
            "select delivery_status from staging.stg_deliverect__order_events where order_id = 'o-2'"
        ).fetchall()
        canonical = conn.execute(
            "select count(*) from canonical.canonical_events where order_id = 'o-2'"
        ).fetchone()
    assert staged == [(None,)]
    assert canonical == (0,)
