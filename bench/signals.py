"""Signals benchmark: a month of synthetic raw events landed with COPY, then the nightly
full rebuild, the sensor's incremental run after 15 minutes of new events, and freshness.

Standalone: `.venv/bin/python -m bench.signals [--restaurants 50 --days 30]`. It makes a
database `ps_bench_signals_<random>` on the server (DATABASE_URL or the local default),
and drops it at the end unless --keep-db.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.harness import ROOT, create_database, drop_database, logger, machine, server_url
from synthetic import DEMO_RESTAURANTS, Delivery, RestaurantSpec, service_day

# The incremental run starts at this UTC time of the day after the month: dinner in the
# Gulf, late afternoon in London. Everything sent before it is loaded first.
CUT_UTC_HOUR = 16
NEW_EVENTS_MINUTES = 15
SEED = 20260201

for _key, _value in (
    ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
    ("DAGSTER_DISABLE_TELEMETRY", "1"),
    ("DO_NOT_TRACK", "1"),
):
    os.environ.setdefault(_key, _value)


log = logger("bench.signals")


# ---- data


def bench_restaurants(count: int, *, table_factor: float = 1.0) -> list[RestaurantSpec]:
    """`count` restaurants cloned from the demo ones (menus, time zones, currencies),
    each with its own id; `table_factor` scales the dining room (and so the events)."""
    specs = []
    for n in range(count):
        base = DEMO_RESTAURANTS[n % len(DEMO_RESTAURANTS)]
        specs.append(
            replace(
                base,
                restaurant_id=f"{base.restaurant_id}-{n:03d}",
                tables=max(1, round(base.tables * table_factor)),
            )
        )
    return specs


def register(conn: psycopg.Connection[Any], specs: Sequence[RestaurantSpec]) -> None:
    for company in sorted({s.company_id for s in specs}):
        conn.execute(
            "insert into ops.companies (company_id, name) values (%s, %s) on conflict do nothing",
            (company, company),
        )
    for spec in specs:
        conn.execute(
            "insert into ops.restaurants (restaurant_id, company_id, name, timezone) "
            "values (%s, %s, %s, %s) on conflict do nothing",
            (spec.restaurant_id, spec.company_id, spec.name, spec.timezone),
        )


@dataclass
class Loaded:
    pos: int = 0
    webhooks: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.pos + self.webhooks


def copy_deliveries(
    conn: psycopg.Connection[Any], deliveries: Sequence[Delivery], seen: set[tuple[str, str, str]]
) -> Loaded:
    """Land deliveries in send order with COPY, the way ingest would store them (a
    redelivery already landed is not stored again; received_at is the send time)."""
    loaded = Loaded()
    pos_rows = []
    hook_rows = []
    for d in deliveries:
        key = (d.company_id, d.source, d.event_id)
        if key in seen:
            continue
        seen.add(key)
        if d.source == "pos":
            pos_rows.append(
                (
                    d.company_id,
                    d.restaurant_id,
                    d.event_id,
                    d.event_type,
                    d.occurred_at,
                    d.send_at,
                    d.body.decode(),
                )
            )
        else:
            hook_rows.append(
                (d.source, d.company_id, d.event_id, d.event_type, d.send_at, d.body.decode())
            )
    with conn.cursor() as cur:
        with cur.copy(
            "copy raw.order_events (company_id, restaurant_id, event_id, event_type, "
            "occurred_at, received_at, headers, body) from stdin"
        ) as copy:
            for p in pos_rows:
                copy.write_row((*p[:6], "{}", p[6]))
        with cur.copy(
            "copy raw.webhook_events (source, company_id, event_id, event_type, received_at, "
            "headers, body) from stdin"
        ) as copy:
            for h in hook_rows:
                copy.write_row((*h[:5], "{}", h[5]))
    loaded.pos, loaded.webhooks = len(pos_rows), len(hook_rows)
    return loaded


def land_between(
    url: str,
    deliveries: Sequence[Delivery],
    seen: set[tuple[str, str, str]],
) -> Loaded:
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        loaded = copy_deliveries(conn, deliveries, seen)
    loaded.seconds = time.perf_counter() - started
    return loaded


@dataclass
class Dataset:
    specs: list[RestaurantSpec]
    days: int
    cut: datetime
    month: Loaded = field(default_factory=Loaded)
    pending: list[Delivery] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)


def load_month(
    url: str,
    specs: list[RestaurantSpec],
    days: int,
    *,
    budget_s: float,
    table_factor: float = 1.0,
) -> Dataset:
    """Days 1..`days` in full, then the next day up to the cut; the 15 minutes after the
    cut are kept back as `pending`. Stops adding days when `budget_s` runs out."""
    with psycopg.connect(url) as conn:
        register(conn, specs)
    started = time.perf_counter()
    # The month ends yesterday; the incremental run's 15 minutes are yesterday afternoon.
    first_day = datetime.now(UTC).date() - timedelta(days=days + 1)
    data = Dataset(specs=specs, days=days, cut=datetime.now(UTC))
    for n in range(days):
        if time.perf_counter() - started > budget_s:
            log(f"load budget spent after {n} days")
            data.days = n
            break
        batch = service_day(specs, first_day + timedelta(days=n), seed=SEED)
        got = land_between(url, batch, data.seen)
        data.month.pos += got.pos
        data.month.webhooks += got.webhooks
        if n % 5 == 4 or n == days - 1:
            log(
                f"day {n + 1}: {data.month.total:,} raw rows, {time.perf_counter() - started:.0f} s"
            )
    today = first_day + timedelta(days=data.days)
    cut = datetime(today.year, today.month, today.day, CUT_UTC_HOUR, tzinfo=UTC)
    batch = service_day(specs, today, seed=SEED)
    before = [d for d in batch if d.send_at <= cut]
    got = land_between(url, before, data.seen)
    data.month.pos += got.pos
    data.month.webhooks += got.webhooks
    end = cut + timedelta(minutes=NEW_EVENTS_MINUTES)
    data.pending = [d for d in batch if cut < d.send_at <= end]
    data.cut = cut
    data.month.seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        conn.execute(
            "create table if not exists public.bench_signals_meta (restaurants integer, "
            "days integer, table_factor double precision, cut timestamptz, "
            "landed_until timestamptz)"
        )
        conn.execute(
            "insert into public.bench_signals_meta values (%s, %s, %s, %s, %s)",
            (len(specs), data.days, table_factor, cut, cut),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze raw.order_events")
        conn.execute("vacuum analyze raw.webhook_events")
    return data


# ---- measuring


class PeakRss:
    """Peak resident memory of a run's Python side, sampled every 0.1 s: dbt (a child
    process) plus what this process grew by during the run (Dagster in process). The
    bench's own data (the generated month) and PostgreSQL are not counted."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        base = me.memory_info().rss
        while not self._stop.is_set():
            total = max(0, me.memory_info().rss - base)
            for proc in me.children(recursive=True):
                with suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)


