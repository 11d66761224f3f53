"""The partner-signals CLI against the test database: registry commands and bulk ingest."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from partner_signals.crypto import hash_api_key

runner = CliRunner()


def run(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_db_upgrade_is_idempotent(cli_env: None) -> None:
    assert "revision" in run("db", "upgrade")
    assert "revision" in run("db", "upgrade")


def test_registry_commands(cli_env: None, engine: sa.Engine, ids: str) -> None:
    company, restaurant = f"cli-{ids}", f"cli-r-{ids}"
    out = run(
        "restaurants",
        "add",
        "--company",
        company,
        "--restaurant",
        restaurant,
        "--timezone",
        "Europe/London",
        "--name",
        "Soho",
    )
    assert "added" in out
    secret = f"whsec_cli_{ids}"
    run("integrations", "enable", "careem", "--company", company, "--webhook-secret", secret)
    out = run(
        "integrations",
        "enable",
        "careem",
        "--company",
        company,
        "--webhook-secret",
        "-",
        "--keep-previous",
        input="whsec_next\n",
    )
    assert "2 signing secrets" in out
    assert secret not in out
    with engine.connect() as conn:
        grace = conn.execute(
            sa.text(
                "select previous_secret_expires_at - now() from ops.integrations "
                "where company_id = :c and provider = 'careem'"
            ),
            {"c": company},
        ).scalar_one()
    # The previous secret is accepted for the rotation's grace period, not for ever.
    assert timedelta(hours=23) < grace <= timedelta(hours=24)
    key = run("ingest-keys", "create", "--company", company).strip().splitlines()[-1]
    assert key.startswith("psi_")
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("select key_hash from ops.ingest_keys where company_id = :c"), {"c": company}
        ).scalar_one()
        everything = conn.execute(
            sa.text("select string_agg(t::text, '') from ops.integrations t where company_id = :c"),
            {"c": company},
        ).scalar_one()
        audit = conn.execute(
            sa.text(
                "select string_agg(details::text, '') from ops.audit_log where company_id = :c"
            ),
            {"c": company},
        ).scalar_one()
    assert bytes(stored) == hash_api_key(key)
    assert secret not in everything and "whsec_next" not in everything
    assert key not in audit and secret not in audit


def test_bad_timezone_is_refused(cli_env: None, ids: str) -> None:
    result = runner.invoke(
        app,
        [
            "restaurants",
            "add",
            "--company",
            f"c-{ids}",
            "--restaurant",
            f"r-{ids}",
            "--timezone",
            "Mars/Olympus",
        ],
    )
    assert result.exit_code == 1
    assert "time zone" in result.output


def test_ingest_file_lands_valid_lines_once(
    cli_env: None, engine: sa.Engine, ids: str, tmp_path: Path
) -> None:
    company, restaurant = f"bulk-{ids}", f"bulk-r-{ids}"
    run("restaurants", "add", "--company", company, "--restaurant", restaurant, "--timezone", "UTC")
    events = [
        {
            "event_id": f"e{i}",
            "type": "table.seated",
            "occurred_at": "2026-11-23T12:00:00+00:00",
            "restaurant_id": restaurant,
            "table_id": f"t{i % 7}",
            "data": {"covers": 2, "note": "tab\tand\\backslash"},
        }
        for i in range(1200)
    ]
    lines = [orjson.dumps(e) for e in events]
    lines.insert(10, b'{"event_id": "broken"')
    lines.append(lines[0])  # a duplicate inside the file
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(app, ["ingest", str(path), "--company", company])
    assert result.exit_code == 1  # one line was rejected
    assert "1200 accepted, 1 duplicates, 1 rejected" in result.output
    again = runner.invoke(app, ["ingest", str(path), "--company", company])
    assert "0 accepted, 1201 duplicates" in again.output
    with engine.connect() as conn:
        count, body = conn.execute(
            sa.text(
                "select count(*), min(body) filter (where event_id = 'e1') from raw.order_events "
                "where company_id = :c"
            ),
            {"c": company},
        ).one()
        rejected = conn.execute(
            sa.text("select count(*) from raw.rejected_requests where company_id = :c"),
            {"c": company},
        ).scalar_one()
    assert count == 1200
    assert orjson.loads(body) == events[1]  # verbatim, escapes survive COPY
    assert rejected == 2  # the broken line, once per run


def test_unknown_provider_is_refused(cli_env: None) -> None:
    result = runner.invoke(
        app, ["integrations", "enable", "ubereats", "--company", "x", "--webhook-secret", "s"]
    )
    assert result.exit_code == 1
    assert "unknown provider" in result.output


def test_key_for_unknown_company_is_refused(cli_env: None) -> None:
    result = runner.invoke(app, ["ingest-keys", "create", "--company", f"nope-{uuid.uuid4().hex}"])
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("group", "table", "create"),
    [
        ("ingest-keys", "ingest_keys", []),
        ("keys", "partner_keys", ["--scope", "read:events"]),
    ],
)
def test_keys_revoke_by_prefix_once_and_audited(
    cli_env: None, engine: sa.Engine, ids: str, group: str, table: str, create: list[str]
) -> None:
    company = f"rev-{ids}"
    run(
        "restaurants",
        "add",
        "--company",
        company,
        "--restaurant",
        f"rev-r-{ids}",
        "--timezone",
        "UTC",
    )
    key = run(group, "create", "--company", company, *create).strip().splitlines()[-1]
    prefix = key[:10]
    assert "1 key(s) revoked" in run(group, "revoke", prefix)
    again = runner.invoke(app, [group, "revoke", prefix])
    assert again.exit_code == 1
    assert "no live" in again.output
    with engine.connect() as conn:
        revoked = conn.execute(
            sa.text(f"select revoked_at is not null from ops.{table} where key_hash = :h"),
            {"h": hash_api_key(key)},
        ).scalar_one()
        actions = conn.execute(
            sa.text(
                "select array_agg(action order by audit_id) from ops.audit_log where company_id = :c"
            ),
            {"c": company},
        ).scalar_one()
    assert revoked
    assert actions[-1] == f"{table}.revoke"
    assert key not in str(actions)
