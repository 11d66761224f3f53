"""The platforms step: platform webhooks and POS events into ops.external_orders, the POS's
progress into status calls in the outbox, and both directions into ops.sync_log.

It runs beside the push worker (each pass of `pushes run`, and `platforms sync`), off
ingest's hot path: ingest lands raw rows exactly as before, and this reads them after by
raw id. Ids are handed out before commit, so a row with a lower id can commit after one
with a higher id; a pass therefore reads past its saved position but only moves it up to
the first row received less than `SAFETY` ago (ingest commits within its 2 s queue wait
plus its 5 s statement timeout). Rows read twice are harmless: the order upsert and the
status ranking are idempotent, and each status call has an idempotency key
(order, status) that the outbox keeps once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from partner_signals.catalogue.sources import Source, sources
from partner_signals.platforms.shapes import shapes
from partner_signals.providers.base import MalformedEvent, locate, require_str

log = logging.getLogger(__name__)

SAFETY = timedelta(seconds=10)
# A status older than this is not sent: the order is long gone (a first pass over the
# history, a platform connected late); the external order's status still moves.
MAX_CALL_AGE = timedelta(hours=2)
BATCH = 20_000
# The POS events that move a linked order, and the status each means.
POS_TYPES = (
    "order.created",
    "order.item_added",
    "order.item_fired",
    "order.item_ready",
    "order.cancelled",
    "order.rejected",
)
# Forward progress; rejected and cancelled end an order and are never overwritten.
PROGRESS = ("received", "accepted", "preparing", "ready", "picked_up", "delivered")
FINAL = ("rejected", "cancelled")
MAX_ERRORS = 20

# The status an upsert leaves: the new one unless it would move the order backwards.
RANKED_STATUS = """
    case
        when ops.external_orders.status in ('rejected', 'cancelled') then ops.external_orders.status
        when excluded.status in ('rejected', 'cancelled') then excluded.status
        when array_position(cast(:progress as text[]), excluded.status)
            >= array_position(cast(:progress as text[]), ops.external_orders.status)
            then excluded.status
        else ops.external_orders.status
    end