@dataclass
class Results:
    machine: str = ""
    restaurants: int = 0
    days: int = 0
    raw_rows: int = 0
    canonical_rows: int = 0
    load_seconds: float = 0.0
    full_rebuild_seconds: float = 0.0
    full_rebuild_ok: bool = False
    full_rebuild_peak_rss_mib: float = 0.0
    new_events: int = 0
    incremental_seconds: float = 0.0
    incremental_ok: bool = False
    incremental_peak_rss_mib: float = 0.0
    incremental_models: int = 0
    code_load_seconds: float = 0.0
    live_view_ms: dict[str, float] = field(default_factory=dict)
    freshness_live_p95_s: float = 0.0
    freshness_marts_p95_s: float = 0.0
    freshness_marts_max_s: float = 0.0
    freshness_samples: int = 0
    sensor_interval_s: int = 30
    notes: list[str] = field(default_factory=list)


class Signals:
    """The project's own code paths against the bench database: the CLI's full
    materialization, and the raw-events sensor followed by the run it requests."""

    def __init__(self, url: str, data_dir: Path) -> None:
        from partner_signals.settings import Settings
        from pipelines.instance import prepare_dagster_home

        self.url = url
        self.settings = Settings(
            database_url=url, data_dir=data_dir, exports_dir=data_dir / "exports"
        )
        prepare_dagster_home(self.settings)
        self.artifacts = str((data_dir / "dbt" / "target").resolve())
        # The sensor's own cursor (raw rows no model reads); where runs start comes from
        # the last successful run, in Dagster's storage in the bench database.
        self.cursor: str | None = None
        self.checks = True

    def full_rebuild(self) -> bool:
        import io

        from rich.console import Console

        from pipelines.run import materialize_all

        out = io.StringIO()
        # The dbt build alone, as this figure always measured (materialize also fills the
        # outbox and writes the files of the days touched afterwards).
        ok = materialize_all(
            self.settings,
            full_refresh=True,
            console=Console(file=out),
            log_level="WARNING",
            downstream=False,
        )
        if not ok:
            log(out.getvalue()[-3000:])
        return ok

    def sensor_tick(self) -> tuple[bool, int]:
        """One sensor evaluation and, when it asks for one, the run it asks for, in
        process (its assets, checks and run config, as the daemon launches it). (ran,
        models selected); raises when the run fails. Without `self.checks`, the run
        evaluates no checks (the sensor before checks ran on every run, for comparison)."""
        import dagster as dg

        from pipelines.definitions import build_definitions
        from pipelines.resources import DatabaseResource
        from pipelines.signals.requests import execute_request
        from pipelines.signals.sensors import raw_events_sensor, sensor_run_config

        database = DatabaseResource(database_url=self.url)
        defs = build_definitions(database_url=self.url, dbt_artifacts_dir=self.artifacts)
        with dg.DagsterInstance.get() as instance:
            context = dg.build_sensor_context(
                instance=instance, cursor=self.cursor, resources={"database": database}
            )
            result = raw_events_sensor(context)
            if not isinstance(result, dg.SensorResult):
                return False, 0
            self.cursor = result.cursor or self.cursor
            if not result.run_requests:
                return False, 0
            (request,) = result.run_requests
            if not self.checks:
                request = dg.RunRequest(
                    run_key=request.run_key,
                    asset_selection=request.asset_selection,
                    asset_check_keys=[],
                    run_config=sensor_run_config(latest_batch_checks=False),
                    tags=request.tags,
                )
            run = execute_request(defs, request, instance)
            if not run.success:
                raise RuntimeError("sensor run failed")
        return True, len(request.asset_selection or [])


