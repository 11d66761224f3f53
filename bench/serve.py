"""Freshness through `partner-signals serve`: a fresh deployment, live POS events over HTTP,
and the real Dagster daemon turning them into marts.

`.venv/bin/python -m bench.serve [--minutes 4] [--restaurants 50]`. It makes a database
`ps_bench_serve_<random>` on DATABASE_URL's server (or the embedded one when DATABASE_URL is
unset), migrated and nothing else; registers one company, its restaurants and an ingest
key; starts `partner-signals serve` on it as a subprocess (its own data dir, free ports).
Then:

1. the service so far: the hour of a synthetic service day before the live window,
   stamped so that it ends now, posted in NDJSON batches as soon as ingest is up (a POS
   catching up after the deployment);
2. the service live: the next `--minutes` of the same day's POS events, each posted alone
   at its own moment (`--speed` compresses the timeline), stamped now;
3. meanwhile a poller reads, every second, which posted events are in
   `canonical.canonical_events` (by raw event id) and in the materialized marts
   (`fct_time_to_pay`: bill requests and payments by order; `fct_order_velocity`: orders
   counted in their 15-minute interval);
4. at the end, the daemon's runs and sensor ticks from Dagster's storage.

The daemon launches each run as a new process (Dagster's default run launcher), which is
what `bench.signals` (runs in process) does not see. Drops the database unless --keep-db.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import psycopg
import sqlalchemy as sa

from bench.harness import (
    DOCS,
    ROOT,
    bench_env,
    bench_settings,
    create_database,
    drop_database,
    load_average,
    logger,
    machine,
    utc_stamp,
)
from bench.report import update_block, verdict
from partner_signals.db import to_libpq, to_sqlalchemy
from partner_signals.processes import bin_path, free_port, stop, wait_ready
from partner_signals.registry import add_restaurant, create_ingest_key
from synthetic import DEMO_RESTAURANTS, Delivery, RestaurantSpec, service_day

SECTION = "## Freshness through `serve` (`python -m bench.serve`)"
COMPANY = "bench-serve-co"
GOAL_S = 60.0
POLL_S = 1.0
BACKLOG_MINUTES = 60
BATCH = 500
SEED = 20261203

log = logger("bench.serve")


# ---------------------------------------------------------------- pure parts


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of `values` (the same rule as bench.signals'
    p95: the value at rank round(q/100 * (n-1)) of the sorted values)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Spread:
    n: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        return cls(len(values), percentile(values, 50), percentile(values, 95), max(values))

    def cells(self) -> str:
        return f"{self.p50:.1f} | {self.p95:.1f} | {self.max:.1f} | {self.n}"


@dataclass(frozen=True)
class Posted:
    """One event as posted: when (wall clock, epoch seconds) and what it says."""

    event_id: str
    event_type: str
    restaurant_id: str
    order_id: str | None
    occurred_at: float
    posted_at: float
    live: bool


def busiest_start(send_times: Sequence[float], window_s: float, step_s: float = 60.0) -> float:
    """The start (a multiple of `step_s`) of the `window_s` with the most sends: the live
    window is the peak of the service, not its quiet opening."""
    ordered = sorted(send_times)
    if not ordered:
        raise ValueError("no events")
    best, best_count = ordered[0], -1
    start = ordered[0] - ordered[0] % step_s
    while start <= ordered[-1]:
        count = bisect.bisect_left(ordered, start + window_s) - bisect.bisect_left(ordered, start)
        if count > best_count:
            best, best_count = start, count
        start += step_s
    return best


def velocity_ranks(posted: Iterable[Posted]) -> dict[tuple[str, float], list[str]]:
    """For fct_order_velocity: each order counts in the 15-minute interval of its earliest
    event (opened_at), from the moment its first posted event is processed (runs process
    raw rows in the order they landed). Per (restaurant, interval start): the orders in
    the order they start to count. (Every zone here is offset by whole quarter hours, so
    local 15-minute intervals are UTC ones.)"""
    opened: dict[tuple[str, str], float] = {}
    first_post: dict[tuple[str, str], float] = {}
    for p in posted:
        if p.order_id is None or not p.event_type.startswith("order."):
            continue
        key = (p.restaurant_id, p.order_id)
        opened[key] = min(opened.get(key, p.occurred_at), p.occurred_at)
        first_post[key] = min(first_post.get(key, p.posted_at), p.posted_at)
    ranks: dict[tuple[str, float], list[tuple[float, str]]] = defaultdict(list)
    for (restaurant_id, order_id), at in opened.items():
        interval = at - at % 900
        ranks[(restaurant_id, interval)].append((first_post[(restaurant_id, order_id)], order_id))
    return {key: [order for _, order in sorted(orders)] for key, orders in ranks.items()}


def counted_orders(
    ranks: Mapping[tuple[str, float], list[str]], counts: Mapping[tuple[str, float], int]
) -> set[tuple[str, str]]:
    """(restaurant, order) pairs the mart counts: the first `count` of each interval's."""
    out: set[tuple[str, str]] = set()
    for key, orders in ranks.items():
        for order_id in orders[: counts.get(key, 0)]:
            out.add((key[0], order_id))
    return out


