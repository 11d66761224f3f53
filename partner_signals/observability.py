"""Gauges read from PostgreSQL when Prometheus scrapes: pushes waiting, dead letters, each
signal's lag behind the events that landed, and provider events that map to nothing.

docs/operations.md lists every metric and the alert rules built on them. Labels are small
fixed sets (adapter, signal, source, provider event name): never ids, keys or secrets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from partner_signals.catalogue import lineage
from partner_signals.catalogue import signals as catalogue
from partner_signals.catalogue.sources import RAW_TABLES

log = logging.getLogger(__name__)

# docs/benchmarks.md: an event posted to ingest is visible in the marts within 60 s at p95.
FRESHNESS_GOAL_SECONDS = 60.0
# The dbt model that counts landed provider events whose name or status maps to nothing.
UNMAPPED_RELATION = "marts.unmapped_events"
# Provider event names come from outside: past this many series the rest are summed into
# one per source, so an integration sending invented names cannot blow up Prometheus.
UNMAPPED_MAX_SERIES = 100
UNMAPPED_OTHER = "(other)"
LABEL_MAX_CHARS = 80

# The gauges' names (docs/operations.md; the alert rules and the dashboard use them).
PUSHES_PENDING = "partner_signals_pushes_pending"
PUSHES_OLDEST_PENDING = "partner_signals_pushes_oldest_pending_seconds"
DEAD_LETTERS_WAITING = "partner_signals_dead_letters_waiting"
SIGNAL_LAG = "partner_signals_signal_lag_seconds"
UNMAPPED_EVENTS = "partner_signals_unmapped_events"
GAUGES_UP = "partner_signals_gauges_up"
GAUGES_REFRESH = "partner_signals_gauges_refresh_seconds"
GAUGE_NAMES = (
    PUSHES_PENDING,
    PUSHES_OLDEST_PENDING,
    DEAD_LETTERS_WAITING,
    SIGNAL_LAG,
    UNMAPPED_EVENTS,
    GAUGES_UP,
    GAUGES_REFRESH,
)


@dataclass(frozen=True)
class SignalLag:
    """How far a signal's mart is behind the events that landed."""

    signal: str
    relation: str
    # Age of the oldest landed event the mart does not reflect yet; 0 once it caught up.
    seconds: float
    # When that event was received; None when nothing is waiting.
    waiting_since: datetime | None
    # The newest canonical loaded_at the mart's stalest incremental model has processed;
    # None when the mart (or one of them) was never built on any event.
    processed_through: datetime | None
    models: tuple[str, ...]  # the incremental models whose watermarks bound it