"""


@dataclass
class SyncPass:
    """What one pass did."""

    webhooks_read: int = 0
    pos_events_read: int = 0
    orders_upserted: int = 0
    orders_linked: int = 0
    calls_queued: int = 0
    attempts_logged: int = 0
    more: bool = False
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.webhooks_read} platform webhooks and {self.pos_events_read} POS events "
            f"read: {self.orders_upserted} external orders updated, {self.orders_linked} "
            f"linked to POS orders, {self.calls_queued} status calls queued"
            + (", more waiting" if self.more else "")
        )


def _platform_sources() -> dict[str, Source]:
    return {s.name: s for s in sources() if s.delivery is not None}


def _position(conn: sa.Connection, name: str) -> int:
    found = conn.execute(
        sa.text("select last_id from ops.platform_sync_positions where raw_table = :t"),
        {"t": name},
    ).scalar()
    # The first pass reads the whole history, a batch at a time.
    return int(found) if found is not None else 0


def _save(conn: sa.Connection, name: str, last_id: int, read_id: int = 0) -> None:
    conn.execute(
        sa.text(
            "insert into ops.platform_sync_positions as p (raw_table, last_id, read_id) "
            "values (:t, :i, greatest(:i, :r)) "
            "on conflict (raw_table) do update set last_id = greatest(p.last_id, excluded.last_id), "
            "read_id = greatest(p.read_id, excluded.read_id)"
        ),
        {"t": name, "i": last_id, "r": read_id},
    )


def _read_up_to(conn: sa.Connection, name: str) -> int:
    found = conn.execute(
        sa.text("select read_id from ops.platform_sync_positions where raw_table = :t"),
        {"t": name},
    ).scalar()
    return int(found or 0)


def _window(conn: sa.Connection, table: str, last: int, limit: int) -> tuple[int, int, bool]:
    """(upto, safe, more): the highest id of the next `limit` rows, the id the position may
    move to (below the first row received within SAFETY), and whether rows remain."""
    upto = conn.execute(
        sa.text(
            f"select max(id), count(*) from (select id from raw.{table} "
            "where id > :last order by id limit :n) w"
        ),
        {"last": last, "n": limit},
    ).one()
    if upto[0] is None:
        return last, last, False
    recent = conn.execute(
        sa.text(
            f"select min(id) from raw.{table} where id > :last and id <= :upto "
            "and received_at >= now() - make_interval(secs => :s)"
        ),
        {"last": last, "upto": upto[0], "s": SAFETY.total_seconds()},
    ).scalar()
    safe = int(upto[0]) if recent is None else int(recent) - 1
    return int(upto[0]), safe, int(upto[1]) >= limit


def _dig(payload: Any, path: tuple[str, ...]) -> Any:
    node = payload
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def platform_status(src: Source, event_type: str, payload: Any) -> tuple[str | None, str]:
    """(canonical status or None, the platform's own status word) of one platform event,
    by the source's catalogue vocabulary (as its staging model translates it)."""
    platform = src.delivery
    assert platform is not None
    if platform.not_applied_when_true and _dig(payload, platform.not_applied_when_true) is True:
        return None, event_type
    if event_type in platform.statuses:
        return platform.statuses[event_type], event_type
    if event_type in platform.update_events:
        word = _dig(payload, platform.order_status)
        if isinstance(word, str):
            return platform.status_words.get(word.strip().lower()), word
    return None, event_type


def _inbound(conn: sa.Connection, done: SyncPass, started: datetime) -> None:
    platforms = _platform_sources()
    last = _position(conn, "webhook_events")
    upto, safe, more = _window(conn, "webhook_events", last, BATCH)
    done.more |= more
    if upto == last:
        return
    rows = conn.execute(
        sa.text(
            "select id, source, company_id, event_type, received_at, body "
            "from raw.webhook_events where id > :last and id <= :upto "
            "and source = any(:p) order by id"
        ),
        {"last": last, "upto": upto, "p": sorted(platforms)},
    ).all()
    upserts: list[dict[str, Any]] = []
    per_window: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, []])
    # Rows read by an earlier pass (newer than SAFETY then) are applied again, not logged.
    seen = _read_up_to(conn, "webhook_events")
    for r in rows:
        src = platforms[r.source]
        assert src.delivery is not None
        window = per_window[(r.company_id, r.source)] if r.id > seen else [0, []]
        window[0] += 1
        try:
            payload = orjson.loads(r.body)
            external_id = require_str(payload, *src.delivery.order_id)
            restaurant = locate(src.restaurant, payload, {})
        except (orjson.JSONDecodeError, MalformedEvent) as exc:
            if len(window[1]) < MAX_ERRORS:
                window[1].append(f"raw {r.id}: {exc}")
            continue
        status, word = platform_status(src, r.event_type, payload)
        upserts.append(
            {
                "c": r.company_id,
                "p": r.source,
                "x": external_id,
                "r": restaurant,
                "s": status,
                "w": word,
                "raw": r.body,
                "at": r.received_at,
                "progress": list(PROGRESS),
            }
        )
    if upserts:
        conn.execute(
            sa.text(
                f"""
                insert into ops.external_orders as e (company_id, platform, external_order_id,
                    restaurant_id, status, platform_status, raw, received_at, last_event_at)
                values (:c, :p, :x, :r, coalesce(:s, 'received'), :w, cast(:raw as jsonb),
                    :at, :at)
                on conflict (company_id, platform, external_order_id) do update set
                    restaurant_id = coalesce(e.restaurant_id, excluded.restaurant_id),
                    status = case when cast(:s as text) is null then e.status
                                  else {RANKED_STATUS} end,
                    platform_status = excluded.platform_status,
                    raw = excluded.raw,
                    last_event_at = excluded.last_event_at,
                    updated_at = now()
                where e.last_event_at is null or excluded.last_event_at >= e.last_event_at
                """.replace("ops.external_orders.", "e.")
            ),
            upserts,
        )
    done.webhooks_read += len(rows)
    done.orders_upserted += len(upserts)
    for (company, platform), (count, errors) in sorted(per_window.items()):
        log_sync(
            conn,
            company_id=company,
            platform=platform,
            sync_type="order_webhooks",
            direction="inbound",
            started_at=started,
            records=count,
            errors=errors,
        )
        done.errors += errors
    _save(conn, "webhook_events", safe, upto)


