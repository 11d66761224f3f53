"""Restaurants over real HTTP and from the CLI: list, add, update; the time zone is fixed
once events have landed; bad values name their field; every change is in the trail."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

import httpx
import orjson
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from tests.admin.conftest import Tokens, assert_problem, bearer

runner = CliRunner()


def land_pos_event(engine: sa.Engine, company: str, restaurant: str) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into raw.order_events (company_id, restaurant_id, event_id, event_type, "
                "occurred_at, received_at, headers, body) "
                "values (:c, :r, :e, 'order_created', :t, :t, '{}', '{}')"
            ),
            {"c": company, "r": restaurant, "e": f"e-{restaurant}", "t": now},
        )


def test_add_list_update_and_the_trail(admin: httpx.Client, tokens: Tokens, ids: str) -> None:
    url = f"/admin/v1/companies/{tokens.company_id}/restaurants"
    op = bearer(tokens.operator)
    new = {"restaurant_id": f"marina-{ids}", "timezone": "Asia/Dubai", "name": "Marina"}
    added = admin.post(url, json=new, headers=op)
    assert added.status_code == 201, added.text
    assert added.json()["timezone"] == "Asia/Dubai" and added.json()["has_events"] is False
    # the same again is a no-op; the same id with another zone is a clear 409
    assert admin.post(url, json=new, headers=op).status_code == 200
    clash = admin.post(url, json={**new, "timezone": "Europe/London"}, headers=op)
    assert "update" in str(assert_problem(clash, 409, "conflict")["detail"])
    # an id taken by another company
    taken = admin.post(
        f"/admin/v1/companies/{tokens.other_company_id}/restaurants", json=new, headers=op
    )
    assert_problem(taken, 409, "conflict")

    listed = admin.get(url, headers=bearer(tokens.company_viewer)).json()
    assert [r["restaurant_id"] for r in listed] == sorted([tokens.restaurant_id, f"marina-{ids}"])

    moved = admin.post(
        f"{url}/marina-{ids}/update",
        json={"name": "Marina Walk", "timezone": "Asia/Riyadh"},
        headers=op,
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["name"], moved.json()["timezone"]) == ("Marina Walk", "Asia/Riyadh")

    trail = admin.get(
        "/admin/v1/audit",
        params={
            "company_id": tokens.company_id,
            "action": "restaurants.",
            "actor": f"operator-{ids}",
        },
        headers=bearer(tokens.viewer),
    ).json()["items"]
    assert [(e["action"], e["before"], e["after"]) for e in reversed(trail)] == [
        ("restaurants.add", None, {"name": "Marina", "timezone": "Asia/Dubai"}),
        (
            "restaurants.update",
            {"name": "Marina", "timezone": "Asia/Dubai"},
            {"name": "Marina Walk", "timezone": "Asia/Riyadh"},
        ),
    ]


def test_the_time_zone_is_fixed_once_events_landed(
    admin: httpx.Client, tokens: Tokens, engine: sa.Engine
) -> None:
    url = f"/admin/v1/companies/{tokens.company_id}/restaurants/{tokens.restaurant_id}/update"
    op = bearer(tokens.operator)
    land_pos_event(engine, tokens.company_id, tokens.restaurant_id)
    refused = admin.post(url, json={"timezone": "Asia/Dubai"}, headers=op)
    detail = str(assert_problem(refused, 409, "conflict")["detail"])
    assert "raw.order_events" in detail and "new restaurant" in detail
    # a rename is still fine, and the same zone is no change at all
    renamed = admin.post(url, json={"name": "Renamed", "timezone": "UTC"}, headers=op)
    assert renamed.json()["name"] == "Renamed" and renamed.json()["has_events"] is True


def test_bad_values_roles_and_scope(admin: httpx.Client, tokens: Tokens) -> None:
    url = f"/admin/v1/companies/{tokens.company_id}/restaurants"
    op = bearer(tokens.operator)
    bad_zone = admin.post(url, json={"restaurant_id": "x1", "timezone": "Mars/Base"}, headers=op)
    assert assert_problem(bad_zone, 422, "validation_failed")["errors"] == [
        {"field": "timezone", "message": "'Mars/Base' is not an IANA time zone"}
    ]
    bad_id = admin.post(url, json={"restaurant_id": "no spaces", "timezone": "UTC"}, headers=op)
    errors = assert_problem(bad_id, 422, "validation_failed")["errors"]
    assert [e["field"] for e in errors] == ["restaurant_id"]  # type: ignore[index,union-attr]
    update = f"{url}/{tokens.restaurant_id}/update"
    bad_update = admin.post(update, json={"timezone": "Nowhere"}, headers=op)
    assert_problem(bad_update, 422, "validation_failed")
    # viewers read, operators change
    for token in (tokens.viewer, tokens.company_viewer):
        assert_problem(
            admin.post(url, json={"restaurant_id": "x2", "timezone": "UTC"}, headers=bearer(token)),
            403,
            "forbidden",
        )
    # another company's restaurants do not exist for a bound token; unknown ids are 404
    other = f"/admin/v1/companies/{tokens.other_company_id}/restaurants"
    assert_problem(admin.get(other, headers=bearer(tokens.company_viewer)), 404, "not_found")
    assert_problem(
        admin.get("/admin/v1/companies/nope-co/restaurants", headers=op), 404, "not_found"
    )
    assert_problem(admin.post(f"{url}/nope/update", json={}, headers=op), 404, "not_found")


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_restaurants_from_the_cli(cli_env: None, engine: sa.Engine, ids: str) -> None:
    company, restaurant = f"clir-{ids}", f"clirr-{ids}"
    add = ("restaurants", "add", "--company", company, "--restaurant", restaurant)
    assert "added" in run(*add, "--timezone", "UTC")
    assert "already there" in run(*add, "--timezone", "UTC")
    out = run(*add, "--timezone", "Asia/Dubai", code=1)
    assert out.strip().splitlines()[0].startswith("error: restaurant")
    out = run(
        "restaurants", "update", restaurant, "--company", company, "--timezone", "Bad/Zone", code=1
    )
    assert out.strip().splitlines() == ["error: timezone: 'Bad/Zone' is not an IANA time zone"]
    assert "Asia/Dubai" in run(
        "restaurants", "update", restaurant, "--company", company, "--timezone", "Asia/Dubai"
    )
    land_pos_event(engine, company, restaurant)
    out = run(
        "restaurants", "update", restaurant, "--company", company, "--timezone", "UTC", code=1
    )
    assert "raw.order_events" in out and "Traceback" not in out
    listed = orjson.loads(run("restaurants", "list", "--company", company, "--json"))
    assert [(r["restaurant_id"], r["timezone"], r["has_events"]) for r in listed] == [
        (restaurant, "Asia/Dubai", True)
    ]
    trail = orjson.loads(run("audit", "list", "--company", company, "--json"))["items"]
    assert [(e["actor"], e["action"]) for e in reversed(trail)] == [
        (f"cli:{getpass.getuser()}", "companies.add"),
        (f"cli:{getpass.getuser()}", "restaurants.add"),
        (f"cli:{getpass.getuser()}", "restaurants.update"),
    ]
