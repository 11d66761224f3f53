"""What the benchmarks share: a bench database, servers under uvicorn, wrk, the machine.

Processes are started, awaited and stopped with the core's helpers
(`partner_signals.processes`), the same as `serve` and the demo; this module adds only
what a measurement needs on top (a fixed key, wrk, the CPU meter, the machine's line).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.cpu import Meter, Usage, settle
from bench.report import Machine, Outcome
from partner_signals.db import to_libpq, to_sqlalchemy, with_database
from partner_signals.db.migrate import upgrade
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = Path(__file__).with_name("results")
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# A fixed, benchmark-only AES-256 key: the registry seals secrets with it and every
# server started here opens them with it.
BENCH_SECRET_KEY = base64.b64encode(b"partner-signals-bench-only-key!!").decode()
THREADS, CONNECTIONS, WORKERS = 2, 32, 2
HOST = "127.0.0.1"

Log = Callable[[str], None]


def logger(name: str, *, stream: Any = None) -> Log:
    """`log(message)` printing "[name HH:MM:SS] message" (stderr unless `stream`)."""

    def log(message: str) -> None:
        print(
            f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=stream or sys.stderr, flush=True
        )

    return log


log = logger("bench")


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# ---------------------------------------------------------------- database


def server_url() -> str:
    """DATABASE_URL's server (libpq form), or the local default (said so)."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return to_libpq(env)
    log(f"DATABASE_URL is unset: using {DEFAULT_SERVER}")
    return DEFAULT_SERVER


def create_database(server: str, prefix: str = "ps_bench") -> tuple[str, str]:
    """A new database `<prefix>_<random>` on `server`, migrated: (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(server, name)
    engine = sa.create_engine(to_sqlalchemy(url))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return name, url


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def bench_settings(url: str, **overrides: Any) -> Settings:
    """Settings for the bench database, with the bench's fixed secret key."""
    return Settings(database_url=url, secret_key=BENCH_SECRET_KEY, **overrides)


def bench_env(
    url: str, *, data_dir: Path | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a server under test: the core's child environment (one
    DATABASE_URL, the key, no telemetry) for the bench database, unbuffered output."""
    settings = bench_settings(url, **({"data_dir": data_dir} if data_dir else {}))
    return child_env(settings, {"PYTHONUNBUFFERED": "1", **(extra or {})})


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` command-line items (experiments) as a mapping."""
    pairs = (item.partition("=") for item in items)
    return {name: value for name, _, value in pairs}


# ---------------------------------------------------------------- command line


def add_run_options(p: argparse.ArgumentParser, *, settle: float) -> None:
    """The options every wrk-style benchmark takes: --docs, --settle, --keep-db."""
    p.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the result into docs/benchmarks.md (default: unless --quick)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=settle,
        help="before each run wait up to this many seconds for the machine to be idle "
        f"(default {settle:g})",
    )
    p.add_argument("--keep-db", action="store_true", help="do not drop the bench database")


def writes_docs(args: argparse.Namespace) -> bool:
    return bool(args.docs) if args.docs is not None else not args.quick


