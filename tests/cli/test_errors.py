"""The real `partner-signals` command fails with one `error:` line and exit 1, never a
traceback: a bad secret key, an unreachable database, credentials sealed with another
key, a busy port on serve. --debug shows the traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from partner_signals.processes import free_port
from partner_signals.registry import add_restaurant, enable_integration
from partner_signals.settings import Settings

CLI = str(Path(sys.executable).with_name("partner-signals"))
OTHER_KEY = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="


def run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_SIGNALS_")}
    return subprocess.run(
        [CLI, *args], env={**base, **env}, capture_output=True, text=True, timeout=timeout
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def env(settings: Settings, database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "PARTNER_SIGNALS_DATA_DIR": str(settings.data_dir),
        "PARTNER_SIGNALS_SECRET_KEY": str(settings.secret_key),
    }


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("changeme", "placeholder"),
        ("not base64 at all!", "must be base64"),
        ("c2hvcnQ=", "32 bytes"),
    ],
)
def test_a_bad_secret_key_is_one_line(env: dict[str, str], key: str, says: str) -> None:
    line = one_error_line(run(["unmapped"], {**env, "PARTNER_SIGNALS_SECRET_KEY": key}))
    assert "PARTNER_SIGNALS_SECRET_KEY" in line and says in line
    assert key not in line


def test_an_unreachable_database_names_host_and_port_not_the_password(
    env: dict[str, str],
) -> None:
    url = "postgresql://someone:hunter2-pw@127.0.0.1:1/postgres"
    for args in (["unmapped"], ["companies", "list"], ["db", "upgrade"]):
        result = run(args, {**env, "DATABASE_URL": url})
        line = one_error_line(result)
        assert "127.0.0.1:1" in line, line
        assert "hunter2-pw" not in result.stdout + result.stderr


def test_debug_shows_the_traceback(env: dict[str, str]) -> None:
    url = "postgresql://someone:hunter2-pw@127.0.0.1:1/postgres"
    for flags, extra in (
        (["--debug"], {}),
        ([], {"PARTNER_SIGNALS_DEBUG": "1"}),
    ):
        result = run([*flags, "unmapped"], {**env, "DATABASE_URL": url, **extra})
        assert result.returncode == 1
        assert "Traceback" in result.stderr or "OperationalError" in result.stderr


def test_credentials_sealed_with_another_key_is_one_line(
    env: dict[str, str], engine: sa.Engine, settings: Settings, ids: str
) -> None:
    company = f"co-{ids}"
    with engine.begin() as conn:
        add_restaurant(conn, company_id=company, restaurant_id=f"r-{ids}", timezone="UTC")
        enable_integration(
            conn,
            key=settings.master_key(),
            company_id=company,
            provider="stripe",
            secrets={"webhook_secrets": ["whsec_old"]},
        )
    result = run(
        ["integrations", "enable", "stripe", "--company", company, "--keep-previous"],
        {
            **env,
            "PARTNER_SIGNALS_SECRET_KEY": OTHER_KEY,
            "PARTNER_SIGNALS_WEBHOOK_SECRET": "whsec_new",
        },
    )
    line = one_error_line(result)
    assert "do not open with this key" in line and "PARTNER_SIGNALS_SECRET_KEY" in line
    assert "whsec_" not in result.stdout + result.stderr


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def serve_ports(**chosen: int) -> list[str]:
    """Every port option of serve: free ones (the API's metrics port after it too) unless
    chosen, so only the port a test holds can be the busy one."""
    ports = {"ingest": free_port(), "api": free_port(), "admin": free_port(), "dagster": 0}
    ports["dagster"] = free_port()
    ports.update(chosen)
    return [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]


@pytest.mark.parametrize(
    ("option", "service"),
    [
        ("ingest", "ingest API"),
        ("api", "partner API"),
        ("admin", "admin API"),
        ("dagster", "Dagster UI"),
    ],
)
def test_serve_refuses_a_busy_port_before_starting_anything(
    env: dict[str, str], held_port: int, option: str, service: str
) -> None:
    for _ in range(3):  # a free port of serve_ports may be taken meanwhile by another test
        result = run(["serve", *serve_ports(**{option: held_port}), "--workers", "1"], env)
        line = one_error_line(result)
        if str(held_port) in line:
            break
    assert str(held_port) in line and service in line
    assert result.stdout == ""  # nothing was started (each start prints its address)


def test_serve_refuses_the_api_metrics_port_when_busy(env: dict[str, str]) -> None:
    with socket.socket() as held:
        while True:  # a free port whose next one can be held
            api = free_port()
            try:
                held.bind(("127.0.0.1", api + 1))
                break
            except OSError:
                continue
        held.listen()
        result = run(["serve", *serve_ports(api=api)], env)
    line = one_error_line(result)
    assert str(api + 1) in line and "deliveries metrics" in line


def test_serve_refuses_one_port_for_two_services(env: dict[str, str]) -> None:
    api = free_port()
    result = run(["serve", *serve_ports(api=api, admin=api + 1)], env)
    line = one_error_line(result)
    assert str(api + 1) in line and "admin API" in line and "deliveries metrics" in line


def test_a_long_refusal_with_brackets_and_line_breaks_stays_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    # DuckDB's error spans lines and quotes the SQL; the name in brackets is not markup.
    sql = "select [kept_as_written] from " + "a_table_that_does_not_exist_" * 4
    result = run(["query", sql], {**env, "PARTNER_SIGNALS_EXPORTS_DIR": str(tmp_path)})
    line = one_error_line(result)
    assert len(line) > 100  # longer than a terminal's 80 columns, not wrapped
    assert "[kept_as_written]" in line, line