def land_pending(url: str, deliveries: Sequence[Delivery]) -> int:
    """Land deliveries as ingest would, now: duplicates of rows already landed refused."""
    with psycopg.connect(url) as conn:
        before = conn.execute(
            "select (select count(*) from raw.order_events) + (select count(*) from raw.webhook_events)"
        ).fetchone()
        copy_deliveries_upsert(conn, deliveries)
        after = conn.execute(
            "select (select count(*) from raw.order_events) + (select count(*) from raw.webhook_events)"
        ).fetchone()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


def copy_deliveries_upsert(conn: psycopg.Connection[Any], deliveries: Sequence[Delivery]) -> None:
    for d in deliveries:
        if d.source == "pos":
            conn.execute(
                "insert into raw.order_events (company_id, restaurant_id, event_id, event_type, "
                "occurred_at, received_at, headers, body) values (%s, %s, %s, %s, %s, now(), "
                "'{}', %s) on conflict on constraint order_events_dedup do nothing",
                (d.company_id, d.restaurant_id, d.event_id, d.event_type, d.occurred_at,
                 d.body.decode()),
            )  # fmt: skip
        else:
            conn.execute(
                "insert into raw.webhook_events (source, company_id, event_id, event_type, "
                "received_at, headers, body) values (%s, %s, %s, %s, now(), '{}', %s) "
                "on conflict on constraint webhook_events_dedup do nothing",
                (d.source, d.company_id, d.event_id, d.event_type, d.body.decode()),
            )  # fmt: skip


