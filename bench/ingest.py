"""Ingest benchmark entry point (`make bench`): wrk against ingest and two baselines, then bulk."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
import sqlalchemy as sa

from bench.cpu import Meter
from bench.harness import (
    DOCS,
    RESULTS,
    ROOT,
    THREADS,
    WORKERS,
    add_run_options,
    bench_env,
    bench_settings,
    create_database,
    drop_database,
    ensure_wrk,
    logger,
    machine,
    parse_env,
    run_wrk,
    server,
    server_url,
    utc_stamp,
    wait_for_quiet,
    writes_docs,
    wrk_outcome,
)
from bench.noisy import A_CONCURRENCY, B_RATE, SideA, SideB, measure
from bench.payloads import write_pos_ndjson, write_stripe_bodies
from bench.report import BUSY_LIMIT, INGEST_SECTION, Outcome, render_markdown, update_block
from partner_signals.db import to_sqlalchemy
from partner_signals.processes import bin_path
from partner_signals.registry import add_restaurant, create_ingest_key, enable_integration

LUA = Path(__file__).with_name("events.lua")
log = logger("bench", stream=sys.stdout)


@dataclass(frozen=True)
class Tenant:
    company_id: str
    restaurant_ids: list[str]
    stripe_secret: str
    ingest_key: str


# ---------------------------------------------------------------- setup


def create_tenant(url: str) -> Tenant:
    settings = bench_settings(url)
    company = "bench-co"
    restaurants = ["bench-dxb-1", "bench-dxb-2", "bench-ruh-1"]
    secret = f"whsec_bench_{uuid.uuid4().hex}"
    engine = sa.create_engine(to_sqlalchemy(url))
    try:
        with engine.begin() as conn:
            for r in restaurants:
                add_restaurant(conn, company_id=company, restaurant_id=r, timezone="Asia/Dubai")
            enable_integration(
                conn,
                key=settings.master_key(),
                company_id=company,
                provider="stripe",
                secrets={"webhook_secrets": [secret]},
            )
            key = create_ingest_key(conn, company_id=company)
    finally:
        engine.dispose()
    return Tenant(company, restaurants, secret, key)


def count_rows(url: str, table: str, company_id: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            f"select count(*) from raw.{table} where company_id = %s", (company_id,)
        ).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------- scenarios


@dataclass
class Context:
    wrk: str
    url: str
    database: str
    tenant: Tenant
    env: dict[str, str]
    seconds: int
    warmup: int
    scratch: Path
    uvicorn_extra: list[str]
    settle: float
    retries: int


# A run during which other processes used more than BUSY_LIMIT % of the machine is
# measured again (up to --retries times); the quieter attempt is kept.

ArgsFor = Callable[[int], tuple[list[str], list[str]]]


def other_share(outcome: Outcome) -> float:
    return outcome.cpu.share(outcome.cpu.other) if outcome.cpu else 0.0


def quietest(ctx: Context, name: str, attempt: Callable[[int], Outcome]) -> Outcome:
    """`attempt(n)` once, and again (up to --retries times, new event ids each time)
    while other processes used more than BUSY_LIMIT % of the machine; the quieter
    attempt is kept."""
    best: Outcome | None = None
    for n in range(1 + ctx.retries):
        outcome = attempt(n)
        outcome.attempt = n + 1
        if best is None or other_share(outcome) < other_share(best):
            best = outcome
        if other_share(outcome) <= BUSY_LIMIT:
            break
        if n < ctx.retries:
            log(f"{name}: other processes used {other_share(outcome):.0f}% of the machine: again")
    assert best is not None
    return best


@dataclass(frozen=True)
class Scenario:
    """One server measured with wrk: `table` is where it stores events (None: nowhere)."""

    name: str
    what: str
    app: str
    path: str
    table: str | None


def load_scenario(
    ctx: Context,
    *,
    name: str,
    what: str,
    app: str,
    path: str,
    table: str | None,
    args_for: ArgsFor,
) -> Outcome:
    """Measure one server; `args_for(attempt)` gives the (warm-up, measured) wrk script
    arguments, new event ids for every attempt."""
    scenario = Scenario(name, what, app, path, table)
    return quietest(ctx, name, lambda n: load_attempt(ctx, scenario, args_for(n)))


def load_attempt(ctx: Context, scenario: Scenario, args: tuple[list[str], list[str]]) -> Outcome:
    name, app, path, table = scenario.name, scenario.app, scenario.path, scenario.table
    warm_args, wrk_args = args
    wait_for_quiet(ctx.settle, name, log)
    log(f"{name}: starting {app} (uvicorn --workers {WORKERS})")
    with server(app, ctx.env, ctx.uvicorn_extra) as (base, proc):
        if ctx.warmup:
            warm, _ = run_wrk(ctx.wrk, base + path, ctx.warmup, lua=LUA, script_args=warm_args)
            log(f"{name}: warm-up {ctx.warmup} s, {warm.rps:,.0f} req/s (not counted)")
        # Rows landed by the warm-up are committed by now: each 2xx waited for its commit,
        # and the in-flight ones finish before the measured run counts (see below).
        time.sleep(0.5)
        before = count_rows(ctx.url, table, ctx.tenant.company_id) if table else 0
        result, usage = run_wrk(
            ctx.wrk,
            base + path,
            ctx.seconds,
            lua=LUA,
            script_args=wrk_args,
            meter=Meter(ctx.database),
            server_pid=proc.pid,
        )
    # The server has stopped (gracefully): requests in flight when wrk stopped have
    # finished, so their rows count too, though wrk never saw their answers.
    rows = count_rows(ctx.url, table, ctx.tenant.company_id) - before if table else None
    outcome = wrk_outcome(name, scenario.what, result, usage, rows=rows)
    outcome.load = os.getloadavg()
    log(f"{name}: {outcome.summary()}")
    if usage:
        log(f"{name}: CPU {usage.line()}")
    return outcome


def pos_args(ctx: Context, tag: str) -> ArgsFor:
    def args_for(attempt: int) -> tuple[list[str], list[str]]:
        base = ["pos", ctx.tenant.ingest_key, ctx.tenant.restaurant_ids[0]]
        return [*base, f"{tag}{attempt}-warm"], [*base, f"{tag}{attempt}"]

    return args_for


def stripe_scenario(ctx: Context, expected_rps: float) -> Outcome:
    path = f"/webhooks/stripe/{ctx.tenant.company_id}"
    # Enough unique events that none is sent twice: (expected rate) x duration x 1.5.
    rate = max(expected_rps, 5000.0)
    count = int(min(rate * ctx.seconds * 1.5, 800_000))
    warm_count = int(rate * max(ctx.warmup, 1) * 1.5)

    def sign(prefix: Path, count: int, tag: str) -> None:
        write_stripe_bodies(
            prefix,
            count=count,
            threads=THREADS,
            secret=ctx.tenant.stripe_secret,
            restaurant_id=ctx.tenant.restaurant_ids[0],
            tag=tag,
        )

    def args_for(attempt: int) -> tuple[list[str], list[str]]:
        # Signed now, for each attempt: fresh timestamps, ids never sent before.
        started = time.monotonic()
        warm, run = ctx.scratch / f"stripe{attempt}-warm", ctx.scratch / f"stripe{attempt}"
        sign(warm, warm_count, f"warm{attempt}")
        sign(run, count, f"run{attempt}")
        log(f"stripe: signed {count + warm_count:,} events in {time.monotonic() - started:.1f} s")
        return ["stripe", str(warm), path], ["stripe", str(run), path]

    return load_scenario(
        ctx,
        name="ingest-stripe",
        what="our ingest, POST /webhooks/stripe/{company}, signed Stripe event",
        app="ingest.app:app",
        path=path,
        table="webhook_events",
        args_for=args_for,
    )


def bulk_scenario(ctx: Context, events: int, *, copy_baseline: bool) -> list[Outcome]:
    """The plain-COPY baseline (when asked) and `ingest FILE`, on the same file, in the
    same minutes; each measured again when the machine was busy."""
    path = ctx.scratch / "pos-events.ndjson"
    outcomes = []
    if copy_baseline:
        outcomes.append(
            quietest(ctx, "copy", lambda n: copy_attempt(ctx, path, events, f"copy{n}"))
        )
    outcomes.append(quietest(ctx, "bulk", lambda n: bulk_attempt(ctx, path, events, n)))
    return outcomes


def write_bulk_file(ctx: Context, path: Path, events: int, tag: str) -> int:
    started = time.monotonic()
    size = write_pos_ndjson(path, count=events, restaurant_ids=ctx.tenant.restaurant_ids, tag=tag)
    took = time.monotonic() - started
    log(f"{tag}: wrote {events:,} events ({size / 1e6:.0f} MB) in {took:.1f} s")
    return size


COPY_COLUMNS = (
    "company_id, restaurant_id, event_id, event_type, occurred_at, received_at, headers, body"
)


def copy_text(value: str) -> str:
    """A value in COPY's text format (backslash escapes)."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def copy_blocks(path: Path, company_id: str, received_at: str) -> tuple[list[bytes], int]:
    """The file's rows as COPY text data, in blocks of about 1 MB, built before the clock
    starts: what `ingest FILE` lands (same columns and values), with none of its work."""
    headers = copy_text('{"x-ingested-from": "file"}')
    blocks: list[bytes] = []
    rows: list[str] = []
    size = count = 0
    with path.open("rb") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            event = orjson.loads(line)
            row = "\t".join(
                (
                    company_id,
                    copy_text(event["restaurant_id"]),
                    copy_text(event["event_id"]),
                    copy_text(event["type"]),
                    event["occurred_at"],
                    received_at,
                    headers,
                    copy_text(line.decode()),
                )
            )
            rows.append(row)
            size += len(row)
            count += 1
            if size >= 1 << 20:
                blocks.append(("\n".join(rows) + "\n").encode())
                rows, size = [], 0
    if rows:
        blocks.append(("\n".join(rows) + "\n").encode())
    return blocks, count


