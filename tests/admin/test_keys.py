"""Partner and ingest keys over the admin API: who may list, create and revoke them, that a
secret is shown once and nowhere else, and that a revocation reaches every worker of
`uvicorn --workers 2` (ingest and the partner API) within a second."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
import sqlalchemy as sa

from partner_signals.control.actor import Actor
from partner_signals.invalidation import APPLICATION_NAME
from partner_signals.processes import child_env, free_port, stop, uvicorn_cmd, wait_ready
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens, assert_problem, bearer

WORKERS = 2
BOUND_SECONDS = 1.0


def _company_text(engine: sa.Engine, company: str) -> str:
    """Everything stored about the company's keys and its audit trail, as text."""
    with engine.connect() as conn:
        return " ".join(
            str(conn.execute(sa.text(sql), {"c": company}).scalar() or "")
            for sql in (
                "select string_agg(t::text, ' ') from ops.partner_keys t where company_id = :c",
                "select string_agg(t::text, ' ') from ops.ingest_keys t where company_id = :c",
                "select string_agg(t::text, ' ') from ops.audit_log t where company_id = :c",
            )
        )


def test_an_admin_creates_a_partner_key_shown_once_listed_without_its_secret(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine
) -> None:
    c = tokens.company_id
    created = admin.post(
        f"/admin/v1/companies/{c}/keys",
        json={
            "scopes": ["read:crm", "read:workforce"],
            "restaurant_id": tokens.restaurant_id,
            "name": "Nory",
        },
        headers=bearer(tokens.admin),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["key"]
    assert secret.startswith("psk_") and body["prefix"] == secret[:10]
    assert body["scopes"] == ["read:crm", "read:workforce"]
    assert body["restaurant_id"] == tokens.restaurant_id
    listed = admin.get(f"/admin/v1/companies/{c}/keys", headers=bearer(tokens.company_viewer))
    assert listed.status_code == 200, listed.text
    (row,) = listed.json()
    assert row["prefix"] == secret[:10] and row["name"] == "Nory"
    assert row["last_used_at"] is None and row["revoked_at"] is None
    assert "key" not in row and secret not in listed.text
    with engine.connect() as conn:
        trail = conn.execute(
            sa.text("select actor, action, target, after from ops.audit_log where target = :t"),
            {"t": f"company/{c}/partner_key/{secret[:10]}"},
        ).one()
    assert (trail.actor, trail.action) == (f"admin-{tokens.company_id[4:]}", "partner_keys.create")
    assert trail.after["scopes"] == ["read:crm", "read:workforce"]
    assert secret not in _company_text(engine, c)


def test_revoking_a_partner_key_is_audited_then_refused_again(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine
) -> None:
    c = tokens.company_id
    secret = admin.post(
        f"/admin/v1/companies/{c}/keys",
        json={"scopes": ["read:events"]},
        headers=bearer(tokens.admin),
    ).json()["key"]
    revoked = admin.post(
        f"/admin/v1/companies/{c}/keys/{secret[:10]}/revoke", headers=bearer(tokens.company_admin)
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()[0]["revoked_at"] is not None
    again = admin.post(
        f"/admin/v1/companies/{c}/keys/{secret[:10]}/revoke", headers=bearer(tokens.admin)
    )
    assert_problem(again, 404, "not_found")
    assert admin.get(f"/admin/v1/companies/{c}/keys", headers=bearer(tokens.viewer)).json() == []
    everything = admin.get(
        f"/admin/v1/companies/{c}/keys?include_revoked=true", headers=bearer(tokens.viewer)
    ).json()
    assert [k["prefix"] for k in everything] == [secret[:10]]
    with engine.connect() as conn:
        actions = conn.execute(
            sa.text(
                "select action, before, after from ops.audit_log where target = :t "
                "order by audit_id"
            ),
            {"t": f"company/{c}/partner_key/{secret[:10]}"},
        ).all()
    assert [a.action for a in actions] == ["partner_keys.create", "partner_keys.revoke"]
    assert actions[1].before["revoked"] is False and actions[1].after["revoked"] is True
    assert secret not in _company_text(engine, c)


def test_ingest_keys_create_list_revoke(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine
) -> None:
    c = tokens.company_id
    created = admin.post(f"/admin/v1/companies/{c}/ingest-keys", headers=bearer(tokens.admin))
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert secret.startswith("psi_")
    listed = admin.get(f"/admin/v1/companies/{c}/ingest-keys", headers=bearer(tokens.viewer))
    assert [k["prefix"] for k in listed.json()] == [secret[:10]]
    assert secret not in listed.text and "key" not in listed.json()[0]
    revoked = admin.post(
        f"/admin/v1/companies/{c}/ingest-keys/{secret[:10]}/revoke", headers=bearer(tokens.admin)
    )
    assert revoked.status_code == 200, revoked.text
    assert (
        admin.get(f"/admin/v1/companies/{c}/ingest-keys", headers=bearer(tokens.viewer)).json()
        == []
    )
    assert secret not in _company_text(engine, c)


@pytest.mark.parametrize("kind", ["keys", "ingest-keys"])
def test_roles_and_company_scope(admin: httpx.Client, tokens: Tokens, kind: str) -> None:
    c, other = tokens.company_id, tokens.other_company_id
    body = {"scopes": ["read:events"]} if kind == "keys" else None
    # a viewer and an operator read, but neither creates nor revokes
    for token in (tokens.viewer, tokens.operator):
        assert admin.get(f"/admin/v1/companies/{c}/{kind}", headers=bearer(token)).is_success
        response = admin.post(f"/admin/v1/companies/{c}/{kind}", json=body, headers=bearer(token))
        assert_problem(response, 403, "forbidden")
        response = admin.post(
            f"/admin/v1/companies/{c}/{kind}/psx_000000/revoke", headers=bearer(token)
        )
        assert_problem(response, 403, "forbidden")
    # a token bound to one company cannot see or touch another's keys
    for token in (tokens.company_viewer, tokens.company_admin):
        assert_problem(
            admin.get(f"/admin/v1/companies/{other}/{kind}", headers=bearer(token)),
            404,
            "not_found",
        )
    response = admin.post(
        f"/admin/v1/companies/{other}/{kind}", json=body, headers=bearer(tokens.company_admin)
    )
    assert_problem(response, 404, "not_found")
    assert_problem(
        admin.get("/admin/v1/companies/no-such-company/" + kind, headers=bearer(tokens.admin)),
        404,
        "not_found",
    )
    assert_problem(
        admin.post(
            f"/admin/v1/companies/{c}/{kind}/psx_000000/revoke", headers=bearer(tokens.admin)
        ),
        404,
        "not_found",
    )


def test_invalid_partner_keys_name_the_field(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine, ids: str
) -> None:
    c = tokens.company_id
    url = f"/admin/v1/companies/{c}/keys"
    for body, field_name in (
        ({"scopes": []}, "scopes"),
        ({"scopes": ["write:everything"]}, "scopes.0"),
        ({"scopes": ["read:crm"], "name": ""}, "name"),
        ({"scopes": ["read:crm"], "restaurant_id": f"adm-or-{ids}"}, "restaurant_id"),
    ):
        problem = assert_problem(
            admin.post(url, json=body, headers=bearer(tokens.admin)), 422, "validation_failed"
        )
        assert field_name in [e["field"] for e in problem["errors"]], problem  # type: ignore[union-attr]
    with engine.connect() as conn:
        assert not conn.execute(
            sa.text("select count(*) from ops.partner_keys where company_id = :c"), {"c": c}
        ).scalar()


# --- a revocation reaches every worker within a second -------------------------------


@dataclass
class Fleet:
    admin: str
    ingest: str
    api: str
    logs: list[Path] = field(default_factory=list)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def _wait_listening(database_url: str, parent: int) -> None:
    """Until WORKERS children of `parent` have their cache listener in place (each
    listener's connection names its worker's pid)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            names = {f"{APPLICATION_NAME} {pid}" for pid in _children(parent)}
            listening = conn.execute(
                "select count(*) from pg_stat_activity where application_name = any(%s)",
                (list(names),),
            ).fetchone()
            if listening is not None and listening[0] >= WORKERS:
                return
            time.sleep(0.05)
    raise TimeoutError(f"the workers of {parent} are not listening")


@pytest.fixture(scope="module")
def fleet(
    settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """The admin API (one worker) and ingest and the partner API with two workers each,
    logging to files the test greps for secrets. Ingest trusts a cached key for 300 s,
    the partner API for 10 s: only the revocation's NOTIFY can make them refuse it sooner."""
    logs = tmp_path_factory.mktemp("fleet-logs")
    apps = {
        "admin": ("api.admin:app", 1, {}),
        "ingest": (
            "ingest.app:app",
            WORKERS,
            {"PARTNER_SIGNALS_AUTH_CACHE_SECONDS": "300", "PARTNER_SIGNALS_KEY_USAGE_SECONDS": "1"},
        ),
        "api": (
            "api.app:app",
            WORKERS,
            {
                "PARTNER_SIGNALS_API_RATE_PER_SECOND": "1e6",
                "PARTNER_SIGNALS_KEY_USAGE_SECONDS": "1",
            },
        ),
    }
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        paths = []
        for name, (app, workers, env) in apps.items():
            port = free_port()
            path = logs / f"{name}.log"
            paths.append(path)
            sink = stack.enter_context(path.open("wb"))
            cmd = uvicorn_cmd(app, host="127.0.0.1", port=port, workers=workers)
            cmd[cmd.index("warning")] = "info"
            proc = subprocess.Popen(
                cmd,
                env=child_env(settings, env),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(stop, proc)
            urls[name], procs[name] = f"http://127.0.0.1:{port}", proc
        for name, proc in procs.items():
            wait_ready(f"{urls[name]}/healthz", proc, timeout=60)
        for name in ("ingest", "api"):
            _wait_listening(database_url, procs[name].pid)
        yield Fleet(urls["admin"], urls["ingest"], urls["api"], paths)


@dataclass
class Hammer:
    """Clients sending the same request over new connections (so both workers answer),
    each answer noted as (sent, answered, status), wall clock."""

    url: str
    headers: dict[str, str]
    body: bytes | None
    answers: list[tuple[float, float, int]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {**self.headers, "Connection": "close"}
        with httpx.Client(timeout=5.0) as client:
            while not self.done.is_set():
                sent = time.time()
                if self.body is None:
                    status = client.get(self.url, headers=headers).status_code
                else:
                    status = client.post(self.url, headers=headers, content=self.body).status_code
                self.answers.append((sent, time.time(), status))
                time.sleep(0.003)


def _revoke_while_hammered(
    fleet: Fleet, admin_token: str, revoke_path: str, hammer: Hammer
) -> tuple[float, float]:
    """Revoke through the admin API while 4 clients use the key; returns (seconds from
    the revoke's answer to the first refusal, seconds to when every later request was)."""
    threads = [threading.Thread(target=hammer.run) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while sum(1 for a in hammer.answers if a[2] == 200) < 40:
            assert time.monotonic() < deadline, hammer.answers[-3:]
            time.sleep(0.01)
        response = httpx.post(fleet.admin + revoke_path, headers=bearer(admin_token), timeout=10)
        answered = time.time()
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + BOUND_SECONDS + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        hammer.done.set()
        for t in threads:
            t.join()
    after = [(sent, got, status) for sent, got, status in hammer.answers if got > answered]
    refused = [got for _, got, status in after if status == 401]
    assert refused, "the revoked key was never refused"
    late = [
        (sent - answered, status)
        for sent, _, status in after
        if sent > answered + BOUND_SECONDS and status != 401
    ]
    assert not late, f"served after revoke + {BOUND_SECONDS} s: {late[:5]}"
    assert len([a for a in after if a[0] > answered + BOUND_SECONDS]) > 20, "too few checks"
    return min(refused) - answered, max(
        (got for _, got, status in after if status != 401), default=answered
    ) - answered


def test_a_revoked_ingest_key_is_refused_by_both_workers_within_a_second(
    fleet: Fleet, tokens: Tokens, engine: sa.Engine
) -> None:
    c = tokens.company_id
    secret = httpx.post(
        f"{fleet.admin}/admin/v1/companies/{c}/ingest-keys", headers=bearer(tokens.admin)
    ).json()["key"]
    event = {
        "event_id": f"rev-{c}",
        "type": "table.seated",
        "occurred_at": "2026-11-23T19:04:05+04:00",
        "restaurant_id": tokens.restaurant_id,
        "table_id": "t-1",
        "data": {"covers": 2},
    }
    hammer = Hammer(
        f"{fleet.ingest}/events",
        {**bearer(secret), "Content-Type": "application/json"},
        orjson.dumps(event),
    )
    first, last_served = _revoke_while_hammered(
        fleet, tokens.admin, f"/admin/v1/companies/{c}/ingest-keys/{secret[:10]}/revoke", hammer
    )
    print(
        f"\nrevocation: first refusal {first * 1000:.0f} ms, last served {last_served * 1000:.0f} ms after the answer"
    )
    assert first < BOUND_SECONDS and last_served < BOUND_SECONDS, (first, last_served)
    for log in fleet.logs:
        assert secret not in log.read_text()


def test_a_revoked_partner_key_is_refused_by_both_workers_within_a_second(
    fleet: Fleet, tokens: Tokens, engine: sa.Engine
) -> None:
    c = tokens.company_id
    secret = httpx.post(
        f"{fleet.admin}/admin/v1/companies/{c}/keys",
        json={"scopes": ["read:exports"]},
        headers=bearer(tokens.admin),
    ).json()["key"]
    hammer = Hammer(f"{fleet.api}/v1/exports", bearer(secret), None)
    first, last_served = _revoke_while_hammered(
        fleet, tokens.admin, f"/admin/v1/companies/{c}/keys/{secret[:10]}/revoke", hammer
    )
    print(
        f"\nrevocation: first refusal {first * 1000:.0f} ms, last served {last_served * 1000:.0f} ms after the answer"
    )
    assert first < BOUND_SECONDS and last_served < BOUND_SECONDS, (first, last_served)
    for log in fleet.logs:
        assert secret not in log.read_text()


@pytest.mark.parametrize("kind", ["keys", "ingest-keys"])
def test_last_used_is_written_in_batches(fleet: Fleet, tokens: Tokens, kind: str) -> None:
    """Used through the partner API or ingest, a key shows when it was last used once its
    worker writes its batch (every second in this fleet; 15 s by default)."""
    c = tokens.company_id
    listing = f"{fleet.admin}/admin/v1/companies/{c}/{kind}"
    body = {"scopes": ["read:exports"]} if kind == "keys" else None
    secret = httpx.post(listing, json=body, headers=bearer(tokens.admin)).json()["key"]
    before = time.time()
    if kind == "keys":
        used_it = httpx.get(f"{fleet.api}/v1/exports", headers=bearer(secret))
    else:
        event = {
            "event_id": f"used-{c}",
            "type": "table.seated",
            "occurred_at": "2026-11-23T19:04:05+04:00",
            "restaurant_id": tokens.restaurant_id,
            "table_id": "t-1",
            "data": {"covers": 2},
        }
        used_it = httpx.post(
            f"{fleet.ingest}/events",
            content=orjson.dumps(event),
            headers={**bearer(secret), "Content-Type": "application/json"},
        )
    assert used_it.is_success, used_it.text
    # (not a write per request: tests/core/test_key_usage.py shows nothing before a flush)
    deadline = time.monotonic() + 10
    used = None
    while time.monotonic() < deadline and used is None:
        time.sleep(0.5)
        (row,) = httpx.get(listing, headers=bearer(tokens.viewer)).json()
        used = row["last_used_at"]
    assert used is not None, "last_used_at never written"
    assert datetime.fromisoformat(used).timestamp() >= before - 1


# --- the same from the command line ------------------------------------------------


def test_keys_from_the_cli_list_as_json_and_never_print_or_log_the_secret(
    cli_env: None, tokens: Tokens, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    caplog.set_level("DEBUG")
    c = tokens.company_id
    made = runner.invoke(
        app, ["keys", "create", "--company", c, "--scope", "read:crm", "--name", "crm"]
    )
    assert made.exit_code == 0, made.output
    partner = made.stdout.strip().splitlines()[-1]
    made = runner.invoke(app, ["ingest-keys", "create", "--company", c])
    assert made.exit_code == 0, made.output
    ingest = made.stdout.strip().splitlines()[-1]
    listed = runner.invoke(app, ["keys", "list", "--company", c, "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = orjson.loads(listed.stdout)
    assert row["prefix"] == partner[:10] and row["scopes"] == ["read:crm"]
    listed_ingest = runner.invoke(app, ["ingest-keys", "list", "--company", c, "--json"])
    assert [k["prefix"] for k in orjson.loads(listed_ingest.stdout)] == [ingest[:10]]
    table = runner.invoke(app, ["keys", "list", "--company", c])
    assert partner[:10] in table.stdout and partner not in table.stdout
    revoked = runner.invoke(app, ["ingest-keys", "revoke", ingest[:10], "--company", c])
    assert "1 key(s) revoked" in revoked.stdout
    refused = runner.invoke(app, ["keys", "list", "--company", "no-such-company"])
    assert refused.exit_code == 1 and refused.output.startswith("error: ")
    for secret in (partner, ingest):
        assert secret not in listed.output + listed_ingest.output + revoked.output
        assert secret not in caplog.text
        assert secret not in _company_text(engine, c)
    with engine.connect() as conn:
        actors = set(
            conn.execute(
                sa.text(
                    "select actor from ops.audit_log where company_id = :c and action like "
                    "'%keys.%'"
                ),
                {"c": c},
            ).scalars()
        )
    assert actors == {Actor.cli().name}
