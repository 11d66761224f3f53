"""The enqueue side: canonical events, signal changes and unpaid-bill nudges into ops.outbox."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from partner_signals.adapters import ADAPTERS, Planned
from partner_signals.adapters.messaging import (
    DEFAULT_NUDGE_AFTER_MINUTES,
    PHONE_FIELDS,
    MessagingAdapter,
)
from partner_signals.readers import OUTBOX as OUTBOX_READER
from partner_signals.readers import Position, read_position, save_position

log = logging.getLogger(__name__)

CANONICAL_TABLE = "canonical.canonical_events"
INSERT_CHUNK = 5000
# Without a loaded_at column the reader cursors on received_at and re-reads this much
# behind it on every call: dbt appends rows whose received_at is older than ones it
# appended before (its raw-id lookback), and re-enqueueing is harmless (idempotency key).
RECEIVED_AT_OVERLAP = timedelta(minutes=15)


@dataclass(frozen=True)
class AdapterIntegration:
    integration_id: int
    adapter: str
    company_id: str
    restaurant_id: str | None
    config: Mapping[str, Any]
    # Restaurants an operator excluded from this company-wide integration.
    excluded: frozenset[str] = frozenset()

    def covers(self, restaurant_id: str | None) -> bool:
        """Company-wide integrations take every restaurant but the excluded ones; scoped
        ones only their own."""
        if self.restaurant_id is None:
            return restaurant_id not in self.excluded
        return self.restaurant_id == restaurant_id


def adapter_integrations(
    conn: sa.Connection, *, company_id: str | None = None, adapter: str | None = None
) -> list[AdapterIntegration]:
    """Enabled partner adapters (ops.integrations also holds inbound providers)."""
    rows = conn.execute(
        sa.text(
            """
            select i.integration_id, i.provider, i.company_id, i.restaurant_id, i.config,
                array(select e.restaurant_id from ops.adapter_exclusions e
                      where e.integration_id = i.integration_id) as excluded
            from ops.integrations i
            where enabled and provider = any(:adapters)
                and (cast(:c as text) is null or company_id = :c)
                and (cast(:a as text) is null or provider = :a)
            order by integration_id
            """
        ),
        {"adapters": sorted(ADAPTERS), "c": company_id, "a": adapter},
    ).all()
    return [
        AdapterIntegration(r[0], r[1], r[2], r[3], r[4] or {}, frozenset(r[5] or ())) for r in rows
    ]


def _with_prerequisites(
    conn: sa.Connection, rows: Sequence[tuple[AdapterIntegration, Planned]]
) -> list[tuple[AdapterIntegration, Planned]]:
    """The planned messages whose prerequisite (Planned.requires) is planned in this
    batch or already in the outbox; the others are dropped (a bill's clock never stopped
    for a partner that never saw it start)."""
    keys = {f"{i.integration_id}:{p.key}" for i, p in rows}
    needed = {f"{i.integration_id}:{p.requires}" for i, p in rows if p.requires} - keys
    if needed:
        keys |= set(
            conn.execute(
                sa.text("select idempotency_key from ops.outbox where idempotency_key = any(:k)"),
                {"k": sorted(needed)},
            )
            .scalars()
            .all()
        )
    return [(i, p) for i, p in rows if not p.requires or f"{i.integration_id}:{p.requires}" in keys]


def _admitted(
    conn: sa.Connection, rows: Sequence[tuple[AdapterIntegration, Planned]]
) -> list[tuple[AdapterIntegration, Planned]]:
    """Each message as its adapter admits it (Adapter.admit), the refused left out."""
    admitted = []
    for integration, planned in rows:
        message = ADAPTERS[integration.adapter].admit(conn, integration.company_id, planned)
        if message is not None:
            admitted.append((integration, message))
    return admitted


def _insert(conn: sa.Connection, rows: Sequence[tuple[AdapterIntegration, Planned]]) -> int:
    """Insert planned messages; an idempotency key already present is skipped."""
    rows = _admitted(conn, _with_prerequisites(conn, rows))
    inserted = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        result = conn.execute(
            sa.text(
                """
                insert into ops.outbox (integration_id, adapter, company_id, restaurant_id,
                    idempotency_key, event_id, event_type, payload, version)
                select * from unnest(
                    cast(:iid as bigint[]), cast(:adapter as text[]), cast(:company as text[]),
                    cast(:restaurant as text[]), cast(:ikey as text[]), cast(:eid as text[]),
                    cast(:etype as text[]), cast(:payload as jsonb[]), cast(:version as int[]))
                on conflict (idempotency_key) do nothing
                """
            ),
            {
                "iid": [i.integration_id for i, _ in chunk],
                "adapter": [i.adapter for i, _ in chunk],
                "company": [i.company_id for i, _ in chunk],
                "restaurant": [p.payload.get("restaurant_id") or i.restaurant_id for i, p in chunk],
                "ikey": [f"{i.integration_id}:{p.key}" for i, p in chunk],
                "eid": [p.event_id for _, p in chunk],
                "etype": [p.event_type for _, p in chunk],
                "payload": [orjson.dumps(p.payload).decode() for _, p in chunk],
                "version": [p.version for _, p in chunk],
            },
        )
        inserted += result.rowcount
    return inserted


def enqueue_events(conn: sa.Connection, events: Iterable[Mapping[str, Any]]) -> int:
    """Fan canonical events out to the enabled, subscribed integrations in scope; returns
    how many outbox rows were new. Safe to call again with the same events."""
    by_company: dict[str, list[AdapterIntegration]] = defaultdict(list)
    for integration in adapter_integrations(conn):
        by_company[integration.company_id].append(integration)
    if not by_company:
        return 0
    planned: list[tuple[AdapterIntegration, Planned]] = []
    for event in events:
        for integration in by_company.get(str(event["company_id"]), ()):
            if integration.covers(event.get("restaurant_id")):
                adapter = ADAPTERS[integration.adapter]
                planned += [(integration, p) for p in adapter.plan_event(integration.config, event)]
    return _insert(conn, planned)


def enqueue_signal(
    conn: sa.Connection,
    *,
    company_id: str,
    restaurant_id: str,
    signal: str,
    key: str,
    value: Mapping[str, Any],
) -> int:
    """Push a signal value to each subscribed integration if it changed since the last
    push to it: the first value is version 1, a changed one the next version marked as a
    correction of the previous; an unchanged value sends nothing. Returns rows enqueued."""
    payload = orjson.dumps(dict(value)).decode()
    planned: list[tuple[AdapterIntegration, Planned]] = []
    for integration in adapter_integrations(conn, company_id=company_id):
        adapter = ADAPTERS[integration.adapter]
        if not integration.covers(restaurant_id) or signal not in adapter.subscribed_signals(
            integration.config
        ):
            continue
        # One statement decides the version, so two writers never hand out the same one;
        # jsonb equality ignores key order, so a re-serialised equal value is unchanged.
        version = conn.execute(
            sa.text(
                """
                insert into ops.adapter_sync_state (integration_id, signal, key, version, value)
                values (:i, :s, :k, 1, cast(:v as jsonb))
                on conflict (integration_id, signal, key) do update
                    set version = ops.adapter_sync_state.version + 1,
                        value = excluded.value,
                        updated_at = now()
                    where ops.adapter_sync_state.value is distinct from excluded.value
                returning version
                """
            ),
            {
                "i": integration.integration_id,
                "s": signal,
                "k": f"{restaurant_id}:{key}",
                "v": payload,
            },
        ).scalar()
        if version is None:
            continue
        message = adapter.plan_signal(
            integration.config,
            company_id=company_id,
            restaurant_id=restaurant_id,
            signal=signal,
            key=key,
            value=value,
            version=int(version),
        )
        if message is not None:
            planned.append((integration, message))
    return _insert(conn, planned)


# -- reading canonical events --------------------------------------------------------------


def _columns(conn: sa.Connection, table: str) -> set[str] | None:
    if conn.execute(sa.text("select to_regclass(:t)"), {"t": table}).scalar() is None:
        return None
    schema, _, name = table.rpartition(".")
    rows: list[str] = list(
        conn.execute(
            sa.text(
                "select column_name from information_schema.columns "
                "where table_schema = coalesce(nullif(:s, ''), current_schema()) and table_name = :n"
            ),
            {"s": schema, "n": name},
        )
        .scalars()
        .all()
    )
    return set(rows)


def _parse_cursor(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    at, _, last_id = cursor.partition("|")
    return at, last_id


def enqueue_new_canonical_events(
    engine: sa.Engine,
    cursor: str | None,
    *,
    table: str = CANONICAL_TABLE,
    batch_size: int = 5000,
    max_events: int = 100_000,
) -> str | None:
    """Enqueue canonical events added since `cursor` and return the new cursor.
    Cursor: "<loaded_at ISO>|<id>", ordered by (loaded_at, id) so late events (older
    occurred_at) are still seen; falls back to received_at with an overlap while the
    table has no loaded_at. No table yet: the cursor comes back as is."""
    return _enqueue_after(
        engine, cursor, table=table, batch_size=batch_size, max_events=max_events
    ).cursor


@dataclass(frozen=True)
class EnqueuedEvents:
    """One pass over new canonical events: where it stopped, how many events it read,
    how many outbox rows they made, and whether more were left for the next pass."""

    cursor: str | None
    read: int = 0
    queued: int = 0
    more: bool = False


def enqueue_events_after_saved_position(
    engine: sa.Engine,
    *,
    table: str = CANONICAL_TABLE,
    max_events: int = 100_000,
    reader: str = OUTBOX_READER,
) -> EnqueuedEvents:
    """Enqueue the canonical events loaded after the outbox's position in
    ops.canonical_readers, and move the position to the last one read. What the outbox
    asset does on every materialization, whoever asks for it."""
    with engine.connect() as conn:
        saved = read_position(conn, reader)
        if not adapter_integrations(conn):
            # No partner to send to: skip to the newest event rather than read them all
            # (an integration enabled later starts from then, as with events read).
            newest = _newest(conn, table)
            if newest is not None and (saved is None or newest != saved):
                with engine.begin() as write:
                    save_position(write, reader, newest)
            return EnqueuedEvents(newest.as_cursor() if newest else None)
    done = _enqueue_after(
        engine, saved.as_cursor() if saved else None, table=table, max_events=max_events
    )
    position = Position.from_cursor(done.cursor)
    if position is not None and done.read:
        with engine.begin() as conn:
            save_position(conn, reader, position)
    return done


def _newest(conn: sa.Connection, table: str) -> Position | None:
    columns = _columns(conn, table)
    if columns is None or "loaded_at" not in columns:
        return None
    row = conn.execute(
        sa.text(
            f"select loaded_at, id::text from {table} order by loaded_at desc, id::text desc limit 1"
        )
    ).first()
    return Position(row[0], row[1]) if row else None


def _enqueue_after(
    engine: sa.Engine,
    cursor: str | None,
    *,
    table: str,
    batch_size: int = 5000,
    max_events: int,
) -> EnqueuedEvents:
    with engine.connect() as conn:
        columns = _columns(conn, table)
    if columns is None:
        return EnqueuedEvents(cursor)
    column = "loaded_at" if "loaded_at" in columns else "received_at"
    position = _parse_cursor(cursor)
    if position is not None and column == "received_at":
        at = datetime.fromisoformat(position[0]) - RECEIVED_AT_OVERLAP
        position = (at.isoformat(), "")
    seen = queued = 0
    more = False
    while seen < max_events:
        with engine.begin() as conn:
            rows: list[Any] = list(
                conn.execute(
                    sa.text(
                        f"""
                        select *, {column} as cursor_at from {table}
                        where cast(:at as timestamptz) is null
                            or ({column}, id::text) > (cast(:at as timestamptz), :id)
                        order by {column}, id::text
                        limit :n
                        """
                    ),
                    {
                        "at": position[0] if position else None,
                        "id": position[1] if position else "",
                        "n": batch_size,
                    },
                )
                .mappings()
                .all()
            )
            if not rows:
                break
            queued += enqueue_events(conn, rows)
        last = rows[-1]
        position = (last["cursor_at"].isoformat(), str(last["id"]))
        seen += len(rows)
        cursor = f"{position[0]}|{position[1]}"
        more = len(rows) == batch_size
        if not more:
            break
    return EnqueuedEvents(cursor, read=seen, queued=queued, more=more)


def enqueue_unpaid_bill_nudges(
    conn: sa.Connection,
    *,
    now: datetime,
    table: str = CANONICAL_TABLE,
    window: timedelta = timedelta(hours=12),
) -> int:
    """Enqueue one nudge per bill requested more than the integration's threshold ago
    and still neither paid nor cancelled, for every enabled messaging integration. Bills
    older than `window` are left alone: nobody wants a nudge about last week's dinner."""
    integrations = adapter_integrations(conn, adapter="messaging")
    if not integrations or _columns(conn, table) is None:
        return 0
    adapter = ADAPTERS["messaging"]
    assert isinstance(adapter, MessagingAdapter)
    planned: list[tuple[AdapterIntegration, Planned]] = []
    for integration in integrations:
        minutes = float(integration.config.get("nudge_after_minutes", DEFAULT_NUDGE_AFTER_MINUTES))
        bills = (
            conn.execute(
                sa.text(
                    f"""
                    with bills as (
                        select distinct on (restaurant_id, order_id)
                            id::text as event_id, company_id, restaurant_id, order_id,
                            occurred_at as bill_requested_at, data
                        from {table}
                        where company_id = :c
                            and (cast(:r as text) is null or restaurant_id = :r)
                            and type = 'order.bill_requested'
                            and occurred_at <= :due and occurred_at >= :oldest
                        order by restaurant_id, order_id, occurred_at
                    )
                    select * from bills
                    where not exists (
                        select 1 from {table} settled
                        where settled.company_id = bills.company_id
                            and settled.restaurant_id = bills.restaurant_id
                            and settled.order_id = bills.order_id
                            and settled.type in ('order.paid', 'payment.succeeded',
                                                 'invoice.paid', 'order.cancelled')
                    )
                    """
                ),
                {
                    "c": integration.company_id,
                    "r": integration.restaurant_id,
                    "due": now - timedelta(minutes=minutes),
                    "oldest": now - window,
                },
            )
            .mappings()
            .all()
        )
        for bill in bills:
            if not integration.covers(bill["restaurant_id"]):
                continue
            data = bill["data"] or {}
            message = adapter.plan_nudge(
                integration.config,
                {
                    **bill,
                    "table_id": data.get("table_id"),
                    "phone": next((data[f] for f in PHONE_FIELDS if data.get(f)), None),
                    "minutes_unpaid": (now - bill["bill_requested_at"]).total_seconds() // 60,
                },
            )
            if message is not None:
                planned.append((integration, message))
    return _insert(conn, planned)
