"""`partner-signals serve`: ingest API, partner API and Dagster (UI and daemon) together."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from cli.errors import CliError
from partner_signals.db import get_engine
from partner_signals.db.migrate import upgrade
from partner_signals.processes import bin_path, child_env, port_taken, start, stop, uvicorn_cmd
from partner_signals.settings import get_settings
from pipelines.instance import prepare_dagster_home


def check_ports(host: str, ports: dict[str, int]) -> None:
    """Every port serve would bind, before anything starts: one line naming the first one
    that is taken or wanted twice, and by which service."""
    wanted: dict[int, str] = {}
    for service, port in ports.items():
        if port in wanted:
            raise CliError(f"port {port} is wanted by both the {wanted[port]} and the {service}")
        wanted[port] = service
        reason = port_taken(host, port)
        if reason:
            raise CliError(f"port {port} on {host}, for the {service}, is not free: {reason}")


def run_all(
    *,
    host: str,
    ingest_port: int,
    api_port: int,
    admin_port: int,
    dagster_port: int,
    workers: int,
    dagster: bool,
) -> int:
    ports = {
        "ingest API (--ingest-port)": ingest_port,
        "partner API (--api-port)": api_port,
        "deliveries metrics (--api-port + 1)": api_port + 1,
        "admin API (--admin-port)": admin_port,
    }
    if dagster:
        ports["Dagster UI (--dagster-port)"] = dagster_port
    check_ports(host, ports)
    settings = get_settings()
    upgrade(get_engine(settings))
    prom_dir = Path(settings.data_dir).resolve() / "prometheus"
    shutil.rmtree(prom_dir, ignore_errors=True)
    prom_dir.mkdir(parents=True)
    env = child_env(settings, {"PROMETHEUS_MULTIPROC_DIR": str(prom_dir)})

    def metrics_env(process: str) -> dict[str, str]:
        """A multiprocess directory per process group: each /metrics then shows its own
        processes' metrics, not the sum of every service's (docs/operations.md)."""
        (prom_dir / process).mkdir()
        return {**env, "PROMETHEUS_MULTIPROC_DIR": str(prom_dir / process)}

    procs: list[tuple[str, subprocess.Popen[bytes]]] = [
        (
            "ingest",
            start(
                uvicorn_cmd("ingest.app:app", host=host, port=ingest_port, workers=workers),
                metrics_env("ingest"),
            ),
        ),
    ]
    print(f"ingest API   http://{host}:{ingest_port}  (docs at /docs)")
    procs.append(
        (
            "api",
            start(
                uvicorn_cmd("api.app:app", host=host, port=api_port, workers=workers),
                metrics_env("api"),
            ),
        )
    )
    print(f"partner API  http://{host}:{api_port}  (docs at /docs)")
    procs.append(
        (
            "admin",
            start(
                uvicorn_cmd("api.admin:app", host=host, port=admin_port, workers=1),
                metrics_env("admin"),
            ),
        )
    )
    print(f"admin API    http://{host}:{admin_port}  (docs at /docs; operator tokens)")
    procs.append(
        (
            "deliveries",
            start(
                [
                    bin_path("partner-signals"),
                    "deliveries",
                    "run",
                    "--forever",
                    "--metrics-port",
                    str(api_port + 1),
                ],
                metrics_env("deliveries"),
            ),
        )
    )
    print(
        f"deliveries   pushing the outbox continuously (metrics, with the database gauges, "
        f"on http://127.0.0.1:{api_port + 1}/metrics)"
    )
    if dagster:
        prepare_dagster_home(settings)  # exports DAGSTER_HOME and the storage URL
        denv = child_env(settings, {"PROMETHEUS_MULTIPROC_DIR": str(prom_dir / "dagster")})
        (prom_dir / "dagster").mkdir()
        workspace = str(Path("workspace.yaml").resolve())
        procs.append(
            (
                "dagster-webserver",
                start(
                    [
                        bin_path("dagster-webserver"),
                        "-w",
                        workspace,
                        "-h",
                        host,
                        "-p",
                        str(dagster_port),
                    ],
                    denv,
                ),
            )
        )
        procs.append(
            ("dagster-daemon", start([bin_path("dagster-daemon"), "run", "-w", workspace], denv))
        )
        print(
            f"Dagster UI   http://{host}:{dagster_port}  (sensors and schedules run in the daemon)"
        )

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping the rest")
                    code = proc.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        for _, proc in reversed(procs):
            stop(proc)
    return code
