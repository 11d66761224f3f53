"""Baseline: a naive POS receiver (FastAPI; per request: look up the key, insert, commit)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from psycopg_pool import AsyncConnectionPool

from partner_signals.crypto import hash_api_key
from partner_signals.db import to_libpq
from partner_signals.pos import InvalidPosEvent, parse_pos_event

# One connection per concurrent request of this worker (wrk -c32 over --workers 2).
POOL_SIZE = int(os.environ.get("NAIVE_POOL_SIZE", "16"))

INSERT = """
insert into raw.order_events
    (company_id, restaurant_id, event_id, event_type, occurred_at, received_at, headers, body)
values (%s, %s, %s, %s, %s, %s, %s::jsonb, %s)
on conflict on constraint order_events_dedup do nothing
"""


def answer(status: int, content: dict[str, str]) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = AsyncConnectionPool(
        to_libpq(os.environ["DATABASE_URL"]), min_size=POOL_SIZE, max_size=POOL_SIZE, open=False
    )
    await pool.open(wait=True)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/events")
async def events(request: Request) -> Response:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return answer(401, {"error": "missing_key"})
    body = await request.body()
    try:
        event = parse_pos_event(body)
    except InvalidPosEvent as exc:
        return answer(400, {"error": str(exc)})
    pool: AsyncConnectionPool = request.app.state.pool
    # The pool's connection block is one transaction: committed on a clean exit.
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select company_id from ops.ingest_keys where key_hash = %s and revoked_at is null",
            (hash_api_key(token),),
        )
        row = await cur.fetchone()
        if row is None:
            return answer(401, {"error": "invalid_key"})
        cur = await conn.execute(
            INSERT,
            (
                row[0],
                event.restaurant_id,
                event.event_id,
                event.type,
                event.occurred_at,
                datetime.now(UTC),
                "{}",
                body.decode(),
            ),
        )
        status = "accepted" if cur.rowcount else "duplicate"
    return answer(200, {"status": status, "event_id": event.event_id})


@app.get("/readyz")
async def readyz(request: Request) -> Response:
    pool: AsyncConnectionPool = request.app.state.pool
    async with pool.connection() as conn:
        await conn.execute("select 1")
    return answer(200, {"status": "ready"})