LIVE_QUERIES = {
    "current_order_velocity": "select * from marts.current_order_velocity where restaurant_id = %s",
    "current_occupied_tables": "select * from marts.current_occupied_tables where restaurant_id = %s",
    "current_open_bills": "select * from marts.current_open_bills where restaurant_id = %s",
    "current_active_orders": "select * from marts.current_active_orders where restaurant_id = %s",
}


def live_view_latency(
    url: str, restaurant_ids: Sequence[str], rounds: int = 40
) -> dict[str, float]:
    """p95 milliseconds of each "now" view for one restaurant (one client, warm cache)."""
    timings: dict[str, list[float]] = {name: [] for name in LIVE_QUERIES}
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(rounds):
            restaurant_id = restaurant_ids[n % len(restaurant_ids)]
            for name, sql in LIVE_QUERIES.items():
                started = time.perf_counter()
                conn.execute(sql, (restaurant_id,)).fetchall()
                timings[name].append((time.perf_counter() - started) * 1000)
        plan = conn.execute(
            "explain (analyze, buffers) " + LIVE_QUERIES["current_open_bills"],
            (restaurant_ids[0],),
        ).fetchall()
    (ROOT / ".data").mkdir(exist_ok=True)
    (ROOT / ".data" / "bench_signals_explain.txt").write_text("\n".join(r[0] for r in plan))
    return {name: round(p95(values), 2) for name, values in timings.items()}


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def freshness(
    url: str,
    signals: Signals,
    restaurant_id: str,
    company_id: str,
    *,
    seconds: float,
    interval: int,
) -> tuple[list[float], list[float]]:
    """Post a bill request every ~2 s for `seconds` while the sensor ticks every
    `interval` s and runs what it requests. Returns (live latencies, marts latencies):
    from insert to visible in marts.current_open_bills (live view) and in
    marts.fct_time_to_pay (materialized through int_bills)."""
    stop = threading.Event()
    posted: dict[str, float] = {}
    live: list[float] = []
    lock = threading.Lock()

    def poster() -> None:
        n = 0
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                n += 1
                order_id = f"fresh-{uuid.uuid4().hex[:8]}"
                body = json.dumps({"order_id": order_id, "table_id": None, "data": {}})
                inserted = time.perf_counter()
                for event_type in ("order.created", "order.bill_requested"):
                    conn.execute(
                        "insert into raw.order_events (company_id, restaurant_id, event_id, "
                        "event_type, occurred_at, received_at, headers, body) "
                        "values (%s, %s, %s, %s, now(), now(), '{}', %s)",
                        (company_id, restaurant_id, f"{order_id}-{event_type}", event_type, body),
                    )
                with lock:
                    posted[order_id] = inserted
                while True:
                    row = conn.execute(
                        "select 1 from marts.current_open_bills "
                        "where restaurant_id = %s and order_id = %s",
                        (restaurant_id, order_id),
                    ).fetchone()
                    if row or time.perf_counter() - inserted > 10:
                        break
                    time.sleep(0.01)
                if row:
                    live.append(time.perf_counter() - inserted)
                stop.wait(2.0)

    thread = threading.Thread(target=poster, daemon=True)
    thread.start()
    marts: list[float] = []
    seen: set[str] = set()
    deadline = time.perf_counter() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while time.perf_counter() < deadline:
            tick = time.perf_counter()
            signals.sensor_tick()
            rows = conn.execute(
                "select order_id from marts.fct_time_to_pay "
                "where restaurant_id = %s and order_id like 'fresh-%%'",
                (restaurant_id,),
            ).fetchall()
            now = time.perf_counter()
            with lock:
                for (order_id,) in rows:
                    if order_id not in seen and order_id in posted:
                        seen.add(order_id)
                        marts.append(now - posted[order_id])
            time.sleep(max(0.0, interval - (time.perf_counter() - tick)))
    stop.set()
    thread.join()
    return live, marts


