"""Conditional and compressed signal answers: the header rules, and a cursor refused."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from api.representation import CLOCK_COLUMNS, accepts_gzip, data_tag, none_match, render
from partner_signals.catalogue.signals import MARTS_DIR
from tests.api.conftest import Company, bearer

TAG = 'W/"abc"'


@pytest.mark.parametrize(
    "header",
    ['W/"abc"', '"abc"', '"x", W/"abc"', ' W/"x" ,W/"abc" ', "*"],
)
def test_if_none_match_holds_the_tag(header: str) -> None:
    assert none_match(header, TAG)


@pytest.mark.parametrize("header", ['W/"abd"', '"x", "y"', "abc", 'W/"abc', ""])
def test_if_none_match_without_the_tag(header: str) -> None:
    assert not none_match(header, TAG)


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("*;q=0", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_encoding(header: str | None, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip


def test_the_tag_ignores_the_clock_and_only_the_clock() -> None:
    answer = {
        "restaurant_id": "r",
        "as_of": "2026-12-04T20:00:00Z",
        "span": {"from": "a", "to": "b"},
        "now": {"active_orders": [{"order_id": "o", "elapsed_seconds": 5.0, "as_of": "t"}]},
        "time_to_pay": [{"order_id": "o", "status": "open", "time_to_pay_seconds": 5.0}],
    }
    later = orjson.loads(orjson.dumps(answer))
    later["as_of"], later["span"]["to"] = "2026-12-04T20:00:01Z", "c"
    later["now"]["active_orders"][0].update(elapsed_seconds=6.0, as_of="u")
    later["time_to_pay"][0]["time_to_pay_seconds"] = 6.0
    assert data_tag(later) == data_tag(answer)
    later["time_to_pay"][0]["status"] = "paid"
    assert data_tag(later) != data_tag(answer)


def test_small_answers_are_not_compressed() -> None:
    assert render({"restaurant_id": "r", "rows": []}).gzipped is None
    assert render({"rows": ["x" * 64] * 100}).gzipped is not None


def cursor_of(data: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


@pytest.mark.parametrize("route", ["workforce", "crm"])
@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!",
        cursor_of([1, 2]),
        cursor_of({"route": "events", "r": "x", "from": "a", "to": "b", "after": {}}),
    ],
)
def test_a_cursor_this_api_did_not_issue_is_422(
    api: TestClient, company: Company, route: str, cursor: str
) -> None:
    response = api.get(
        f"/v1/restaurants/{company.restaurants[0]}/{route}",
        params={"cursor": cursor},
        headers=bearer(company.full_key),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_cursor"


def test_another_routes_cursor_is_422(api: TestClient, company: Company) -> None:
    from api.routers.signals import Span, encode_cursor

    span = Span.model_validate({"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"})
    crm = encode_cursor("crm", company.restaurants[0], span, {"order_pacing": None})
    response = api.get(
        f"/v1/restaurants/{company.restaurants[0]}/workforce",
        params={"cursor": crm},
        headers=bearer(company.full_key),
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_cursor"


def yml_columns() -> list[tuple[str, dict[str, Any]]]:
    """(model, column) of every mart's yml."""
    found = []
    for path in sorted(MARTS_DIR.rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            for column in model.get("columns", []):
                found.append((model["name"], column))
    return found


def test_clock_columns_are_the_ones_the_dbt_yml_marks() -> None:
    """The tag leaves out exactly the columns the marts' yml marks `meta: {clock: true}`,
    and every column described as counted to read time is marked: a clock added to a
    mart without the mark would change every answer's tag every second."""
    marked = {c["name"] for _, c in yml_columns() if (c.get("meta") or {}).get("clock")}
    assert marked == CLOCK_COLUMNS
    for model, column in yml_columns():
        description = " ".join(str(column.get("description", "")).split())
        if (
            "read time" in description
            or description.startswith("as_of -")
            or "view was read" in description
        ):
            assert (column.get("meta") or {}).get("clock"), f"{model}.{column['name']}"
