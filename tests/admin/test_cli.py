"""The same control plane from the command line: tokens it makes work over HTTP, its
listings take --json, its changes are in the trail as cli:<os user>, refusals are one line."""

from __future__ import annotations

import getpass

import httpx
import orjson
from typer.testing import CliRunner

from cli.main import app
from tests.admin.conftest import assert_problem, bearer

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_operators_audit_and_companies_from_the_cli(
    cli_env: None, admin: httpx.Client, ids: str
) -> None:
    company = f"clic-{ids}"
    run(
        "restaurants",
        "add",
        "--company",
        company,
        "--restaurant",
        f"clir-{ids}",
        "--timezone",
        "UTC",
    )
    token = run("operators", "create", "--name", f"cli-op-{ids}", "--role", "admin").split()[-1]
    assert token.startswith("pso_")
    assert admin.get("/admin/v1/me", headers=bearer(token)).json()["role"] == "admin"

    listed = orjson.loads(run("operators", "list", "--json"))
    mine = next(o for o in listed if o["name"] == f"cli-op-{ids}")
    assert mine["token_prefix"] == token[:10] and token not in orjson.dumps(listed).decode()

    assert "enterprise" in run("companies", "set-plan", company, "enterprise")
    shown = orjson.loads(run("companies", "show", company, "--json"))
    assert shown[0]["plan"] == "enterprise"

    trail = orjson.loads(run("audit", "list", "--company", company, "--json"))
    actions = [(e["actor"], e["action"]) for e in trail["items"]]
    assert (f"cli:{getpass.getuser()}", "companies.set_plan") in actions

    run("operators", "revoke", f"cli-op-{ids}")
    assert_problem(admin.get("/admin/v1/me", headers=bearer(token)), 401, "unauthenticated")
    out = run("operators", "revoke", f"cli-op-{ids}", code=1)
    assert out.strip().splitlines() == [f"error: no live operator named 'cli-op-{ids}'"]
    assert "Traceback" not in run("companies", "set-plan", company, "gold", code=1)
