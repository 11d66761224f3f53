"""Partner API benchmark: wrk at 32 connections against a restaurant's workforce signals,
with /healthz (no database) and /readyz (a pooled `select 1`) as baselines in the same run.

`.venv/bin/python -m bench.api [--restaurants 10 --days 3] [--quick]`. It makes a database
`ps_bench_<random>` on DATABASE_URL's server (default postgresql://postgres@127.0.0.1:5432/
postgres), lands synthetic service days (the last few days plus today up to now) into raw.*
with COPY, materializes every signal asset (dbt through Dagster, in process), creates a
partner key, starts `uvicorn api.app:app --workers 2` on 127.0.0.1 and drops the database
at the end. The key's rate limit is raised for the run (PARTNER_SIGNALS_API_RATE_PER_SECOND
and _BURST) so the bench measures the API, not its limiter.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.cpu import Meter
from bench.harness import (
    CONNECTIONS,
    DOCS,
    THREADS,
    WORKERS,
    add_run_options,
    bench_env,
    bench_settings,
    create_database,
    drop_database,
    ensure_wrk,
    load_average,
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
from bench.report import API_SECTION, Outcome, goal_table, update_block, verdict
from partner_signals.db import to_sqlalchemy, with_database

SEED = 20260401
RATE_ENV = {
    "PARTNER_SIGNALS_API_RATE_PER_SECOND": "1000000",
    "PARTNER_SIGNALS_API_RATE_BURST": "1000000",
}
# wrk script: cycle through the paths given after `--`; done() prints one JSON line.
# No response() hook (it would make wrk build tables for every answer, see bench/events.lua).
LUA = r"""
local paths = {}
local counter = 0
function init(args)
   for i = 1, #args do paths[i] = args[i] end