def signal_lags(
    conn: psycopg.Connection[Any], signals: Sequence[catalogue.Signal] | None = None
) -> list[SignalLag]:
    """Each signal's lag: the age of the oldest landed event its mart does not reflect yet.

    A mart holds every canonical event loaded up to the watermark W of the stalest
    incremental model it reads through (the incremental protocol). Waiting for it are the
    canonical events loaded after W, and the events landed in raw but not loaded into
    canonical_events yet. A quiet restaurant makes no lag: unlike "last updated", this
    stays 0 overnight and grows only while events wait. Bounded reads: index ranges on
    canonical_events (loaded_at) and the raw tables' primary keys.
    """
    chosen = tuple(catalogue.signals() if signals is None else signals)
    models = {s.name: lineage.watermarked_models(s.model) for s in chosen}
    row = conn.execute(
        """
        select now(),
            to_regclass('canonical.canonical_events') is not null,
            to_regclass('canonical.dbt_incremental_watermarks') is not null,
            to_regclass('canonical.live_events') is not null,
            array(
                select to_regclass(r) is not null
                from unnest(%(relations)s::text[]) with ordinality as t(r, n) order by n
            )
        """,
        {"relations": [s.relation for s in chosen]},
    ).fetchone()
    assert row is not None
    now, has_canonical, has_watermarks, has_live, built = row
    marks: dict[str, datetime | None] = {}
    if has_watermarks:
        wanted = sorted({m for names in models.values() for m in names})
        # '-infinity': built while canonical_events was empty, so nothing processed yet.
        for model, loaded_at in conn.execute(
            """
            select model, case when loaded_at = '-infinity' then null else loaded_at end
            from canonical.dbt_incremental_watermarks where model = any(%s)
            """,
            (wanted,),
        ):
            marks[str(model)] = loaded_at

    def processed_through(signal: catalogue.Signal, exists: bool) -> datetime | None:
        through = [marks.get(m) for m in models[signal.name]]
        if not exists or not through or any(t is None for t in through):
            return None
        return min(t for t in through if t is not None)

    through = {s.name: processed_through(s, bool(e)) for s, e in zip(chosen, built, strict=True)}
    not_loaded = _oldest_not_loaded(conn, has_canonical=has_canonical, has_live=has_live)
    first_after: dict[datetime | None, datetime | None] = {}
    for mark in set(through.values()):
        first_after[mark] = (
            _oldest_loaded_after(conn, mark) if has_canonical else None  # nothing loaded
        )
    lags = []
    for signal in chosen:
        mark = through[signal.name]
        waiting = [t for t in (first_after[mark], not_loaded) if t is not None]
        since = min(waiting) if waiting else None
        seconds = max(0.0, (now - since).total_seconds()) if since else 0.0
        lags.append(
            SignalLag(signal.name, signal.relation, seconds, since, mark, models[signal.name])
        )
    return lags


def _oldest_loaded_after(conn: psycopg.Connection[Any], mark: datetime | None) -> datetime | None:
    """The oldest received_at among canonical events loaded after `mark` (None: from the
    start). A run loads its events at one loaded_at (its transaction time) and a later run
    loads events received later, so the first batch after the mark holds the oldest."""
    if mark is None:
        # Never built: the first batch can be the whole history (a first full build),
        # so one row of it stands for it; the lag is that old whichever row it is.
        row = conn.execute(
            "select received_at from canonical.canonical_events "
            "order by loaded_at, (id::text) limit 1"
        ).fetchone()
        return row[0] if row else None
    row = conn.execute(
        """
        select min(received_at) from canonical.canonical_events
        where loaded_at = (
            select min(loaded_at) from canonical.canonical_events
            where loaded_at > %s
        )
        """,
        (mark,),
    ).fetchone()
    return row[0] if row else None


def _oldest_not_loaded(
    conn: psycopg.Connection[Any], *, has_canonical: bool, has_live: bool
) -> datetime | None:
    """The oldest received_at among landed events not in canonical_events yet.

    live_events' tail is exactly those rows that canonical_events will take (events the
    signals understand, about a known restaurant), so a raw row that is never loaded does
    not count as waiting. Without that view (a deployment where dbt never ran) every raw
    row above canonical_events' newest raw id is waiting.
    """
    if has_live:
        try:
            with conn.transaction():
                # Prepared: planning the view (every source's staging stacked) costs about
                # 100-150 ms, running it a few ms; a kept connection plans it once.
                row = conn.execute(
                    "select min(received_at) from canonical.live_events where loaded_at is null",
                    prepare=True,
                ).fetchone()
            return row[0] if row else None
        except psycopg.Error as exc:  # a staging view broken or missing: count raw rows
            log.warning("live_events unreadable, lag from raw ids: %s", _reason(exc))
    oldest: list[datetime] = []
    for table in RAW_TABLES:
        after = (
            "(select coalesce(max(raw_id), 0) from canonical.canonical_events "
            "where raw_table = %(table)s)"
            if has_canonical
            else "0"
        )
        row = conn.execute(
            f"select received_at from raw.{table} where id > {after} order by id limit 1",
            {"table": table},
        ).fetchone()
        if row:
            oldest.append(row[0])
    return min(oldest) if oldest else None


# --- the gauges -----------------------------------------------------------------------

Reader = Callable[[psycopg.Connection[Any]], Iterable[Metric]]