# ---------------------------------------------------------------- the machine


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed; install it (Debian: sudo apt-get install -y wrk) and rerun")
    log("wrk not found: installing the Debian package (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, env=env, timeout=300)
    found = shutil.which("wrk")
    if not found:
        sys.exit("apt-get installed wrk but it is not on PATH")
    return found


PG_SETTINGS = (
    "server_version",
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "commit_delay",
    "shared_buffers",
    "max_connections",
)


def machine(url: str, wrk: str | None = None) -> Machine:
    """The machine, the tools and the PostgreSQL settings a result depends on."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    settings: dict[str, str] = {}
    with psycopg.connect(url, connect_timeout=5) as conn:
        for name in PG_SETTINGS:
            settings[name] = str(conn.execute(f"show {name}").fetchone()[0])  # type: ignore[index]
    wrk_version = "-"
    if wrk:
        version = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        wrk_version = (version.stdout + version.stderr).strip().splitlines()[0].split(" [")[0]
    import uvicorn

    return Machine(
        nproc=len(os.sched_getaffinity(0)),
        cpu=cpu,
        memory_gib=round(mem_kb / 1024 / 1024, 1),
        kernel=os.uname().release,
        python=sys.version.split()[0],
        uvicorn=uvicorn.__version__,
        wrk=wrk_version,
        pg=settings,
    )


def wait_for_quiet(seconds: float, name: str, say: Log = log) -> None:
    """Give other work on the machine a bounded chance to finish before measuring."""
    if seconds <= 0:
        return
    busy = settle(seconds)
    note = "" if busy <= 20 else f" (still busy after {seconds:.0f} s: results will be low)"
    say(f"{name}: machine {busy:.0f}% busy before the run{note}")


# ---------------------------------------------------------------- servers and wrk


@contextmanager
def server(
    app: str, env: Mapping[str, str], extra: Sequence[str] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `uvicorn app --workers 2` on a free port until the block ends; stopped
    gracefully (SIGTERM), so requests in flight finish before it returns."""
    port = free_port()
    cmd = [*uvicorn_cmd(app, host=HOST, port=port, workers=WORKERS), *extra]
    proc = start(cmd, env, cwd=ROOT)
    base = f"http://{HOST}:{port}"
    try:
        wait_ready(f"{base}/readyz", proc, timeout=60, streak=8)
        yield base, proc
    finally:
        stop(proc, timeout=20)


@dataclass
class Wrk:
    """One wrk run, as printed by a script's done() ("BENCH_JSON {...}")."""

    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    bytes: int = 0
    sent: int = 0
    repeats: int = 0
    # 304s, from a script that counts them in a response() hook (bench/api.py's
    # conditional script); 0 from scripts without one.
    not_modified: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Wrk:
        return cls(
            requests=data["requests"],
            rps=data["rps"],
            p50_ms=data["p50_us"] / 1000,
            p90_ms=data["p90_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            max_ms=data["max_us"] / 1000,
            non2xx=data["non2xx"],
            bytes=data.get("bytes", 0),
            sent=data.get("sent", 0),
            repeats=data.get("repeats", 0),
            not_modified=data.get("not_modified", 0),
            errors=data.get("errors", {}),
        )


def run_wrk(
    wrk: str,
    url: str,
    seconds: int,
    *,
    lua: Path,
    script_args: Sequence[str] = (),
    headers: Sequence[str] = (),
    meter: Meter | None = None,
    server_pid: int = 0,
) -> tuple[Wrk, Usage | None]:
    """wrk at THREADS x CONNECTIONS for `seconds` against `url`; with a meter, where
    the machine's CPU went meanwhile (wrk is our child, reaped before the meter stops)."""
    cmd = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s"]
    for header in headers:
        cmd += ["-H", header]
    cmd += ["-s", str(lua), url, "--", *script_args]
    if meter:
        meter.start()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        stdout, stderr = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    usage = meter.stop(server_pid=server_pid) if meter else None
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stdout[-2000:]} {stderr}")
    return Wrk.from_json(json.loads(line.removeprefix("BENCH_JSON "))), usage


def wrk_outcome(
    name: str, what: str, result: Wrk, usage: Usage | None, *, rows: int | None = None
) -> Outcome:
    """A report row from one measured wrk run (`rows`: what the scenario stored)."""
    return Outcome(
        name=name,
        what=what,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p90_ms=result.p90_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        requests=result.requests,
        ok=result.ok,
        non2xx=result.non2xx,
        socket_errors=result.socket_errors,
        repeats=result.repeats,
        not_modified=result.not_modified,
        rows=rows,
        in_flight_limit=CONNECTIONS,
        bytes_per_response=result.bytes / max(result.requests, 1),
        cpu=usage,
    )