def copy_attempt(ctx: Context, path: Path, events: int, tag: str) -> Outcome:
    """The baseline of bulk: one plain text COPY of the same rows, pre-built in memory,
    into a fresh table like raw.order_events (same columns, defaults, identity and
    indexes), then commit. It measures PostgreSQL's COPY and index maintenance alone."""
    size = write_bulk_file(ctx, path, events, tag)
    blocks, rows = copy_blocks(path, ctx.tenant.company_id, datetime.now(UTC).isoformat())
    path.unlink()
    table = "bench_copy_baseline"
    with psycopg.connect(ctx.url, connect_timeout=5, autocommit=True) as conn:
        conn.execute(f"drop table if exists {table}")
        conn.execute(f"create table {table} (like raw.order_events including all)")
        conn.execute("checkpoint")
        wait_for_quiet(ctx.settle, "copy", log)
        meter = Meter(ctx.database)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        meter.start()
        started = time.monotonic()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"copy {table} ({COPY_COLUMNS}) from stdin") as copy,
        ):
            for block in blocks:
                copy.write(block)
        seconds = time.monotonic() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        usage = meter.stop(server_pid=None)
        landed = conn.execute(f"select count(*) from {table}").fetchone()
        conn.execute(f"drop table {table}")
    # This process is the COPY client: its CPU shows as the "server" of this row.
    client = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    usage = dataclasses.replace(usage, server=client, wrk=0.0)
    outcome = Outcome(
        name="plain-copy",
        what=f"plain `COPY` of the same {events:,} rows, pre-built, into a table like "
        "raw.order_events (same indexes), one transaction",
        rps=rows / seconds,
        requests=rows,
        ok=rows,
        rows=int(landed[0]) if landed else 0,
        seconds=seconds,
        in_flight_limit=0,
        cpu=usage,
        load=os.getloadavg(),
    )
    log(f"copy: {outcome.summary()} ({size / 1e6:.0f} MB)")
    log(f"copy: CPU {usage.line()} (server = the COPY client, this process)")
    return outcome


