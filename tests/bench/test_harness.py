"""The benchmarks' shared harness: servers through the core's process helpers, wrk's
JSON line, the docs blocks. (No benchmark runs here.)"""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.harness import Wrk, bench_env, parse_env, server
from bench.report import update_block

EVENTS_LUA_LINE = {
    "duration_us": 5_000_000,
    "requests": 1000,
    "bytes": 21000,
    "rps": 200.0,
    "p50_us": 1500,
    "p90_us": 3000,
    "p99_us": 9000,
    "p999_us": 12000,
    "max_us": 15000,
    "mean_us": 1800.0,
    "non2xx": 4,
    "sent": 1000,
    "repeats": 0,
    "errors": {"connect": 1, "read": 2, "write": 0, "status": 4, "timeout": 3},
}


def test_a_wrk_line_reads_as_milliseconds_and_counts() -> None:
    result = Wrk.from_json(EVENTS_LUA_LINE)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (1.5, 9.0, 15.0)
    assert result.ok == 996
    assert result.socket_errors == 6  # status errors are non-2xx, not socket errors


def test_a_line_without_ingest_counters_reads_as_zero() -> None:
    line = {k: v for k, v in EVENTS_LUA_LINE.items() if k not in ("sent", "repeats", "errors")}
    result = Wrk.from_json(line)
    assert (result.sent, result.repeats, result.socket_errors) == (0, 0, 0)


def test_experiment_settings_parse_as_a_mapping() -> None:
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}


def test_a_server_runs_under_uvicorn_until_the_block_ends(database_url: str) -> None:
    env = bench_env(database_url)
    assert env["DATABASE_URL"] == database_url
    with server("bench.bare_asgi:app", env) as (base, proc):
        assert httpx.post(f"{base}/events", content=b"{}").status_code == 200
    assert proc.returncode == 0  # stopped gracefully (SIGTERM), not killed


def test_a_block_between_markers_is_replaced(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(
        "# B\n\n## API\n\n<!-- bench:api:start -->\nold\n<!-- bench:api:end -->\n\n## Next\n"
    )
    update_block(page, "api", "new\n", heading="## API")
    assert page.read_text() == (
        "# B\n\n## API\n\n<!-- bench:api:start -->\nnew\n<!-- bench:api:end -->\n\n## Next\n"
    )


def test_a_missing_block_goes_at_the_end_of_its_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# B\n\n## API\n\ntext\n\n## Next\n")
    update_block(page, "pushes", "rows\n", heading="## API")
    assert page.read_text() == (
        "# B\n\n## API\n\ntext\n\n<!-- bench:pushes:start -->\nrows\n"
        "<!-- bench:pushes:end -->\n\n## Next\n"
    )


def test_a_missing_page_is_made(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    update_block(page, "ingest", "rows\n", heading="## Ingest")
    assert page.read_text() == (
        "# Benchmarks\n\n## Ingest\n\n<!-- bench:ingest:start -->\nrows\n<!-- bench:ingest:end -->\n"
    )
