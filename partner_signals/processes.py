"""Child processes for serve, the demo and benchmarks: the same env, started and stopped cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import IO

import httpx

from partner_signals.db import libpq_url
from partner_signals.http_limits import PROTOCOL as HTTP_PROTOCOL
from partner_signals.settings import Settings

# uvicorn's --log-config: one format for every server, with the request id on each line.
LOG_CONFIG = str(resources.files("partner_signals").joinpath("logging.json"))


def child_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment children need: one resolved DATABASE_URL (so they do not each
    start the embedded server), the same data dir and key, and no telemetry."""
    env = dict(os.environ)
    env["DATABASE_URL"] = libpq_url(settings)
    env["PARTNER_SIGNALS_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    if settings.secret_key:
        env["PARTNER_SIGNALS_SECRET_KEY"] = settings.secret_key
    else:
        settings.master_key()  # make the key file before children race to make it
    # Children find the venv's tools (dbt, dagster) even when it is not activated.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_taken(host: str, port: int) -> str | None:
    """Why `port` on `host` cannot be bound by a server (uvicorn binds with SO_REUSEADDR,
    so a port only in TIME_WAIT is free), or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def bin_path(name: str) -> str:
    """A console script installed beside this interpreter (the project's venv)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def uvicorn_cmd(app: str, *, host: str, port: int, workers: int) -> list[str]:
    """uvicorn serving `app`, with the limits on request heads, slow and idle clients of
    partner_signals.http_limits (read from the PARTNER_SIGNALS_HTTP_* settings), and log
    lines that carry the request id (logging.json; refusals are logged at INFO)."""
    return [
        bin_path("uvicorn"),
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http",
        HTTP_PROTOCOL,
        "--no-access-log",
        "--log-level",
        "warning",
        "--log-config",
        LOG_CONFIG,
    ]


def start(
    cmd: list[str],
    env: Mapping[str, str],
    *,
    quiet: bool = False,
    cwd: Path | None = None,
    output: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """`cmd` in its own session; its stdout and stderr go to `output` when given (a test
    reads the server's log), nowhere when quiet, else to ours."""
    sink: IO[bytes] | int | None = output or (subprocess.DEVNULL if quiet else None)
    return subprocess.Popen(  # noqa: S603 - our own console scripts
        cmd,
        env=dict(env),
        cwd=cwd,
        stdout=sink,
        stderr=subprocess.STDOUT if output else sink,
        start_new_session=True,
    )


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0, *, streak: int = 1
) -> None:
    """Until `url` answers 200 `streak` times in a row (several answers in a row: with
    `--workers N` most likely every worker is up, not just the first)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            seen = seen + 1 if httpx.get(url, timeout=1.0).status_code == 200 else 0
        except httpx.HTTPError:
            seen = 0
        if seen >= streak:
            return
        time.sleep(0.1 if seen else 0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