def bulk_attempt(ctx: Context, path: Path, events: int, attempt: int) -> Outcome:
    size = write_bulk_file(ctx, path, events, f"bulk{attempt}")
    before = count_rows(ctx.url, "order_events", ctx.tenant.company_id)
    wait_for_quiet(ctx.settle, "bulk", log)
    cmd = [bin_path("partner-signals"), "ingest", str(path), "--company", ctx.tenant.company_id]
    meter = Meter(ctx.database)
    meter.start()
    started = time.monotonic()
    out = subprocess.run(cmd, cwd=ROOT, env=ctx.env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    # The command is our child: its CPU is what the meter counts as the load generator's.
    usage = meter.stop(server_pid=None)
    usage = dataclasses.replace(usage, server=usage.wrk, wrk=0.0)
    path.unlink()
    if out.returncode != 0:
        raise RuntimeError(f"partner-signals ingest failed: {out.stdout[-2000:]} {out.stderr}")
    rows = count_rows(ctx.url, "order_events", ctx.tenant.company_id) - before
    match = re.search(r"(\d+) lines: (\d+) accepted", out.stdout)
    accepted = int(match.group(2)) if match else -1
    outcome = Outcome(
        name="bulk-file",
        what=f"`partner-signals ingest FILE` ({events:,} POS events, NDJSON, {size / 1e6:.0f} MB)",
        rps=events / seconds,
        requests=events,
        ok=accepted,
        rows=rows,
        seconds=seconds,
        in_flight_limit=0,
        cpu=usage,
        load=os.getloadavg(),
    )
    log(f"bulk: {outcome.summary()}")
    log(f"bulk: CPU {usage.line()} (server = the ingest command)")
    return outcome


def create_noisy_tenant(url: str) -> tuple[str, str]:
    """Company A of the noisy-neighbour scenario: (company id, ingest key)."""
    company = "bench-noisy"
    engine = sa.create_engine(to_sqlalchemy(url))
    try:
        with engine.begin() as conn:
            add_restaurant(
                conn, company_id=company, restaurant_id="bench-noisy-1", timezone="Asia/Dubai"
            )
            key = create_ingest_key(conn, company_id=company)
    finally:
        engine.dispose()
    return company, key


@dataclass
class NoisyPhase:
    name: str
    what: str
    b: SideB
    a: SideA | None


def noisy_scenario(ctx: Context) -> list[NoisyPhase]:
    """B's webhooks alone, then with A's flood (default limits: A's batches of tiny lines
    are over the line cap and its rate), then with A's flood, the rate limit and the line
    cap lifted (so every batch is read and validated): one server each."""
    _, a_key = create_noisy_tenant(ctx.url)
    max_body = bench_settings(ctx.url).max_body_bytes
    b = (ctx.tenant.company_id, ctx.tenant.stripe_secret, ctx.tenant.restaurant_ids[0])
    unlimited = {
        "PARTNER_SIGNALS_INGEST_RATE_PER_SECOND": "1e12",
        "PARTNER_SIGNALS_INGEST_RATE_BURST": str(10**12),
        "PARTNER_SIGNALS_INGEST_MAX_BATCH_EVENTS": str(10**7),
    }
    plan = [
        ("b-alone", "B alone (baseline)", ctx.env, False),
        ("b-with-a", "B while A floods (default rate limits)", ctx.env, True),
        (
            "b-with-a-unlimited",
            "B while A floods, no rate limit or line cap",
            {**ctx.env, **unlimited},
            True,
        ),
    ]
    phases = []
    for name, what, env, flood in plan:
        wait_for_quiet(ctx.settle, f"noisy/{name}", log)
        with server("ingest.app:app", env, ctx.uvicorn_extra) as (base, _proc):
            side_b, side_a = measure(
                base, b=b, a=(a_key, max_body) if flood else None, seconds=ctx.seconds
            )
        phase = NoisyPhase(name, what, side_b, side_a)
        log(f"noisy/{name}: {noisy_line(phase)}")
        phases.append(phase)
    return phases


def noisy_line(p: NoisyPhase) -> str:
    b = p.b
    text = (
        f"B {b.ok:,}/{b.sent:,} ok, p50 {b.pct(0.5):.1f} ms, p99 {b.pct(0.99):.1f} ms, "
        f"max {max(b.latencies_ms or [0]):.1f} ms, errors {dict(b.errors) or 0}"
    )
    if p.a:
        a = p.a
        text += (
            f"; A {a.requests / a.seconds:,.1f} req/s, "
            f"{a.bytes_sent / a.seconds / 1e6:,.0f} MB/s sent, answers {dict(a.statuses)}"
        )
    return text


def noisy_markdown(phases: list[NoisyPhase], host_line: str, stamp: str, seconds: int) -> str:
    lines = [
        f"### Noisy neighbour, run {stamp}",
        "",
        f"**Machine:** {host_line}",
        "",
        f"Company B posts signed Stripe webhooks at {B_RATE:.0f}/s (open loop, latency "
        f"from when each was due) for {seconds} s; company A keeps {A_CONCURRENCY} "
        "batches of 1 MiB of `{}` lines (349,525 lines each) in flight on `POST /events`. "
        "Each phase starts its own `uvicorn --workers 2`; A and B are separate processes.",
        "",
        "| phase | B sent | B 2xx | B errors | B p50 ms | B p99 ms | B max ms | A requests/s "
        "| A answers | A MB/s offered |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for p in phases:
        b, a = p.b, p.a
        errors = sum(b.errors.values())
        a_cells = (
            f"{a.requests / a.seconds:,.1f} | "
            + ", ".join(f"{n:,} x {s}" for s, n in sorted(a.statuses.items()))
            + f" | {a.bytes_sent / a.seconds / 1e6:,.0f}"
            if a
            else " | | "
        )
        lines.append(
            f"| {p.what} | {b.sent:,} | {b.ok:,} | {errors} | {b.pct(0.5):.1f} | "
            f"{b.pct(0.99):.1f} | {max(b.latencies_ms or [0]):.1f} | {a_cells} |"
        )
    base = phases[0].b.pct(0.99)
    lines += [
        "",
        "| B's p99 with A ÷ B's p99 alone (same run) | ratio | bar: p99 < 1 s, 0 errors |",
    ]
    lines += ["| --- | ---: | --- |"]
    for p in phases[1:]:
        good = p.b.pct(0.99) < 1000 and not p.b.errors and p.b.ok == p.b.sent
        bar = "**pass**" if good else "**FAIL**"
        lines.append(f"| {p.what} | {p.b.pct(0.99) / base:.2f}x | {bar} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    p.add_argument("--duration", type=int, default=15, help="seconds per wrk run (default 15)")
    p.add_argument("--quick", action="store_true", help="5 s runs, 200k bulk events, no docs")
    p.add_argument("--bulk-events", type=int, default=None, help="default 1,000,000")
    p.add_argument(
        "--only",
        default="bare,naive,pos,stripe,copy,bulk,noisy",
        help="comma list of scenarios: bare,naive,pos,stripe,copy,bulk,noisy (copy: the "
        "plain-COPY baseline of bulk)",
    )
    add_run_options(p, settle=20.0)
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help=f"measure a scenario again when other processes used over {BUSY_LIMIT:.0f}%% "
        "of the machine during it (default 1)",
    )
    p.add_argument(
        "--ingest-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the servers (experiments, e.g. PARTNER_SIGNALS_...)",
    )
    p.add_argument(
        "--uvicorn-arg", action="append", default=[], help="extra uvicorn argument (experiments)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seconds = 5 if args.quick else args.duration
    warmup = 1 if args.quick else 2
    bulk_events = args.bulk_events or (200_000 if args.quick else 1_000_000)
    write_docs = writes_docs(args)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    wrk = ensure_wrk()
    server = server_url()
    name, url = create_database(server)
    log(f"database {name} created and migrated")
    scratch = Path(tempfile.mkdtemp(prefix="ps-bench-"))
    outcomes: list[Outcome] = []
    noisy: list[NoisyPhase] = []
    try:
        tenant = create_tenant(url)
        env = bench_env(url, extra=parse_env(args.ingest_env))
        host = machine(url, wrk)
        log(f"machine: {host.line()}")
        if host.pg.get("synchronous_commit") != "on" or host.pg.get("fsync") != "on":
            log("WARNING: synchronous_commit or fsync is off: acknowledgements are not durable")
        ctx = Context(
            wrk,
            url,
            name,
            tenant,
            env,
            seconds,
            warmup,
            scratch,
            args.uvicorn_arg,
            args.settle,
            args.retries,
        )
        if "bare" in only:
            outcomes.append(
                load_scenario(
                    ctx,
                    name="bare-asgi",
                    what="bare ASGI app: read the body, answer 200 (no framework, no database)",
                    app="bench.bare_asgi:app",
                    path="/events",
                    table=None,
                    args_for=pos_args(ctx, "bare"),
                )
            )
        if "naive" in only:
            outcomes.append(
                load_scenario(
                    ctx,
                    name="naive",
                    what="naive FastAPI receiver: key query, validate, insert, commit per request",
                    app="bench.naive_receiver:app",
                    path="/events",
                    table="order_events",
                    args_for=pos_args(ctx, "naive"),
                )
            )
        pos_rps = 0.0
        if "pos" in only:
            pos = load_scenario(
                ctx,
                name="ingest-pos",
                what="our ingest, POST /events, one POS event per request",
                app="ingest.app:app",
                path="/events",
                table="order_events",
                args_for=pos_args(ctx, "pos"),
            )
            outcomes.append(pos)
            pos_rps = pos.rps
        if "stripe" in only:
            outcomes.append(stripe_scenario(ctx, expected_rps=max(pos_rps, 10_000.0)))
        if "bulk" in only or "copy" in only:
            outcomes += bulk_scenario(ctx, bulk_events, copy_baseline="copy" in only)
        if "noisy" in only:
            noisy = noisy_scenario(ctx)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.keep_db:
            log(f"kept database {name}")
        else:
            drop_database(server, name)
            log(f"database {name} dropped")

    stamp = utc_stamp()
    settings_note = " ".join([*args.ingest_env, *args.uvicorn_arg])
    RESULTS.mkdir(exist_ok=True)
    if outcomes:
        markdown = render_markdown(
            host, outcomes, seconds=seconds, stamp=stamp, quick=args.quick, note=settings_note
        )
        result_file = RESULTS / f"ingest-{stamp}.md"
        result_file.write_text(markdown)
        print()
        print(markdown)
        log(f"results written to {result_file.relative_to(ROOT)}")
        if write_docs:
            update_block(DOCS, "ingest", markdown, heading=INGEST_SECTION)
            log(f"{DOCS.relative_to(ROOT)} updated")
    if noisy:
        markdown = noisy_markdown(noisy, host.line(), stamp, seconds)
        result_file = RESULTS / f"noisy-{stamp}.md"
        result_file.write_text(markdown)
        print()
        print(markdown)
        log(f"results written to {result_file.relative_to(ROOT)}")
        if write_docs:
            update_block(DOCS, "noisy", markdown, heading=INGEST_SECTION)
            log(f"{DOCS.relative_to(ROOT)} updated")
    return 0 if all(o.durable() is not False for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