@dataclass
class _Linked:
    company_id: str
    platform: str
    external_order_id: str
    pos_order_id: str
    restaurant_id: str | None
    lines: set[str]
    ready: set[str]
    fired: bool
    calls: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    # (status, pos event id, occurred_at ISO, reason)

    status: str = "accepted"

    def want(self, status: str, event_id: str, at: datetime, reason: str | None) -> None:
        self.calls.append((status, event_id, at.isoformat(), reason))
        self.status = ranked(self.status, status)


def ranked(old: str, new: str) -> str:
    """The status an order moves to: never backwards, never out of rejected or cancelled."""
    if old in FINAL:
        return old
    if new in FINAL:
        return new
    return new if PROGRESS.index(new) >= PROGRESS.index(old) else old


def _outbound(conn: sa.Connection, done: SyncPass, now: datetime) -> None:
    last = _position(conn, "order_events")
    upto, safe, more = _window(conn, "order_events", last, BATCH)
    done.more |= more
    if upto == last:
        return
    platforms = _platform_sources()
    window = {"last": last, "upto": upto}
    # 1. Links: a delivery order.created naming its platform order.
    created = conn.execute(
        sa.text(
            "select id, company_id, restaurant_id, event_id, occurred_at, body "
            "from raw.order_events where id > :last and id <= :upto "
            "and event_type = 'order.created' and strpos(body, 'platform_order_id') > 0 "
            "order by id"
        ),
        window,
    ).all()
    links: list[dict[str, Any]] = []
    for r in created:
        body = orjson.loads(r.body)
        data = body.get("data") or {}
        platform, external = data.get("platform"), data.get("platform_order_id")
        if data.get("channel") != "delivery" or platform not in platforms or not external:
            continue
        links.append(
            {
                "c": r.company_id,
                "p": platform,
                "x": str(external),
                "o": str(body.get("order_id")),
                "r": r.restaurant_id,
                "at": r.occurred_at,
                "progress": list(PROGRESS),
            }
        )
    if links:
        conn.execute(
            sa.text(
                f"""
                insert into ops.external_orders as e (company_id, platform, external_order_id,
                    restaurant_id, pos_order_id, status, last_event_at)
                values (:c, :p, :x, :r, :o, 'accepted', null)
                on conflict (company_id, platform, external_order_id) do update set
                    pos_order_id = excluded.pos_order_id,
                    restaurant_id = coalesce(e.restaurant_id, excluded.restaurant_id),
                    status = {RANKED_STATUS},
                    updated_at = now()
                """.replace("ops.external_orders.", "e.")
            ),
            links,
        )
        done.orders_linked += len(links)
    # 2. Every event of a linked order in the window, the linking ones included, in order.
    rows = conn.execute(
        sa.text(
            """
            select r.id, r.company_id, r.event_id, r.event_type, r.occurred_at, r.body,
                e.platform, e.external_order_id, e.pos_order_id, e.restaurant_id,
                e.pos_lines, e.pos_lines_ready, e.pos_fired, e.status
            from raw.order_events r
            join ops.external_orders e
                on e.company_id = r.company_id
                and e.pos_order_id = (cast(r.body as jsonb) ->> 'order_id')
                -- POS order ids are often a restaurant's own counter: the same id at
                -- another restaurant of the company is another order.
                and e.restaurant_id = r.restaurant_id
            where r.id > :last and r.id <= :upto and r.event_type = any(:types)
            order by r.id
            """
        ),
        {**window, "types": list(POS_TYPES)},
    ).all()
    done.pos_events_read += len(rows)
    orders: dict[tuple[str, str, str], _Linked] = {}
    for r in rows:
        key = (r.company_id, r.platform, r.external_order_id)
        order = orders.get(key)
        if order is None:
            order = orders[key] = _Linked(
                r.company_id,
                r.platform,
                r.external_order_id,
                r.pos_order_id,
                r.restaurant_id,
                set(r.pos_lines),
                set(r.pos_lines_ready),
                bool(r.pos_fired),
                status=r.status,
            )
        data = orjson.loads(r.body).get("data") or {}
        line = data.get("line_id")
        reason = data.get("reason") if isinstance(data.get("reason"), str) else None
        if r.event_type == "order.created":
            order.want("accepted", r.event_id, r.occurred_at, None)
        elif r.event_type == "order.item_added" and line:
            order.lines.add(str(line))
        elif r.event_type == "order.item_fired":
            if line:
                order.lines.add(str(line))
            if not order.fired:
                order.want("preparing", r.event_id, r.occurred_at, None)
            order.fired = True
        elif r.event_type == "order.item_ready" and line:
            order.lines.add(str(line))
            order.ready.add(str(line))
            if order.lines <= order.ready:
                order.want("ready", r.event_id, r.occurred_at, None)
        elif r.event_type == "order.cancelled":
            order.want("cancelled", r.event_id, r.occurred_at, reason)
        elif r.event_type == "order.rejected":
            order.want("rejected", r.event_id, r.occurred_at, reason)
    if orders:
        conn.execute(
            sa.text(
                "update ops.external_orders set pos_lines = cast(:lines as text[]), "
                "pos_lines_ready = cast(:ready as text[]), pos_fired = :fired, "
                "status = :status, updated_at = now() "
                "where company_id = :c and platform = :p and external_order_id = :x"
            ),
            [
                {
                    "lines": sorted(o.lines),
                    "ready": sorted(o.ready),
                    "fired": o.fired,
                    "status": o.status,
                    "c": o.company_id,
                    "p": o.platform,
                    "x": o.external_order_id,
                }
                for o in orders.values()
            ],
        )
        for o in orders.values():
            o.calls = [c for c in o.calls if datetime.fromisoformat(c[2]) >= now - MAX_CALL_AGE]
        done.calls_queued += _enqueue(conn, list(orders.values()))
    _save(conn, "order_events", safe)