def _label(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= LABEL_MAX_CHARS else text[: LABEL_MAX_CHARS - 1] + "…"


def pushes(conn: psycopg.Connection[Any]) -> Iterable[Metric]:
    """Outbox rows not delivered yet per adapter, and how long the oldest has waited
    (since it was enqueued; retries in backoff included). Every adapter has a series."""
    from partner_signals.adapters import ADAPTERS  # the registry pulls in httpx and friends

    by_adapter: dict[str, tuple[int, float]] = {name: (0, 0.0) for name in ADAPTERS}
    for adapter, pending, oldest in conn.execute(
        """
        select adapter, count(*), extract(epoch from now() - min(created_at))::float8
        from ops.outbox where status = 'pending' group by adapter
        """
    ):
        by_adapter[str(adapter)] = (int(pending), max(0.0, float(oldest)))
    pending_family = GaugeMetricFamily(
        PUSHES_PENDING,
        "Pushes in the outbox not delivered yet (due or backing off), by adapter",
        labels=["adapter"],
    )
    oldest_family = GaugeMetricFamily(
        PUSHES_OLDEST_PENDING,
        "Age of the oldest push not delivered yet, since it was enqueued (0: none), by adapter",
        labels=["adapter"],
    )
    for adapter, (pending, oldest) in sorted(by_adapter.items()):
        pending_family.add_metric([_label(adapter)], pending)
        oldest_family.add_metric([_label(adapter)], oldest)
    return [pending_family, oldest_family]


def dead_letters(conn: psycopg.Connection[Any]) -> Iterable[Metric]:
    """Dead letters not replayed yet per adapter: what `deliveries replay` would re-queue."""
    from partner_signals.adapters import ADAPTERS

    by_adapter: dict[str, int] = dict.fromkeys(ADAPTERS, 0)
    for adapter, waiting in conn.execute(
        """
        select o.adapter, count(*)
        from ops.dead_letters d join ops.outbox o on o.delivery_id = d.delivery_id
        where d.replayed_at is null and o.status = 'dead'
        group by o.adapter
        """
    ):
        by_adapter[str(adapter)] = int(waiting)
    family = GaugeMetricFamily(
        DEAD_LETTERS_WAITING,
        "Dead letters waiting for replay (partner-signals deliveries replay), by adapter",
        labels=["adapter"],
    )
    for adapter, waiting in sorted(by_adapter.items()):
        family.add_metric([_label(adapter)], waiting)
    return [family]


def signal_lag(conn: psycopg.Connection[Any]) -> Iterable[Metric]:
    family = GaugeMetricFamily(
        SIGNAL_LAG,
        "Age of the oldest landed event a signal's mart does not reflect yet (0: caught up; "
        f"goal: under {FRESHNESS_GOAL_SECONDS:.0f} s at p95)",
        labels=["signal"],
    )
    for lag in signal_lags(conn):
        family.add_metric([lag.signal], lag.seconds)
    return [family]


def unmapped_events(conn: psycopg.Connection[Any]) -> Iterable[Metric]:
    """Landed events whose name or status maps to nothing, or that are quarantined for
    naming a restaurant that is not their company's, per source, provider event name and
    reason, from the dbt model; no series (and no error) before the model is built."""
    family = GaugeMetricFamily(
        UNMAPPED_EVENTS,
        "Landed provider events left out of every signal, by source, provider event name "
        "and reason (unknown_event, unknown_status: the name or status maps to nothing; "
        f"foreign_restaurant: quarantined) (from {UNMAPPED_RELATION})",
        labels=["source", "provider_event_type", "reason"],
    )
    exists = conn.execute("select to_regclass(%s) is not null", (UNMAPPED_RELATION,)).fetchone()
    if not exists or not exists[0]:
        return [family]
    rows = conn.execute(
        f"""
        with totals as (
            -- The model has a row per company; the gauge is per source, name and reason.
            select source, provider_event_type, reason, sum(events) as events
            from {UNMAPPED_RELATION} group by source, provider_event_type, reason
        ),
        ranked as (
            select source, provider_event_type, reason, events,
                row_number() over (
                    order by events desc, source, provider_event_type, reason
                ) as rank
            from totals
        )
        select source,
            case when rank <= %(keep)s then provider_event_type else %(other)s end,
            reason,
            sum(events)::bigint
        from ranked group by 1, 2, 3 order by 1, 2, 3
        """,
        {"keep": UNMAPPED_MAX_SERIES, "other": UNMAPPED_OTHER},
    ).fetchall()
    for source, event_type, reason, events in rows:
        family.add_metric([_label(source), _label(event_type), _label(reason)], float(events or 0))
    return [family]


READERS: tuple[tuple[str, Reader], ...] = (
    ("pushes", pushes),
    ("dead_letters", dead_letters),
    ("signal_lag", signal_lag),
    ("unmapped_events", unmapped_events),
)


class DatabaseGauges(Collector):
    """The readers above, run when Prometheus scrapes, at most once per `cache_seconds`
    however many scrapers ask (each scrape inside that window gets the same values). One
    kept read-only connection (made again when it breaks), each statement bounded by
    `timeout_ms`; a reader that fails reports `partner_signals_gauges_up{reader} 0` and
    leaves the others be."""

    def __init__(
        self,
        url: str,
        *,
        readers: Sequence[tuple[str, Reader]] = READERS,
        cache_seconds: float = 10.0,
        timeout_ms: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.readers = tuple(readers)
        self.cache_seconds = cache_seconds
        self.timeout_ms = timeout_ms
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: list[Metric] | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._read_at = 0.0
        self.refreshes = 0  # how many times the database was asked (tests, debugging)

    def describe(self) -> Iterable[Metric]:
        return []  # so registering does not query the database

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if self._cached is None or self.clock() - self._read_at >= self.cache_seconds:
                self._cached = self._read()
                self._read_at = self.clock()
                self.refreshes += 1
            return list(self._cached)

    def _read(self) -> list[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily(
            GAUGES_UP,
            "1 when the reader's query succeeded at the last refresh, else 0",
            labels=["reader"],
        )
        metrics: list[Metric] = []
        conn = self._connection()
        for name, reader in self.readers:
            if conn is None or conn.broken:
                up.add_metric([name], 0)
                continue
            try:
                metrics.extend(reader(conn))
                up.add_metric([name], 1)
            except psycopg.Error as exc:
                log.warning("database gauges: %s failed: %s", name, _reason(exc))
                up.add_metric([name], 0)
        seconds = GaugeMetricFamily(
            GAUGES_REFRESH,
            "Time the last refresh of the database gauges took",
        )
        seconds.add_metric([], time.perf_counter() - started)
        return [*metrics, up, seconds]

    def _connection(self) -> psycopg.Connection[Any] | None:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            self._conn.close()
        try:
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=3,
                application_name="partner-signals-gauges",
                options=(
                    f"-c statement_timeout={int(self.timeout_ms)} "
                    "-c default_transaction_read_only=on"
                ),
            )
        except psycopg.Error as exc:
            # The class only: a connection error can quote the server's address.
            log.warning("database gauges: cannot connect (%s)", type(exc).__name__)
            self._conn = None
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _reason(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return f"{type(exc).__name__}: {primary}" if primary else type(exc).__name__


def gauges_registry(
    url: str, *, extra: Iterable[Collector] = (), cache_seconds: float = 10.0
) -> CollectorRegistry:
    """What a process serving the gauges exposes: its own metrics (every process's under
    PROMETHEUS_MULTIPROC_DIR), the database gauges, and `extra` collectors."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    registry.register(DatabaseGauges(url, cache_seconds=cache_seconds))
    for collector in extra:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The Prometheus text of `registry`, or of this process (every worker's under
    PROMETHEUS_MULTIPROC_DIR, as uvicorn --workers runs them)."""
    if registry is None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