def latencies(posted: Iterable[Posted], seen: Mapping[str, float]) -> list[float]:
    """Seconds from posting to first seen, for the posted events that were seen."""
    return [seen[p.event_id] - p.posted_at for p in posted if p.event_id in seen]


# ---------------------------------------------------------------- the service


def serve_restaurants(count: int) -> list[RestaurantSpec]:
    """`count` restaurants of one company, cloned from the demo ones (menus, zones)."""
    return [
        replace(
            DEMO_RESTAURANTS[n % len(DEMO_RESTAURANTS)],
            company_id=COMPANY,
            restaurant_id=f"{DEMO_RESTAURANTS[n % len(DEMO_RESTAURANTS)].restaurant_id}-{n:03d}",
        )
        for n in range(count)
    ]


@dataclass
class Plan:
    """The POS events to post: `backlog` at once, `live` each at its `at` (wall clock)."""

    backlog: list[tuple[float, Delivery]]
    live: list[tuple[float, Delivery]]
    window_start: datetime


def plan_service(
    specs: Sequence[RestaurantSpec], *, day: date, minutes: float, speed: float, start: float
) -> Plan:
    """The busiest `minutes` x `speed` of `day`'s POS events, mapped to wall time from
    `start` (compressed by `speed`), and the BACKLOG_MINUTES before them, mapped to the
    minutes before `start`. No redeliveries, no late sends: each post is measured once."""
    pos = [
        d
        for d in service_day(specs, day, seed=SEED, duplicate_rate=0.0, late_rate=0.0)
        if d.source == "pos"
    ]
    span = minutes * 60 * speed
    w0 = busiest_start([d.send_at.timestamp() for d in pos], span)
    backlog, live = [], []
    for d in pos:
        t = d.send_at.timestamp()
        at = start + (t - w0) / speed
        if w0 - BACKLOG_MINUTES * 60 <= t < w0:
            backlog.append((at, d))
        elif w0 <= t < w0 + span:
            live.append((at, d))
    return Plan(backlog, live, datetime.fromtimestamp(w0, UTC))


def stamped(d: Delivery, at: float, zones: Mapping[str, ZoneInfo]) -> tuple[bytes, float]:
    """The body with `occurred_at` moved by as much as the send time was (its offset
    from the send kept), in the restaurant's zone: (body, new occurred_at)."""
    event = orjson.loads(d.body)
    occurred = at + (d.occurred_at - d.send_at).total_seconds()
    local = datetime.fromtimestamp(round(occurred, 3), zones[d.restaurant_id])
    event["occurred_at"] = local.isoformat(timespec="milliseconds")
    return orjson.dumps(event), round(occurred, 3)


def posted(d: Delivery, at: float, occurred: float, live: bool) -> Posted:
    order_id = orjson.loads(d.body).get("order_id")
    return Posted(d.event_id, d.event_type, d.restaurant_id, order_id, occurred, at, live)


# ---------------------------------------------------------------- poster and poller