def code_load_seconds() -> float:
    """What a daemon-launched run pays before dbt starts: a new Python loading the
    definitions (the in-process measurements above do not include it)."""
    import subprocess

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pipelines.definitions"], check=True, cwd=ROOT)
    return time.perf_counter() - started


def next_slice(url: str) -> tuple[list[RestaurantSpec], list[Delivery]]:
    """For a database a previous run kept: its restaurants, and the next
    NEW_EVENTS_MINUTES of the cut day's events after what it already holds."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select restaurants, table_factor, cut, landed_until from public.bench_signals_meta"
        ).fetchone()
        if row is None:
            raise SystemExit(f"{url} holds no bench.signals data (run with --keep-db first)")
        restaurants, table_factor, cut, landed_until = row
        end = landed_until + timedelta(minutes=NEW_EVENTS_MINUTES)
        conn.execute("update public.bench_signals_meta set landed_until = %s", (end,))
    specs = bench_restaurants(restaurants, table_factor=table_factor)
    batch = service_day(specs, cut.date(), seed=SEED)
    return specs, [d for d in batch if landed_until < d.send_at <= end]


@dataclass
class SliceRun:
    seconds: float
    ran: bool
    models: int
    events: int
    restaurants: int
    peak_rss_mib: float


def time_next_slice(url: str, signals: Signals) -> SliceRun:
    """Land the next NEW_EVENTS_MINUTES of the cut day, then time the sensor's tick and
    the run it requests."""
    specs, pending = next_slice(url)
    events = land_pending(url, pending)
    with PeakRss() as rss, timed() as took:
        ran, models = signals.sensor_tick()
    log(f"incremental {took[0]:.2f} s over {models} models ({events} events)")
    return SliceRun(took[0], ran, models, events, len(specs), rss.peak / 2**20)


def checks_note(args: argparse.Namespace) -> str:
    """What the timed sensor runs evaluated, said beside their times."""
    if args.without_checks:
        return "sensor runs' checks: none (--without-checks)"
    return "sensor runs' checks: every check of the built assets, dbt tests on the run's rows"


def rerun_incremental(args: argparse.Namespace) -> Results:
    """--url: time the sensor's incremental run again on a kept database, once per
    --incremental-runs, each after the next NEW_EVENTS_MINUTES of events."""
    import statistics
    import tempfile

    results = Results(machine=machine(args.url).line())
    signals = Signals(args.url, Path(tempfile.mkdtemp(prefix="bench-signals-")))
    with psycopg.connect(args.url) as conn:
        row = conn.execute(
            "select (select count(*) from raw.order_events) + (select count(*) from raw.webhook_events)"
        ).fetchone()
        results.raw_rows = int(row[0]) if row else 0
    signals.checks = not args.without_checks
    signals.sensor_tick()  # catch up on anything landed after the last run
    timings: list[float] = []
    for _ in range(args.incremental_runs):
        slice_run = time_next_slice(args.url, signals)
        timings.append(slice_run.seconds)
        results.restaurants = slice_run.restaurants
        results.new_events = slice_run.events
        results.incremental_ok = slice_run.ran
        results.incremental_models = slice_run.models
        results.incremental_peak_rss_mib = max(
            results.incremental_peak_rss_mib, slice_run.peak_rss_mib
        )
    results.incremental_seconds = round(statistics.median(timings), 2)
    results.notes.append(checks_note(args))
    results.notes.append(
        "incremental runs (s): " + ", ".join(f"{t:.2f}" for t in timings) + " (median above)"
    )
    return results


def run(args: argparse.Namespace) -> Results:
    import tempfile

    server = server_url()
    name, url = create_database(server, "ps_bench_signals")
    results = Results(machine=machine(url).line(), restaurants=args.restaurants)
    specs = bench_restaurants(args.restaurants, table_factor=args.table_factor)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-signals-"))
    try:
        log(f"database {name}: loading {args.restaurants} restaurants x {args.days} days")
        data = load_month(
            url, specs, args.days, budget_s=args.load_budget, table_factor=args.table_factor
        )
        results.days = data.days
        results.raw_rows = data.month.total
        results.load_seconds = round(data.month.seconds, 1)
        log(f"loaded {data.month.total:,} raw rows in {data.month.seconds:.0f} s")

        signals = Signals(url, data_dir)
        signals.checks = not args.without_checks
        log("full rebuild (partner-signals materialize --full-refresh: dbt build, every test)")
        with PeakRss() as rss, timed() as took:
            results.full_rebuild_ok = signals.full_rebuild()
        results.full_rebuild_seconds = round(took[0], 1)
        results.full_rebuild_peak_rss_mib = round(rss.peak / 2**20, 1)
        with psycopg.connect(url) as conn:
            row = conn.execute("select count(*) from canonical.canonical_events").fetchone()
            results.canonical_rows = int(row[0]) if row else 0
        log(f"full rebuild {results.full_rebuild_seconds} s, ok={results.full_rebuild_ok}")

        results.new_events = land_pending(url, data.pending)
        with psycopg.connect(url) as conn:
            conn.execute(
                "update public.bench_signals_meta set landed_until = %s",
                (data.cut + timedelta(minutes=NEW_EVENTS_MINUTES),),
            )
        log(f"landed {results.new_events} events of the next {NEW_EVENTS_MINUTES} minutes")
        with PeakRss() as rss, timed() as took:
            ran, models = signals.sensor_tick()
        results.incremental_ok = ran
        results.incremental_models = models
        results.incremental_seconds = round(took[0], 2)
        results.incremental_peak_rss_mib = round(rss.peak / 2**20, 1)
        log(f"incremental {results.incremental_seconds} s over {models} models")
        # The sensor's next runs, each after the next 15 minutes of the same evening: the
        # first run above also pays for the rebuild's writes still being flushed.
        timings = [took[0]]
        for _ in range(args.incremental_runs - 1):
            slice_run = time_next_slice(url, signals)
            results.incremental_ok = results.incremental_ok and slice_run.ran
            timings.append(slice_run.seconds)
        results.notes.append(checks_note(args))
        if len(timings) > 1:
            results.notes.append(
                "incremental runs, the first right after the rebuild, then each after the "
                "next 15 minutes (s): " + ", ".join(f"{t:.2f}" for t in timings)
            )
        if args.no_live:
            return results

        # "Now": today's service up to this minute, landed and caught up by the sensor.
        today = service_day(specs, datetime.now(UTC).date(), seed=SEED + 1, until=datetime.now(UTC))
        with psycopg.connect(url) as conn:
            copy_deliveries(conn, today, set())
        signals.sensor_tick()
        results.live_view_ms = live_view_latency(url, [s.restaurant_id for s in specs])
        log(f"live views p95 ms {results.live_view_ms}")

        results.code_load_seconds = round(code_load_seconds(), 2)
        if args.freshness_seconds > 0:
            live, marts = freshness(
                url, signals, specs[0].restaurant_id, specs[0].company_id,
                seconds=args.freshness_seconds, interval=args.sensor_interval,
            )  # fmt: skip
            results.sensor_interval_s = args.sensor_interval
            results.freshness_samples = len(marts)
            if live:
                results.freshness_live_p95_s = round(p95(live), 3)
            if marts:
                results.freshness_marts_p95_s = round(p95(marts), 1)
                results.freshness_marts_max_s = round(max(marts), 1)
            log(
                f"freshness live p95 {results.freshness_live_p95_s} s, marts p95 {results.freshness_marts_p95_s} s"
            )
    finally:
        if not args.keep_db:
            drop_database(server, name)
        else:
            log(f"kept {url}")
    return results


def render(results: Results) -> str:
    r = results
    lines = [
        "## Signals",
        "",
        f"`python -m bench.signals` on {r.machine}; PostgreSQL on the same machine.",
        f"{r.restaurants} restaurants x {r.days} days of `synthetic` service "
        f"days: {r.raw_rows:,} raw rows landed with COPY in {r.load_seconds} s, "
        f"{r.canonical_rows:,} canonical events.",
        "",
        "| measure | result |",
        "| --- | --- |",
        f"| full rebuild (`materialize --full-refresh`: dbt build, every model and test, through Dagster) | {r.full_rebuild_seconds} s ({'ok' if r.full_rebuild_ok else 'FAILED'}) |",
        f"| peak RSS, Python side (Dagster + dbt), full rebuild | {r.full_rebuild_peak_rss_mib} MiB |",
        f"| incremental run after {NEW_EVENTS_MINUTES} minutes of new events ({r.new_events:,} events): sensor evaluation + the run it requests, in process, dbt start-up included | {r.incremental_seconds} s ({r.incremental_models} models) |",
        f"| peak RSS, Python side, incremental run | {r.incremental_peak_rss_mib} MiB |",
        f"| new Python process loading the definitions (paid by a daemon-launched run on top) | {r.code_load_seconds} s |",
    ]
    for name, ms in r.live_view_ms.items():
        lines.append(f"| `marts.{name}` for one restaurant, p95 (one client, warm) | {ms} ms |")
    if r.freshness_samples:
        lines += [
            f"| freshness, event posted -> visible in a live view (`current_open_bills`), p95 | {r.freshness_live_p95_s} s |",
            f"| freshness, event posted -> visible in a materialized mart (`fct_time_to_pay`), sensor every {r.sensor_interval_s} s, p95 / max ({r.freshness_samples} events) | {r.freshness_marts_p95_s} s / {r.freshness_marts_max_s} s |",
        ]
    lines += [f"- {note}" for note in r.notes]
    return "\n".join(lines) + "\n"


def render_incremental(results: Results) -> str:
    r = results
    lines = [
        f"`python -m bench.signals --url ...` on {r.machine}; {r.restaurants} restaurants, "
        f"{r.raw_rows:,} raw rows.",
        "",
        "| measure | result |",
        "| --- | --- |",
        f"| incremental run after {NEW_EVENTS_MINUTES} minutes of new events ({r.new_events:,} events): sensor evaluation + the run it requests, in process, dbt start-up included | {r.incremental_seconds} s ({r.incremental_models} models) |",
        f"| peak RSS, Python side, incremental run | {r.incremental_peak_rss_mib:.1f} MiB |",
    ]
    lines += [f"- {note}" for note in r.notes]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.signals", description=__doc__)
    p.add_argument("--restaurants", type=int, default=50)
    p.add_argument("--days", type=int, default=30)
    p.add_argument(
        "--table-factor",
        type=float,
        default=4.0,
        help="scale each dining room (4.0: about 6,600 raw events per restaurant-day, "
        "10 M for 50 restaurants x 30 days)",
    )
    p.add_argument("--load-budget", type=float, default=600, help="seconds for loading")
    p.add_argument("--freshness-seconds", type=float, default=150)
    p.add_argument("--sensor-interval", type=int, default=30)
    p.add_argument(
        "--url",
        help="a database an earlier run kept (--keep-db): no load, no rebuild; land the "
        "next 15 minutes of events and time the incremental run again (not dropped)",
    )
    p.add_argument(
        "--incremental-runs",
        type=int,
        default=3,
        help="incremental runs to time, each after the next 15 minutes of events",
    )
    p.add_argument(
        "--without-checks",
        action="store_true",
        help="the sensor's runs evaluate no checks (to measure what checks add)",
    )
    p.add_argument("--keep-db", action="store_true")
    p.add_argument(
        "--no-live",
        action="store_true",
        help="stop after the incremental run: no 'now' landing, live views or freshness "
        "(a kept database then stays fit for --url reruns)",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.url:
        results = rerun_incremental(args)
        print(render_incremental(results))
        return 0 if results.incremental_ok else 1
    results = run(args)
    text = render(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results.__dict__, indent=2, default=str))
    ok = results.full_rebuild_ok and results.incremental_ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
