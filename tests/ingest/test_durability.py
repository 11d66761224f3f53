"""Acknowledgement means committed: concurrent duplicates land once, a dead database gets 503."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ingest.writer import GroupCommitWriter, WriterUnavailable
from tests.ingest.conftest import Tenant
from tests.ingest.test_pos_events import auth, landed, pos_event
from tests.ingest.test_webhooks import event_for, sign


def test_concurrent_duplicates_land_once(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    event = orjson.dumps(pos_event(tenant))
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda _: client.post("/events", content=event, headers=auth(tenant)).json()[
                    "status"
                ],
                range(50),
            )
        )
    assert answers.count("accepted") == 1
    assert answers.count("duplicate") == 49
    assert len(landed(engine, tenant)) == 1


def test_concurrent_webhook_duplicates_land_once(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    event_id, body = event_for("stripe", tenant)
    headers = sign("stripe", body, tenant, event_id)
    with ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(
                lambda _: client.post(
                    f"/webhooks/stripe/{tenant.company_id}", content=body, headers=headers
                ),
                range(50),
            )
        )
    assert [r.status_code for r in codes] == [200] * 50
    assert [r.json()["status"] for r in codes].count("accepted") == 1
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select count(*) from raw.webhook_events where company_id = :c"),
                {"c": tenant.company_id},
            ).scalar_one()
            == 1
        )


def test_database_down_is_503_and_nothing_lands(
    client: TestClient, tenant: Tenant, engine: sa.Engine
) -> None:
    body = orjson.dumps(pos_event(tenant))
    # Warm the key cache, then swap in a writer whose database is unreachable.
    assert client.post("/events", content=body, headers=auth(tenant)).status_code == 200
    state = client.app.state.ingest  # type: ignore[attr-defined]
    live = state.writer
    dead = GroupCommitWriter("postgresql://postgres@127.0.0.1:1/none", timeout=5)
    client.portal.call(dead.start)  # type: ignore[union-attr]
    state.writer = dead
    try:
        fresh = orjson.dumps(pos_event(tenant))
        response = client.post("/events", content=fresh, headers=auth(tenant))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        # The answer says what it means: nothing of this request was committed.
        assert response.json()["error"]["code"] == "unavailable"
        assert "not committed" in response.json()["error"]["message"]
    finally:
        state.writer = live
        client.portal.call(dead.stop)  # type: ignore[union-attr]
    assert len(landed(engine, tenant)) == 1
    # The sender's retry lands once the database is back.
    assert (
        client.post("/events", content=fresh, headers=auth(tenant)).json()["status"] == "accepted"
    )


def test_writer_recovers_after_failure(database_url: str) -> None:
    async def scenario() -> list[bool]:
        writer = GroupCommitWriter("postgresql://postgres@127.0.0.1:1/none", timeout=3)
        await writer.start()
        try:
            with contextlib.suppress(WriterUnavailable):
                await writer.land(rejected=[])
            writer.conninfo = database_url  # the server "comes back"
            return await writer.land(rejected=[])
        finally:
            await writer.stop()

    assert asyncio.run(scenario()) == []