end
function request()
   counter = counter + 1
   return wrk.format("GET", paths[counter % #paths + 1])
end
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"bytes":%d,"rps":%.1f,"p50_us":%d,"p90_us":%d,'
         .. '"p99_us":%d,"max_us":%d,"non2xx":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, summary.bytes, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.status, e.connect, e.read, e.write, e.status, e.timeout))
end
"""
# Each path sent with its own If-None-Match (args: path, tag, path, tag...), and the 304s
# counted: a response() hook costs wrk a table per answer, only in this scenario.
CONDITIONAL_LUA = r"""
local paths = {}
local tags = {}
local counter = 0
local threads = {}
not_modified = 0
function setup(thread)
   table.insert(threads, thread)
end
function init(args)
   for i = 1, #args, 2 do
      paths[#paths + 1] = args[i]
      tags[#tags + 1] = args[i + 1]
   end
end
function request()
   counter = counter + 1
   local i = counter % #paths + 1
   -- a headers table replaces wrk.headers (the key, Host): copy them in
   local headers = {["If-None-Match"] = tags[i]}
   for name, value in pairs(wrk.headers) do headers[name] = value end
   return wrk.format("GET", paths[i], headers)
end
function response(status, headers, body)
   if status == 304 then not_modified = not_modified + 1 end
end
function done(summary, latency, requests)
   local n = 0
   for _, thread in ipairs(threads) do n = n + thread:get("not_modified") end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"bytes":%d,"rps":%.1f,"p50_us":%d,"p90_us":%d,'
         .. '"p99_us":%d,"max_us":%d,"non2xx":%d,"not_modified":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, summary.bytes, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.status, n, e.connect, e.read, e.write, e.status, e.timeout))
end
"""
log = logger("bench.api")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    url: str
    database: str
    company_id: str
    restaurant_ids: list[str]
    key: str
    raw_rows: int
    canonical_rows: int
    build_seconds: float


def build_world(url: str, database: str, restaurants: int, days: int, scratch: Path) -> World:
    from bench.signals import bench_restaurants, land_between, register
    from pipelines.run import materialize_all
    from synthetic import service_day

    started = time.perf_counter()
    specs = bench_restaurants(restaurants)
    with psycopg.connect(url) as conn:
        register(conn, specs)
    seen: set[tuple[str, str, str]] = set()
    now = datetime.now(UTC)
    raw = 0
    for back in range(days, 0, -1):
        got = land_between(
            url, service_day(specs, (now - timedelta(days=back)).date(), seed=SEED + back), seen
        )
        raw += got.total
    # Today up to now: tables still seated, orders still open, bills still unpaid.
    got = land_between(url, service_day(specs, now.date(), seed=SEED, until=now), seen)
    raw += got.total
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze raw.order_events")
        conn.execute("vacuum analyze raw.webhook_events")
    log(f"landed {raw:,} raw rows; materializing (dbt through Dagster)")
    settings = bench_settings(url, data_dir=scratch, exports_dir=scratch / "exports")
    from rich.console import Console

    out = io.StringIO()
    if not materialize_all(
        settings, full_refresh=True, console=Console(file=out), log_level="WARNING"
    ):
        raise RuntimeError(f"materialize failed: {out.getvalue()[-3000:]}")
    company = specs[0].company_id
    mine = [s.restaurant_id for s in specs if s.company_id == company]
    key, _, canonical = bench_key_and_counts(url, company)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return World(url, database, company, mine, key, raw, canonical, time.perf_counter() - started)


def reuse_world(url: str, database: str) -> World:
    """The world a `--keep-db` run left behind, with a new key (the old one was shown
    once): iterating on the API without landing and materializing again. "Now" is as
    of that run's landing, so active orders and open tables thin out as time passes."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "select company_id from ops.partner_keys where name = 'bench' order by key_id limit 1"
        ).fetchone()
        assert found is not None, f"{database} holds no bench.api world"
        company = str(found[0])
        mine = [
            str(row[0])
            for row in conn.execute(
                "select restaurant_id from ops.restaurants where company_id = %s "
                "order by restaurant_id",
                (company,),
            )
        ]
    key, raw, canonical = bench_key_and_counts(url, company)
    return World(url, database, company, mine, key, raw, canonical, 0.0)


def bench_key_and_counts(url: str, company: str) -> tuple[str, int, int]:
    """A new partner key for `company` that reads signals, and the raw and canonical row
    counts."""
    from api.keys import create_partner_key

    engine = sa.create_engine(to_sqlalchemy(url))
    try:
        with engine.begin() as conn:
            key = create_partner_key(
                conn, company_id=company, scopes=["read:workforce", "read:crm"], name="bench"
            )
            raw = sum(
                int(conn.execute(sa.text(f"select count(*) from raw.{t}")).scalar_one())
                for t in ("order_events", "webhook_events")
            )
            canonical = int(
                conn.execute(
                    sa.text("select count(*) from canonical.canonical_events")
                ).scalar_one()
            )
    finally:
        engine.dispose()
    return key, raw, canonical


# ---------------------------------------------------------------- wrk


def fetch(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    status, body, _ = fetch_with_headers(url, headers)
    return status, body


def fetch_with_headers(url: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (127.0.0.1 only)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return int(resp.status), resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:  # a 304 is one too
        return int(exc.code), exc.read(), {k.lower(): v for k, v in exc.headers.items()}


@dataclass(frozen=True)
class Load:
    """What every scenario shares: wrk, its script, durations, the server under test."""

    wrk: str
    lua: Path
    seconds: int
    warmup: int
    database: str
    base: str
    server_pid: int
    quiet: float


def measure(load: Load, *, name: str, what: str, paths: list[str], headers: list[str]) -> Outcome:
    wait_for_quiet(load.quiet, name, log)
    url = load.base + paths[0]
    if load.warmup:
        run_wrk(load.wrk, url, load.warmup, lua=load.lua, script_args=paths, headers=headers)
    result, usage = run_wrk(
        load.wrk,
        url,
        load.seconds,
        lua=load.lua,
        script_args=paths,
        headers=headers,
        meter=Meter(load.database),
        server_pid=load.server_pid,
    )
    outcome = wrk_outcome(name, what, result, usage)
    log(
        f"{name}: {outcome.rps:,.0f} req/s, p50 {outcome.p50_ms:.1f} ms, p90 "
        f"{outcome.p90_ms:.1f} ms, p99 {outcome.p99_ms:.1f} ms, non-2xx {outcome.non2xx}"
        + (f"; CPU {usage.line()}" if usage else "")
    )
    return outcome


# ---------------------------------------------------------------- report


def render(
    machine_line: str,
    world: World,
    outcomes: list[Outcome],
    *,
    seconds: int,
    load: str,
    sample: dict[str, Any],
    stamp: str,
    quick: bool,
    note: str,
    shares: dict[str, float] | None = None,
    sizes: dict[str, int] | None = None,
    pairs: list[tuple[Outcome, Outcome, str]] | None = None,
) -> str:
    now = sample.get("now", {})
    lines = [
        f"### Partner API, run {stamp}{' (quick)' if quick else ''}",
        "",
        f"**Machine:** {machine_line}. Load average before the runs: {load}.",
        "",
        f"Data: {len(world.restaurant_ids)} of the key's company's restaurants requested in "
        f"turn (of {world.raw_rows:,} raw rows / {world.canonical_rows:,} canonical events "
        f"over all restaurants: the last days in full and today up to now, landed with COPY "
        f"and materialized through Dagster). A sample answer held "
        f"{len(sample.get('order_velocity', []))} velocity intervals, "
        f"{len(sample.get('item_prep_times', []))} prep-time rows, "
        f"{len(sample.get('table_occupancy', []))} visits, {len(now.get('occupied_tables', []))} "
        f"occupied tables and {len(now.get('active_orders', []))} active orders now. "
        f"Load: wrk `-t{THREADS} -c{CONNECTIONS} -d{seconds}s`, client and server on the "
        f"same machine; server `uvicorn api.app:app --workers {WORKERS}`; the bench key's "
        f"rate limit raised to 1,000,000/s "
        f"(`PARTNER_SIGNALS_API_RATE_PER_SECOND`, `PARTNER_SIGNALS_API_RATE_BURST`)."
        + (f" Experiment: `{note}`." if note else ""),
        "",
        "| scenario | what | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors "
        "| bytes/answer | server CPU µs/req | postgres CPU µs/req | other |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        u = o.cpu
        per = 1e6 / o.requests if o.requests else 0.0
        lines.append(
            f"| {o.name} | {o.what} | {o.rps:,.0f} | {o.p50_ms:.1f} | {o.p90_ms:.1f} "
            f"| {o.p99_ms:.1f} | {o.max_ms:.1f} | {o.non2xx} | {o.socket_errors} "
            f"| {o.bytes_per_response:,.0f} | {u.server * per if u else 0:.0f} "
            f"| {u.postgres * per if u else 0:.0f} | {u.share(u.other) if u else 0:.0f}% |"
        )
    if sizes:
        lines += [
            "",
            "Answer bodies of the first restaurant (bytes/answer above adds the headers): "
            + ", ".join(f"{k} {v:,} B" for k, v in sizes.items())
            + (
                f" (gzip {sizes['gzip'] / sizes['identity']:.0%} of identity)"
                if sizes.get("identity") and "gzip" in sizes
                else ""
            )
            + ".",
        ]
    if shares:
        lines += [
            "",
            "304 share of the answers (counted by wrk): "
            + ", ".join(f"{k} {v:.1%}" for k, v in shares.items())
            + ". The tags were read once before the run; a tag changes when the data does "
            "(here: orders ageing out of the 5/15/60-minute velocity counts).",
        ]
    goals: list[tuple[str, str, str]] = []
    work = next((o for o in outcomes if o.name == "workforce"), None)
    ready = next((o for o in outcomes if o.name == "select-1"), None)
    if work:
        p99 = work.p99_ms if work.p99_ms is not None else float("inf")
        clean = work.non2xx == 0 and work.socket_errors == 0
        ratio = f" ({work.rps / ready.rps:.2f}x the `select 1` rate)" if ready and ready.rps else ""
        goal = "workforce signals at 32 clients, p99 ≤ 20 ms"
        goals.append(
            (goal, f"{p99:.1f} ms at {work.rps:,.0f} req/s{ratio}", verdict(p99 <= 20 and clean))
        )
    for o in outcomes:
        if o.name.startswith("workforce") and ready and ready.p99_ms and o.p99_ms is not None:
            x = o.p99_ms / ready.p99_ms
            goals.append(
                (
                    f"{o.name} p99 ≤ 1.5x the `select 1` p99 at 32 clients, same run",
                    f"{o.p99_ms:.1f} / {ready.p99_ms:.1f} ms = {x:.2f}x",
                    verdict(x <= 1.5 and o.non2xx == 0 and o.socket_errors == 0),
                )
            )
    ratios = [w.p99_ms / r.p99_ms for r, w, _ in pairs or [] if r.p99_ms and w.p99_ms is not None]
    if pairs:
        lines += [
            "",
            f"Paired rounds: select-1 then workforce, 5 s each, back to back ({len(pairs)} "
            "rounds, no settling between):",
            "",
            "| round | select-1 req/s | select-1 p99 ms | workforce req/s | workforce p99 ms "
            "| ratio | other (s1 / wf) | load average after |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for i, (r, w, avg) in enumerate(pairs, 1):
            x = w.p99_ms / r.p99_ms if r.p99_ms and w.p99_ms is not None else float("nan")
            other = "/".join(f"{o.cpu.share(o.cpu.other) if o.cpu else 0:.0f}%" for o in (r, w))
            lines.append(
                f"| {i} | {r.rps:,.0f} | {r.p99_ms or 0:.1f} | {w.rps:,.0f} "
                f"| {w.p99_ms or 0:.1f} | {x:.2f}x | {other} | {avg} |"
            )
    if ratios:
        median = statistics.median(ratios)
        goals.append(
            (
                "workforce p99 ≤ 1.5x the `select 1` p99 at 32 clients: median of the "
                "paired rounds",
                f"{median:.2f}x (rounds {', '.join(f'{x:.2f}' for x in ratios)})",
                verdict(median <= 1.5),
            )
        )
    lines += goal_table(goals)
    lines += [
        "",
        "`other` is the share of the whole machine used by processes that are not this "
        "benchmark's during the measured run (a busy machine shows here).",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    p.add_argument("--restaurants", type=int, default=10)
    p.add_argument("--days", type=int, default=3, help="full days before today")
    p.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    p.add_argument("--quick", action="store_true", help="5 s runs, 5 restaurants x 1 day, no docs")
    p.add_argument("--only", default="healthz,select1,workforce,gzip,conditional")
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="then this many back-to-back select-1 / workforce pairs of 5 s each: the p99 "
        "ratio per pair, so a neighbour's burst skews one pair, not the goal (0: none)",
    )
    add_run_options(p, settle=15.0)
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--reuse-db",
        metavar="NAME",
        help="measure a database a --keep-db run left (no landing or materializing; kept)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seconds = 5 if args.quick else min(args.duration, 60)
    warmup = 1 if args.quick else 2
    restaurants = 5 if args.quick else max(1, min(args.restaurants, 50))
    days = 1 if args.quick else max(0, min(args.days, 7))
    write_docs = writes_docs(args)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    wrk = ensure_wrk()
    srv = server_url()
    if args.reuse_db:
        name, url = args.reuse_db, with_database(srv, args.reuse_db)
        log(f"reusing database {name}")
    else:
        name, url = create_database(srv)
        log(f"database {name} created and migrated")
    scratch = Path(tempfile.mkdtemp(prefix="ps-bench-api-"))
    outcomes: list[Outcome] = []
    shares: dict[str, float] = {}
    sizes: dict[str, int] = {}
    pairs: list[tuple[Outcome, Outcome, str]] = []
    lua = scratch / "get.lua"
    lua.write_text(LUA)
    conditional_lua = scratch / "conditional.lua"
    conditional_lua.write_text(CONDITIONAL_LUA)
    try:
        host = machine(url, wrk)
        world = (
            reuse_world(url, name)
            if args.reuse_db
            else build_world(url, name, restaurants, days, scratch)
        )
        log(
            f"world: {world.raw_rows:,} raw rows, {world.canonical_rows:,} canonical events, "
            f"built in {world.build_seconds:.0f} s"
        )
        env = bench_env(
            url,
            data_dir=scratch,
            extra={
                # FastAPI's deprecation notice for ORJSONResponse, printed by every worker.
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
                **RATE_ENV,
                **parse_env(args.env),
            },
        )
        auth = f"Authorization: Bearer {world.key}"
        paths = [f"/v1/restaurants/{r}/workforce" for r in world.restaurant_ids]
        load = load_average()
        with server("api.app:app", env, []) as (base, proc):
            ctx = Load(wrk, lua, seconds, warmup, name, base, proc.pid, args.settle)
            status, body = fetch(base + paths[0], {"Authorization": f"Bearer {world.key}"})
            if status != 200:
                raise RuntimeError(f"workforce answered {status}")
            sample: dict[str, Any] = json.loads(body)
            sizes["identity"] = len(body)
            first_url = base + paths[0]
            _, zipped, zh = fetch_with_headers(
                first_url, {"Authorization": f"Bearer {world.key}", "Accept-Encoding": "gzip"}
            )
            if zh.get("content-encoding") == "gzip":
                sizes["gzip"] = len(zipped)
            tag = zh.get("etag", "")
            status, unchanged, _ = fetch_with_headers(
                first_url, {"Authorization": f"Bearer {world.key}", "If-None-Match": tag}
            )
            sizes["304"] = len(unchanged) if status == 304 else -1
            if "healthz" in only:
                outcomes.append(
                    measure(
                        ctx,
                        name="healthz",
                        what="GET /healthz: the same app, no key, no database",
                        paths=["/healthz"],
                        headers=[],
                    )
                )
            if "select1" in only:
                outcomes.append(
                    measure(
                        ctx,
                        name="select-1",
                        what="GET /readyz: the same app, one pooled `select 1`, no key",
                        paths=["/readyz"],
                        headers=[],
                    )
                )
            if "workforce" in only:
                outcomes.append(
                    measure(
                        ctx,
                        name="workforce",
                        what="GET /v1/restaurants/{id}/workforce, Bearer key, default span "
                        "(the last 24 h), restaurants in turn",
                        paths=paths,
                        headers=[auth],
                    )
                )
            if "gzip" in only:
                outcomes.append(
                    measure(
                        ctx,
                        name="workforce-gzip",
                        what="as workforce, with `Accept-Encoding: gzip` (compressed once per "
                        "snapshot)",
                        paths=paths,
                        headers=[auth, "Accept-Encoding: gzip"],
                    )
                )
            if "conditional" in only:
                tagged: list[str] = []
                for path in paths:
                    _, _, h = fetch_with_headers(
                        base + path, {"Authorization": f"Bearer {world.key}"}
                    )
                    tagged += [path, h["etag"]]
                conditional = measure(
                    dataclasses.replace(ctx, lua=conditional_lua),
                    name="workforce-304",
                    what="as workforce, each with `If-None-Match` of its tag read just "
                    "before the run",
                    paths=tagged,
                    headers=[auth],
                )
                outcomes.append(conditional)
                shares["workforce-304"] = conditional.not_modified / max(conditional.requests, 1)
            paired = dataclasses.replace(ctx, seconds=5, warmup=1, quiet=0)
            for i in range(max(0, args.rounds)):
                ready = measure(paired, name="select-1", what="", paths=["/readyz"], headers=[])
                work = measure(paired, name="workforce", what="", paths=paths, headers=[auth])
                pairs.append((ready, work, load_average()))
                log(f"round {i + 1}: p99 {work.p99_ms} / {ready.p99_ms} ms")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.keep_db or args.reuse_db:
            log(f"kept database {name}")
        else:
            drop_database(srv, name)
            log(f"database {name} dropped")
    stamp = utc_stamp()
    markdown = render(
        host.line(),
        world,
        outcomes,
        seconds=seconds,
        load=load,
        sample=sample,
        stamp=stamp,
        quick=args.quick,
        note=" ".join(args.env),
        shares=shares,
        sizes=sizes,
        pairs=pairs,
    )
    print(markdown)
    if write_docs:
        update_block(DOCS, "api", markdown, heading=API_SECTION)
        log("docs/benchmarks.md updated")
    return 0 if all(o.non2xx == 0 and o.socket_errors == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
