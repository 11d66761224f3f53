"""Push benchmark: canonical events through the outbox to a local partner, against a plain
httpx client posting the same payloads with the same concurrency (no database).

`.venv/bin/python -m bench.pushes [--events 10000] [--quick]`. It makes a database
`ps_bench_<random>` on DATABASE_URL's server (default postgresql://postgres@127.0.0.1:5432/
postgres), starts a tiny partner (`bench.bare_asgi:app` under uvicorn, 2 workers, HTTP/1.1
keep-alive) on 127.0.0.1, enqueues N events with `enqueue_events` for the generic webhook
adapter, times `deliver_due_sync` until every row is delivered, and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import resource
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import sqlalchemy as sa

from bench.cpu import Meter, Usage, settle
from bench.harness import (
    DOCS,
    add_run_options,
    bench_env,
    bench_settings,
    create_database,
    drop_database,
    ensure_wrk,
    load_average,
    logger,
    machine,
    server,
    server_url,
    utc_stamp,
    writes_docs,
)
from bench.report import API_SECTION, goal_table, update_block, verdict
from partner_signals.adapters.base import envelope
from partner_signals.db import to_sqlalchemy
from partner_signals.pushes.outbox import enqueue_events
from partner_signals.pushes.worker import RunSummary, WorkerOptions, deliver_due_sync
from partner_signals.registry import add_restaurant, enable_adapter, ensure_company
from partner_signals.settings import Settings

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"partner-signals-bench-webhook!!!").decode()
COMPANY = "bench-push-co"
# Canonical types a dining room produces, in roughly the mix a service has.
TYPES = (
    "table.seated",
    "order.created",
    "order.item_added",
    "order.item_added",
    "order.item_added",
    "order.item_fired",
    "order.item_ready",
    "order.item_served",
    "order.bill_requested",
    "order.paid",
    "payment.succeeded",
    "table.cleared",
)


log = logger("bench.pushes")


def canonical_events(count: int, restaurants: list[str]) -> list[dict[str, Any]]:
    """`count` rows shaped like canonical.canonical_events, spread over `restaurants`."""
    base = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for n in range(count):
        kind = TYPES[n % len(TYPES)]
        order = n // len(TYPES)
        at = base + timedelta(milliseconds=n)
        data: dict[str, Any] = {"table_id": f"t{order % 40}", "covers": 4}
        if kind == "order.item_added":
            data |= {
                "line_id": f"l{n}",
                "item_id": "shawarma-plate",
                "item_name": "Chicken shawarma plate",
                "quantity": 2,
                "unit_price": "58.00",
                "currency": "AED",
            }
        elif kind in ("order.paid", "payment.succeeded"):
            data |= {"amount": "174.00", "currency": "AED", "payment_ref": f"pay-{order}"}
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": kind,
                "schema_version": 1,
                "occurred_at": at,
                "received_at": at + timedelta(seconds=1),
                "source": "pos",
                "company_id": COMPANY,
                "restaurant_id": restaurants[n % len(restaurants)],
                "order_id": f"o{order}",
                "data": data,
            }
        )
    return events


@dataclass
class PushResult:
    name: str
    what: str
    deliveries: int
    ok: int
    seconds: float
    concurrency: int
    cpu: Usage | None = None
    self_cpu: float = 0.0  # this process's CPU seconds (the worker or the client)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def setup_tenant(engine: sa.Engine, settings: Settings, url: str, integrations: int) -> list[str]:
    restaurants = [f"bench-push-r{n}" for n in range(integrations)]
    with engine.begin() as conn:
        ensure_company(conn, company_id=COMPANY, plan="enterprise")
        for r in restaurants:
            add_restaurant(conn, company_id=COMPANY, restaurant_id=r, timezone="Asia/Dubai")
            enable_adapter(
                conn,
                key=settings.master_key(),
                company_id=COMPANY,
                adapter="webhook",
                restaurant_id=r,
                config={"url": f"{url}/hooks/{r}"},
                secrets={"secrets": [WEBHOOK_SECRET]},
            )
    return restaurants


def outbox_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select status, count(*) from ops.outbox group by status"))
        return {str(r[0]): int(r[1]) for r in rows}


def worker_run(
    engine: sa.Engine,
    settings: Settings,
    database: str,
    partner_pid: int,
    *,
    expected: int,
    options: WorkerOptions,
    concurrency: int,
    budget: float,
) -> tuple[PushResult, RunSummary]:
    meter = Meter(database)
    cpu0 = self_cpu()
    meter.start()
    started = time.perf_counter()
    total = RunSummary()
    # Run-once mode stops when nothing is due; a row put back for a retry (none expected
    # against a partner that answers 200) gets one more pass, within the time budget.
    while time.perf_counter() - started < budget:
        summary = deliver_due_sync(engine, key=settings.master_key(), options=options)
        total.claimed += summary.claimed
        total.delivered += summary.delivered
        total.retried += summary.retried
        total.dead += summary.dead
        if total.delivered >= expected or summary.claimed == 0:
            break
    seconds = time.perf_counter() - started
    usage = meter.stop(server_pid=partner_pid)
    counts = outbox_counts(engine)
    result = PushResult(
        name="outbox-worker",
        what="`deliver_due_sync`: claim from ops.outbox, sign (Standard Webhooks), POST, "
        "record attempts and statuses",
        deliveries=expected,
        ok=counts.get("delivered", 0),
        seconds=seconds,
        concurrency=concurrency,
        cpu=usage,
        self_cpu=self_cpu() - cpu0,
    )
    return result, total


async def _plain_posts(
    url: str, bodies: list[tuple[str, bytes]], concurrency: int, timeout: float
) -> int:
    queue = iter(bodies)
    ok = 0
    async with httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:

        async def one_lane() -> None:
            nonlocal ok
            for path, body in queue:
                response = await client.post(
                    url + path, content=body, headers={"content-type": "application/json"}
                )
                ok += response.status_code < 300

        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return ok


def baseline_run(
    url: str, events: list[dict[str, Any]], database: str, partner_pid: int, concurrency: int
) -> PushResult:
    bodies = [(f"/hooks/{e['restaurant_id']}", orjson.dumps(envelope(e))) for e in events]
    meter = Meter(database)
    cpu0 = self_cpu()
    meter.start()
    started = time.perf_counter()
    ok = asyncio.run(_plain_posts(url, bodies, concurrency, timeout=10.0))
    seconds = time.perf_counter() - started
    usage = meter.stop(server_pid=partner_pid)
    return PushResult(
        name="plain-httpx",
        what="plain `httpx.AsyncClient` posting the same payloads (no database, no signing)",
        deliveries=len(bodies),
        ok=ok,
        seconds=seconds,
        concurrency=concurrency,
        cpu=usage,
        self_cpu=self_cpu() - cpu0,
    )


def render(
    machine_line: str,
    results: list[PushResult],
    *,
    events: int,
    integrations: int,
    options: WorkerOptions,
    enqueue_s: float,
    load: str,
    stamp: str,
    quick: bool,
) -> str:
    lines = [
        f"### Pushes, run {stamp}{' (quick)' if quick else ''}",
        "",
        f"**Machine:** {machine_line}. Load average before the runs: {load}.",
        "",
        f"{events:,} canonical events for {integrations} restaurants of one company, each "
        f"restaurant with the generic webhook adapter enabled towards the same local partner "
        f"(`bench.bare_asgi:app`, uvicorn `--workers 2`, answers 200 at once, HTTP/1.1 "
        f"keep-alive). `enqueue_events` wrote the {events:,} outbox rows in "
        f"{enqueue_s:.2f} s. Worker options: batch_size {options.batch_size}, per_endpoint "
        f"{options.per_endpoint}, overall {options.overall}, flush_interval "
        f"{options.flush_interval} s.",
        "",
        "| run | what | deliveries | delivered | seconds | deliveries/s | concurrency "
        "| partner CPU | postgres CPU | bench process CPU µs/delivery | other |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        u = r.cpu
        per = 1e6 * r.self_cpu / r.ok if r.ok else 0.0
        lines.append(
            f"| {r.name} | {r.what} | {r.deliveries:,} | {r.ok:,} | {r.seconds:.2f} "
            f"| {r.rate:,.0f} | {r.concurrency} "
            f"| {u.share(u.server) if u else 0:.0f}% | {u.share(u.postgres) if u else 0:.0f}% "
            f"| {per:.0f} | {u.share(u.other) if u else 0:.0f}% |"
        )
    worker = next((r for r in results if r.name == "outbox-worker"), None)
    plain = next((r for r in results if r.name == "plain-httpx"), None)
    if worker:
        ratio = (
            f" ({worker.rate / plain.rate:.2f}x the plain client)" if plain and plain.rate else ""
        )
        ok = worker.rate >= 1000 and worker.ok == worker.deliveries
        goal = "pushes ≥ 1,000 deliveries/s to a local partner"
        lines += goal_table([(goal, f"{worker.rate:,.0f}/s{ratio}", verdict(ok))])
    lines += [
        "",
        "CPU shares are of the whole machine (all CPUs) during the run; the worker and the "
        "plain client run in the bench process (its CPU per delivery is in its own column).",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pushes", description=__doc__)
    p.add_argument("--events", type=int, default=None, help="default 10,000 (3,000 with --quick)")
    p.add_argument("--integrations", type=int, default=4, help="restaurants with a webhook")
    p.add_argument("--quick", action="store_true", help="3,000 events, no docs")
    p.add_argument("--batch-size", type=int, default=WorkerOptions.batch_size)
    p.add_argument("--per-endpoint", type=int, default=WorkerOptions.per_endpoint)
    p.add_argument("--overall", type=int, default=WorkerOptions.overall)
    p.add_argument("--budget", type=float, default=90.0, help="seconds for the worker run")
    add_run_options(p, settle=20.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = min(args.events or (3_000 if args.quick else 10_000), 200_000)
    write_docs = writes_docs(args)
    options = WorkerOptions(
        batch_size=args.batch_size, per_endpoint=args.per_endpoint, overall=args.overall
    )
    concurrency = min(options.overall, options.per_endpoint * args.integrations)
    srv = server_url()
    name, url = create_database(srv)
    log(f"database {name} created and migrated")
    settings = bench_settings(url)
    engine = sa.create_engine(to_sqlalchemy(url))
    env = bench_env(url)
    results: list[PushResult] = []
    try:
        host = machine(url, ensure_wrk())
        with server("bench.bare_asgi:app", env, []) as (base, proc):
            restaurants = setup_tenant(engine, settings, base, args.integrations)
            events = canonical_events(count, restaurants)
            load = load_average()
            busy = settle(args.settle)
            log(f"machine {busy:.0f}% busy, load average {load}")
            results.append(baseline_run(base, events, name, proc.pid, concurrency))
            log(f"plain httpx: {results[-1].rate:,.0f}/s")
            started = time.perf_counter()
            with engine.begin() as conn:
                enqueued = enqueue_events(conn, events)
            enqueue_s = time.perf_counter() - started
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("vacuum analyze ops.outbox")
            log(f"enqueued {enqueued:,} outbox rows in {enqueue_s:.2f} s")
            settle(min(args.settle, 5.0))
            worker, summary = worker_run(
                engine,
                settings,
                name,
                proc.pid,
                expected=enqueued,
                options=options,
                concurrency=concurrency,
                budget=args.budget,
            )
            results.append(worker)
            log(f"worker: {worker.rate:,.0f}/s ({summary.line()})")
    finally:
        engine.dispose()
        if args.keep_db:
            log(f"kept database {name}")
        else:
            drop_database(srv, name)
            log(f"database {name} dropped")
    stamp = utc_stamp()
    markdown = render(
        host.line(),
        results,
        events=count,
        integrations=args.integrations,
        options=options,
        enqueue_s=enqueue_s,
        load=load,
        stamp=stamp,
        quick=args.quick,
    )
    print(markdown)
    if write_docs:
        update_block(DOCS, "pushes", markdown, heading=API_SECTION)
        log("docs/benchmarks.md updated")
    return 0 if all(r.ok == r.deliveries for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