@dataclass
class Ledger:
    """What was posted and when each event was first seen where."""

    posted: list[Posted] = field(default_factory=list)
    canonical: dict[str, float] = field(default_factory=dict)
    marts: dict[str, float] = field(default_factory=dict)
    refused: int = 0
    late_posts: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_backlog(
    client: httpx.Client,
    base: str,
    key: str,
    plan: Plan,
    zones: Mapping[str, ZoneInfo],
    ledger: Ledger,
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    for n in range(0, len(plan.backlog), BATCH):
        chunk = plan.backlog[n : n + BATCH]
        lines, rows = [], []
        now = time.time()
        for n_in_batch, (at, d) in enumerate(chunk):
            body, occurred = stamped(d, at, zones)
            lines.append(body)
            # One batch, one time; the microseconds keep the landing order for ranks.
            rows.append(posted(d, now + n_in_batch * 1e-6, occurred, live=False))
        response = client.post(f"{base}/events", content=b"\n".join(lines), headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"backlog batch refused: {response.status_code} {response.text}")
        with ledger.lock:
            ledger.posted.extend(rows)


def post_live(
    client: httpx.Client,
    base: str,
    key: str,
    plan: Plan,
    zones: Mapping[str, ZoneInfo],
    ledger: Ledger,
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for at, d in plan.live:
        wait = at - time.time()
        if wait > 0:
            time.sleep(wait)
        body, occurred = stamped(d, at, zones)
        sent = time.time()
        ledger.late_posts.append(sent - at)
        response = client.post(f"{base}/events", content=body, headers=headers)
        if response.status_code >= 300:
            ledger.refused += 1
            continue
        with ledger.lock:
            ledger.posted.append(posted(d, sent, occurred, live=True))


class Poller:
    """Every POLL_S: which posted events canonical_events and the marts show."""

    def __init__(self, url: str, ledger: Ledger) -> None:
        self.url = url
        self.ledger = ledger
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.raw_id = 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.wait(POLL_S):
                # Before the first run the tables are not there yet (a fresh deployment).
                with suppress(psycopg.errors.UndefinedTable):
                    self.poll(conn, time.time())

    def poll(self, conn: psycopg.Connection[Any], now: float) -> None:
        rows = conn.execute(
            "select c.raw_id, r.event_id from canonical.canonical_events c "
            "join raw.order_events r on r.id = c.raw_id "
            "where c.raw_table = 'order_events' and c.raw_id > %s and c.company_id = %s",
            (self.raw_id, COMPANY),
        ).fetchall()
        with self.ledger.lock:
            for raw_id, event_id in rows:
                self.raw_id = max(self.raw_id, int(raw_id))
                self.ledger.canonical.setdefault(str(event_id), now)
            posted = list(self.ledger.posted)
        bills = conn.execute(
            "select restaurant_id, order_id, paid_at is not null from marts.fct_time_to_pay "
            "where company_id = %s",
            (COMPANY,),
        ).fetchall()
        counts = {
            (str(r), float(start.timestamp())): int(orders)
            for r, start, orders in conn.execute(
                "select restaurant_id, interval_start, orders from marts.fct_order_velocity "
                "where company_id = %s",
                (COMPANY,),
            ).fetchall()
        }
        billed = {(str(r), str(o)) for r, o, _ in bills}
        paid = {(str(r), str(o)) for r, o, is_paid in bills if is_paid}
        counted = counted_orders(velocity_ranks(posted), counts)
        with self.ledger.lock:
            for p in posted:
                key = (p.restaurant_id, p.order_id or "")
                if (
                    (p.event_type == "order.bill_requested" and key in billed)
                    or (p.event_type == "order.paid" and key in paid)
                    or (p.event_type == "order.created" and key in counted)
                ):
                    self.ledger.marts.setdefault(p.event_id, now)


def mart_events(posted: Iterable[Posted]) -> list[Posted]:
    """The posted events a mart row shows: bill requests and order creations, and the
    payments of orders with a bill request (fct_time_to_pay has no row for the others)."""
    events = list(posted)
    billed = {
        (p.restaurant_id, p.order_id) for p in events if p.event_type == "order.bill_requested"
    }
    return [
        p
        for p in events
        if p.event_type in ("order.bill_requested", "order.created")
        or (p.event_type == "order.paid" and (p.restaurant_id, p.order_id) in billed)
    ]


# ---------------------------------------------------------------- Dagster's records


@dataclass(frozen=True)
class RunTimes:
    run_id: str
    status: str
    created: float
    started: float | None
    ended: float | None
    not_built: int
    step_launch_s: float = 0.0
    dbt_s: float | None = None

    @property
    def launch_s(self) -> float | None:
        """Requested -> the run's own process executing (queue, launch, code load)."""
        return None if self.started is None else self.started - self.created

    @property
    def total_s(self) -> float | None:
        return None if self.ended is None else self.ended - self.created


def signals_runs(data_dir: Path, url: str) -> list[RunTimes]:
    """The signals job's runs in Dagster's run storage (the bench database), oldest first."""
    import dagster as dg

    from pipelines.instance import prepare_dagster_home
    from pipelines.signals.jobs import SIGNALS_JOB_NAME

    prepare_dagster_home(bench_settings(url, data_dir=data_dir))
    runs = []
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(
            filters=dg.RunsFilter(job_name=SIGNALS_JOB_NAME), limit=1000
        )
        for r in records:
            launch, dbt = step_times(instance, r.dagster_run.run_id)
            runs.append(
                RunTimes(
                    run_id=r.dagster_run.run_id,
                    status=r.dagster_run.status.value,
                    created=r.create_timestamp.timestamp(),
                    started=r.start_time,
                    ended=r.end_time,
                    not_built=int(r.dagster_run.tags.get("partner-signals/not-built", "0") or 0),
                    step_launch_s=launch,
                    dbt_s=dbt,
                )
            )
    return sorted(runs, key=lambda run: run.created)


def step_times(instance: Any, run_id: str) -> tuple[float, float | None]:
    """(seconds spent starting step processes: each step's worker starting -> the step
    starting, summed; the dbt step's own seconds) from the run's event log."""
    import dagster as dg

    kinds = {
        dg.DagsterEventType.STEP_WORKER_STARTING,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
    }
    marks: dict[tuple[str, str], float] = {}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event is not None and entry.step_key:
            marks.setdefault((entry.step_key, event.event_type_value), entry.timestamp)
    launch = 0.0
    for (step, kind), at in marks.items():
        if kind == "STEP_WORKER_STARTING" and (step, "STEP_START") in marks:
            launch += marks[(step, "STEP_START")] - at
    start = marks.get(("signals_dbt", "STEP_START"))
    end = marks.get(("signals_dbt", "STEP_SUCCESS")) or marks.get(("signals_dbt", "STEP_FAILURE"))
    return launch, (end - start if start and end else None)


def sensor_ticks(url: str) -> dict[str, int]:
    """The raw-events sensor's ticks by status, and skips by reason."""
    out: dict[str, int] = defaultdict(int)
    with psycopg.connect(url) as conn:
        try:
            rows = conn.execute("select status, tick_body from dagster.job_ticks").fetchall()
        except psycopg.Error:
            return {}
    for status, body in rows:
        data = json.loads(body) if body else {}
        name = data.get("instigator_name") or data.get("job_name") or "raw_events_sensor"
        if name != "raw_events_sensor":
            continue
        reason = data.get("skip_reason")
        if status == "SKIPPED" and reason:
            out["skipped (" + str(reason).split(";")[0].split(" (")[0][:70] + ")"] += 1
        else:
            out[str(status).lower().replace("success", "requested a run")] += 1
    return dict(out)


# ---------------------------------------------------------------- the run


def bench_server() -> str:
    """DATABASE_URL's server, or the embedded one (as `serve` itself would use)."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return to_libpq(env)
    from partner_signals.db.embedded import embedded_url

    log("DATABASE_URL is unset: using the embedded PostgreSQL under .data")
    return embedded_url(ROOT / ".data")


def register(url: str, specs: Sequence[RestaurantSpec]) -> str:
    engine = sa.create_engine(to_sqlalchemy(url))
    try:
        with engine.begin() as conn:
            for spec in specs:
                add_restaurant(
                    conn,
                    company_id=COMPANY,
                    restaurant_id=spec.restaurant_id,
                    timezone=spec.timezone,
                    name=spec.name,
                )
            return create_ingest_key(conn, company_id=COMPANY)
    finally:
        engine.dispose()


@dataclass
class Results:
    machine: str = ""
    load_before: str = ""
    load_after: str = ""
    restaurants: int = 0
    minutes: float = 0.0
    speed: float = 1.0
    window_start: str = ""
    backlog_events: int = 0
    live_events: int = 0
    live_rate: float = 0.0
    refused: int = 0
    late_post_p95_s: float = 0.0
    serve_ready_s: float = 0.0
    first_run_end_s: float | None = None
    first_run: RunTimes | None = None
    backlog_canonical: Spread | None = None
    backlog_marts: Spread | None = None
    live_canonical: Spread | None = None
    live_marts: Spread | None = None
    live_marts_by_type: dict[str, Spread | None] = field(default_factory=dict)
    unseen_canonical: int = 0
    unseen_marts: int = 0
    runs: list[RunTimes] = field(default_factory=list)
    ticks: dict[str, int] = field(default_factory=dict)
    sensor_interval_s: int = 30

    def steady_runs(self) -> list[RunTimes]:
        first = self.first_run.created if self.first_run else 0.0
        return [r for r in self.runs if r.created > first and r.total_s is not None]


def run(args: argparse.Namespace) -> Results:
    from pipelines.signals.sensors import raw_events_sensor

    server = bench_server()
    name, url = create_database(server, "ps_bench_serve")
    log(f"database {name} created and migrated (db upgrade)")
    results = Results(
        machine=machine(url).line(),
        load_before=load_average(),
        restaurants=args.restaurants,
        minutes=args.minutes,
        speed=args.speed,
        sensor_interval_s=int(raw_events_sensor.minimum_interval_seconds or 30),
    )
    specs = serve_restaurants(args.restaurants)
    zones = {s.restaurant_id: ZoneInfo(s.timezone) for s in specs}
    key = register(url, specs)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    ingest_port, api_port, dagster_port = free_port(), api_port_pair(), free_port()
    cmd = [
        bin_path("partner-signals"),
        "serve",
        "--ingest-port", str(ingest_port),
        "--api-port", str(api_port),
        "--dagster-port", str(dagster_port),
    ]  # fmt: skip
    serve_log = data_dir / "serve.log"
    ledger = Ledger()
    poller = Poller(url, ledger)
    started = time.time()
    log(f"partner-signals serve (data dir {data_dir}, log {serve_log})")
    with serve_log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=bench_env(url, data_dir=data_dir),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{ingest_port}"
        wait_ready(f"{base}/readyz", proc, timeout=120, streak=3)
        results.serve_ready_s = round(time.time() - started, 1)
        poller.thread.start()
        # The live window starts once the backlog is in; plan from a generous guess, then
        # shift every time so the live window starts right after the backlog landed.
        day = datetime.now(UTC).date() - timedelta(days=1)
        plan = plan_service(specs, day=day, minutes=args.minutes, speed=args.speed, start=0.0)
        results.window_start = plan.window_start.strftime("%H:%M UTC")
        with httpx.Client(timeout=30.0) as client:
            live_start = time.time() + 5.0
            plan = Plan(
                [(at + live_start, d) for at, d in plan.backlog],
                [(at + live_start, d) for at, d in plan.live],
                plan.window_start,
            )
            post_backlog(client, base, key, plan, zones, ledger)
            results.backlog_events = len(plan.backlog)
            log(f"backlog: {len(plan.backlog):,} events of the hour before, posted")
            if args.wait_first_run:
                wait_first_run(url, proc, timeout=args.first_run_timeout)
                shift = time.time() + 2.0 - plan.live[0][0] if plan.live else 0.0
                plan = Plan(
                    plan.backlog, [(at + shift, d) for at, d in plan.live], plan.window_start
                )
            log(f"live: {len(plan.live):,} events over {args.minutes:g} min, one POST each")
            post_live(client, base, key, plan, zones, ledger)
        results.live_events = len(plan.live)
        results.refused = ledger.refused
        if ledger.late_posts:
            results.late_post_p95_s = round(percentile(ledger.late_posts, 95), 3)
        live_posted = [p for p in ledger.posted if p.live]
        if live_posted:
            span = max(p.posted_at for p in live_posted) - min(p.posted_at for p in live_posted)
            results.live_rate = len(live_posted) / span if span else 0.0
        # Drain: until every live event is in the marts, or the drain time is up.
        deadline = time.time() + args.drain
        wanted = {p.event_id for p in mart_events(live_posted)}
        while time.time() < deadline:
            with ledger.lock:
                if wanted <= set(ledger.marts) and len(ledger.canonical) >= len(ledger.posted):
                    break
            time.sleep(1.0)
        # Runs still in flight finish before serve stops (stopping would fail them).
        wait_runs_idle(url, proc, timeout=args.drain)
    finally:
        poller.stop.set()
        if poller.thread.is_alive():
            poller.thread.join()
        results.load_after = load_average()
        stop(proc, timeout=60)
        try:
            results.runs = signals_runs(data_dir, url)
            results.ticks = sensor_ticks(url)
        finally:
            if args.keep_db:
                log(f"kept database {name} and {data_dir}")
            else:
                drop_database(server, name)
    summarize(results, ledger, started)
    return results


def api_port_pair() -> int:
    """A free port whose next one is free too: `serve` puts the deliveries' metrics on the
    partner API's port + 1."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row")


def signals_run_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The signals job's runs by status, from Dagster's run table (plain SQL: opening an
    instance here could race the daemon and the UI creating Dagster's tables on a fresh
    database). Empty before those tables exist."""
    from pipelines.signals.jobs import SIGNALS_JOB_NAME

    try:
        rows = conn.execute(
            "select status, count(*) from dagster.runs where pipeline_name = %s group by 1",
            (SIGNALS_JOB_NAME,),
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    return {str(status): int(n) for status, n in rows}


FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def wait_runs_idle(url: str, proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    deadline = time.time() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.time() < deadline and proc.poll() is None:
            counts = signals_run_counts(conn)
            if not any(n for status, n in counts.items() if status not in FINISHED):
                return
            time.sleep(2.0)


def wait_first_run(url: str, proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Until the first signals run has finished (the fresh deployment's build)."""
    deadline = time.time() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.time() < deadline:
            counts = signals_run_counts(conn)
            if any(counts.get(status) for status in FINISHED):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode} (see its log)")
            time.sleep(2.0)
    log(f"no signals run finished within {timeout:.0f} s; going live anyway")


def summarize(results: Results, ledger: Ledger, started: float) -> None:
    finished = [r for r in results.runs if r.ended is not None]
    if finished:
        first = finished[0]
        results.first_run = first
        assert first.ended is not None
        results.first_run_end_s = round(first.ended - started, 1)
    backlog = [p for p in ledger.posted if not p.live]
    live = [p for p in ledger.posted if p.live]
    results.backlog_canonical = Spread.of(latencies(backlog, ledger.canonical))
    results.backlog_marts = Spread.of(latencies(mart_events(backlog), ledger.marts))
    results.live_canonical = Spread.of(latencies(live, ledger.canonical))
    results.live_marts = Spread.of(latencies(mart_events(live), ledger.marts))
    for kind in ("order.created", "order.bill_requested", "order.paid"):
        events = [p for p in mart_events(live) if p.event_type == kind]
        results.live_marts_by_type[kind] = Spread.of(latencies(events, ledger.marts))
    results.unseen_canonical = sum(1 for p in live if p.event_id not in ledger.canonical)
    results.unseen_marts = sum(1 for p in mart_events(live) if p.event_id not in ledger.marts)


# ---------------------------------------------------------------- report


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(r: Results, *, stamp: str) -> str:
    steady = r.steady_runs()
    totals = [run.total_s for run in steady if run.total_s is not None]
    launches = [run.launch_s for run in steady if run.launch_s is not None]
    executes = [run.ended - run.started for run in steady if run.ended is not None and run.started]
    median_run = statistics.median(totals) if totals else None
    lines = [
        f"### Run {stamp}",
        "",
        f"**Machine:** {r.machine}. Load average {r.load_before} before, {r.load_after} "
        "after (other sessions share this machine: absolute times are those of a loaded "
        "box).",
        "",
        f"`partner-signals serve` (its defaults: 2 uvicorn workers per API, Dagster UI and "
        f"daemon, runs launched as new processes) on a fresh database; {r.restaurants} "
        f"restaurants of one company (clones of the demo five). POS events of a synthetic "
        f"service day: the hour before {r.window_start} ({r.backlog_events:,} events) "
        f"posted in NDJSON batches as soon as ingest answered, then the {r.minutes:g} "
        f"minutes from {r.window_start}"
        + (f" compressed {r.speed:g}x" if r.speed != 1 else "")
        + f" ({r.live_events:,} events, {r.live_rate:.1f}/s, one POST each, stamped now; "
        f"p95 posting lag behind schedule {r.late_post_p95_s:.2f} s, {r.refused} refused). "
        f"Seen = first of the 1-second polls of `canonical.canonical_events` (by event id) "
        f"and of the marts (`fct_time_to_pay` row for a bill request, its `paid_at` for a "
        f"payment; `fct_order_velocity` counting the order for its creation).",
        "",
        "| measure | p50 s | p95 s | max s | events |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows = [
        ("live: event posted → in canonical_events", r.live_canonical),
        ("live: event posted → in a materialized mart", r.live_marts),
        *((f"live: {kind} → mart", spread) for kind, spread in r.live_marts_by_type.items()),
        ("backlog (posted at start-up): → canonical_events", r.backlog_canonical),
        ("backlog: → mart", r.backlog_marts),
    ]
    for label, spread in rows:
        lines.append(f"| {label} | {spread.cells() if spread else '- | - | - | 0'} |")
    first = r.first_run
    lines += [
        "",
        "| daemon | result |",
        "| --- | --- |",
        f"| serve started → ingest ready | {r.serve_ready_s:.1f} s |",
    ]
    if first is not None:
        lines += [
            f"| serve started → first signals run finished ({first.status}; it built "
            f"{first.not_built} models not yet in the database) | {_s(r.first_run_end_s)} s |",
            f"| first run: requested → executing (queue, new process, code load) / "
            f"executing → end (of which starting step processes {first.step_launch_s:.1f} s, "
            f"the dbt step {_s(first.dbt_s)} s) | {_s(first.launch_s)} s / "
            f"{_s((first.ended or 0) - (first.started or 0) if first.started else None)} s |",
        ]
    else:
        lines.append("| first signals run | **none finished** |")
    by_status: dict[str, int] = defaultdict(int)
    for run in r.runs:
        by_status[run.status] += 1
    lines += [
        "| signals runs (all) | "
        + ", ".join(f"{n} {status.lower()}" for status, n in sorted(by_status.items()))
        + " |",
    ]
    if totals:
        lines.append(
            f"| later runs ({len(totals)}): requested → end, median / max | "
            f"{statistics.median(totals):.1f} / {max(totals):.1f} s |"
        )
    if launches:
        lines.append(
            "| later runs: requested → executing, median (queue + new process + code load) "
            f"| {statistics.median(launches):.1f} s |"
        )
    if executes:
        launch = statistics.median(run.step_launch_s for run in steady)
        dbts = [run.dbt_s for run in steady if run.dbt_s is not None]
        dbt = f"{statistics.median(dbts):.1f}" if dbts else "-"
        lines.append(
            f"| later runs: executing → end, median (of which starting step processes "
            f"{launch:.1f} s, the dbt step {dbt} s) | {statistics.median(executes):.1f} s |"
        )
    if r.ticks:
        lines.append(
            "| sensor ticks | " + ", ".join(f"{k}: {v}" for k, v in sorted(r.ticks.items())) + " |"
        )
    lines.append(
        f"| not in the marts after the drain (live events) | {r.unseen_marts} (canonical: "
        f"{r.unseen_canonical}) |"
    )
    goal_rows: list[tuple[str, str, str]] = []
    if r.live_marts is not None:
        p95 = r.live_marts.p95
        ok = p95 <= GOAL_S and r.unseen_marts == 0
        goal_rows.append(
            (
                f"event posted → materialized mart ≤ {GOAL_S:g} s at p95, through `serve`",
                f"{p95:.1f} s",
                verdict(ok),
            )
        )
    lines += [
        "",
        "| goal | measured | verdict |",
        "| --- | ---: | --- |",
        *(f"| {g} | {m} | {v} |" for g, m, v in goal_rows),
    ]
    if r.live_marts is not None and median_run is not None:
        baseline = r.sensor_interval_s + median_run
        lines += [
            "",
            f"Ratio against the daemon's own cycle in the same run: p95 event → mart "
            f"{r.live_marts.p95:.1f} s ÷ (sensor interval {r.sensor_interval_s} s + median "
            f"run {median_run:.1f} s = {baseline:.1f} s) = **{r.live_marts.p95 / baseline:.2f}**"
            " (1.0 would be an event waiting one interval and one run; a run in flight when "
            "it lands makes it wait for that run, then the next tick and its run).",
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    p.add_argument("--minutes", type=float, default=4.0, help="live posting (default 4)")
    p.add_argument("--restaurants", type=int, default=50)
    p.add_argument(
        "--speed", type=float, default=1.0, help="compress the service's timeline (default 1)"
    )
    p.add_argument(
        "--drain", type=float, default=240.0, help="seconds to wait after posting (default 240)"
    )
    p.add_argument(
        "--wait-first-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the live window once the first run (the fresh deployment's build) "
        "finished (default); --no-wait-first-run posts live from the start",
    )
    p.add_argument("--first-run-timeout", type=float, default=600.0)
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--keep-db", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    markdown = render(results, stamp=utc_stamp())
    print(markdown)
    if args.docs:
        update_block(DOCS, "serve", markdown, heading=SECTION)
        log("docs/benchmarks.md updated")
    ok = results.live_marts is not None and results.unseen_marts == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