def _enqueue(conn: sa.Connection, orders: list[_Linked]) -> int:
    """Each wanted status call that the order's platform takes, for the platform API
    integration covering the order's restaurant; a (order, status) already queued is kept."""
    integrations = conn.execute(
        sa.text(
            "select integration_id, company_id, provider, restaurant_id from ops.integrations "
            "where enabled and provider = any(:p) order by restaurant_id nulls last"
        ),
        {"p": [s.integration for s in shapes().values()]},
    ).all()
    rows: list[dict[str, Any]] = []
    for order in orders:
        shape = shapes().get(order.platform)
        if shape is None or not order.calls:
            continue
        target = next(
            (
                i
                for i in integrations
                if i.company_id == order.company_id
                and i.provider == shape.integration
                and i.restaurant_id in (None, order.restaurant_id)
            ),
            None,
        )
        if target is None:
            continue
        for status, event_id, at, reason in order.calls:
            if status not in shape.status_calls:
                continue
            payload = {
                "platform": order.platform,
                "status": status,
                "external_order_id": order.external_order_id,
                "pos_order_id": order.pos_order_id,
                "restaurant_id": order.restaurant_id,
                "occurred_at": at,
                "reason": reason,
            }
            rows.append(
                {
                    "i": target.integration_id,
                    "a": shape.integration,
                    "c": order.company_id,
                    "r": order.restaurant_id,
                    "k": f"{target.integration_id}:{order.platform}:"
                    f"{order.external_order_id}:{status}",
                    "e": event_id,
                    "t": f"platform.{status}",
                    "payload": orjson.dumps(payload).decode(),
                    "s": sequence_key(order.company_id, order.platform, order.external_order_id),
                }
            )
    queued = 0
    for row in rows:  # one by one, in order: delivery ids follow the POS's order
        queued += conn.execute(
            sa.text(
                "insert into ops.outbox (integration_id, adapter, company_id, restaurant_id, "
                "idempotency_key, event_id, event_type, payload, sequence_key) "
                "values (:i, :a, :c, :r, :k, :e, :t, cast(:payload as jsonb), :s) "
                "on conflict (idempotency_key) do nothing"
            ),
            row,
        ).rowcount
    return queued


def sequence_key(company_id: str, platform: str, external_order_id: str) -> str:
    """Status calls of one platform order share it: sent one after the other."""
    return f"{company_id}:{platform}:{external_order_id}"


def _attempts(conn: sa.Connection, done: SyncPass) -> None:
    """One outbound sync_log row per integration per worker window: the status calls'
    attempts written since the last pass."""
    names = [s.integration for s in shapes().values()]
    last = _position(conn, "attempts")
    rows = conn.execute(
        sa.text(
            """
            select a.integration_id, o.company_id, a.adapter, count(*) as n,
                count(*) filter (where a.outcome <> 'delivered') as failed,
                min(a.at) as started, max(a.at) as ended, max(a.attempt_id) as last_id,
                (array_agg(a.error order by a.attempt_id)
                    filter (where a.error is not null))[1:5] as errors
            from ops.delivery_attempts a join ops.outbox o using (delivery_id)
            where a.attempt_id > :last and a.adapter = any(:names)
            group by 1, 2, 3
            """
        ),
        {"last": int(last), "names": names},
    ).all()
    # What the platform acknowledged: each order's latest delivered status call.
    conn.execute(
        sa.text(
            """
            update ops.external_orders e set synced_at = d.at, synced_status = d.status
            from (
                select distinct on (o.company_id, platform, external_order_id)
                    o.company_id, a.at,
                    o.payload ->> 'platform' as platform,
                    o.payload ->> 'external_order_id' as external_order_id,
                    o.payload ->> 'status' as status
                from ops.delivery_attempts a join ops.outbox o using (delivery_id)
                where a.attempt_id > :last and a.adapter = any(:names)
                    and a.outcome = 'delivered'
                order by o.company_id, platform, external_order_id, a.at desc,
                    o.delivery_id desc
            ) d
            where e.company_id = d.company_id and e.platform = d.platform
                and e.external_order_id = d.external_order_id
                and (e.synced_at is null or d.at >= e.synced_at)
            """
        ),
        {"last": int(last), "names": names},
    )
    newest: int = conn.execute(
        sa.text("select coalesce(max(attempt_id), :last) from ops.delivery_attempts"),
        {"last": int(last)},
    ).scalar_one()
    for r in rows:
        log_sync(
            conn,
            company_id=r.company_id,
            platform=r.adapter.removesuffix("-api"),
            integration_id=r.integration_id,
            sync_type="order_status",
            direction="outbound",
            started_at=r.started,
            ended_at=r.ended,
            records=int(r.n),
            errors=list(r.errors or []),
            failed=bool(r.failed),
        )
        done.attempts_logged += int(r.n)
    _save(conn, "attempts", int(newest))


def log_sync(
    conn: sa.Connection,
    *,
    company_id: str,
    platform: str,
    sync_type: str,
    direction: str,
    started_at: datetime,
    records: int,
    errors: list[str],
    integration_id: int | None = None,
    ended_at: datetime | None = None,
    failed: bool | None = None,
) -> None:
    """One ops.sync_log row; failed when it says so, or (by default) when it has errors."""
    failed = bool(errors) if failed is None else failed
    conn.execute(
        sa.text(
            """
            insert into ops.sync_log (company_id, integration_id, platform, sync_type,
                direction, status, started_at, completed_at, failed_at, records_processed,
                errors)
            values (:c, :i, :p, :t, :d, :s, :start,
                case when :failed then null else coalesce(:end, now()) end,
                case when :failed then coalesce(:end, now()) end, :n, cast(:e as jsonb))
            """
        ),
        {
            "c": company_id,
            "i": integration_id,
            "p": platform,
            "t": sync_type,
            "d": direction,
            "s": "failed" if failed else "completed",
            "start": started_at,
            "end": ended_at,
            "failed": failed,
            "n": records,
            "e": orjson.dumps(errors[:MAX_ERRORS]).decode(),
        },
    )


def sync(engine: sa.Engine) -> SyncPass:
    """One pass, in one transaction (two passes at once take turns on an advisory lock)."""
    done = SyncPass()
    with engine.begin() as conn:
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('partner_signals.platforms'))"))
        started: datetime = conn.execute(sa.text("select now()")).scalar_one()
        _inbound(conn, done, started)
        _outbound(conn, done, started)
        _attempts(conn, done)
    return done


def sync_until_done(engine: sa.Engine, *, max_passes: int = 50) -> SyncPass:
    """Passes until nothing more waits (a backlog after downtime); the totals."""
    total = SyncPass()
    for _ in range(max_passes):
        one = sync(engine)
        for name in (
            "webhooks_read",
            "pos_events_read",
            "orders_upserted",
            "orders_linked",
            "calls_queued",
            "attempts_logged",
        ):
            setattr(total, name, getattr(total, name) + getattr(one, name))
        total.errors += one.errors
        total.more = one.more
        if not one.more:
            break
    return total
