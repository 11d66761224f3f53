"""Signals at a glance: a restaurant in service now, its live figures on the console
exactly as the live views hold them. A database of its own, so its dbt views cannot
race another suite's builds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect

from partner_signals.control import operators
from partner_signals.control.actor import Actor
from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.settings import Settings
from tests.console.conftest import login, shot
from tests.pipelines.conftest import run_dbt
from tests.pipelines.service_day import RawEvent, drop_database, land, new_database, register


def _pos(restaurant: str, n: int, type_: str, ago_min: float, **fields: object) -> RawEvent:
    when = datetime.now(UTC) - timedelta(minutes=ago_min)
    body = {
        "event_id": f"now-{n}",
        "type": type_,
        "occurred_at": when.isoformat(),
        "restaurant_id": restaurant,
        "order_id": fields.pop("order_id", None),
        "table_id": fields.pop("table_id", None),
        "data": fields,
    }
    return RawEvent("pos", f"now-{n}", type_, when, body, restaurant_id=restaurant)


@pytest.fixture(scope="module")
def live(
    server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str]]:
    """A company in service: two tables seated, two orders open, one bill waiting 20 min;
    the live views built by dbt; an admin app on that database and a viewer token."""
    company, restaurant = "glance-co", "glance-r1"
    url = new_database(server_url, "ps_console")
    proc = None
    try:
        with psycopg.connect(url) as conn:
            register(conn, company, restaurant)
            land(
                conn,
                company,
                [
                    _pos(restaurant, 1, "table.seated", 50, table_id="T1", covers=2),
                    _pos(
                        restaurant,
                        2,
                        "order.created",
                        48,
                        order_id="O1",
                        table_id="T1",
                        covers=2,
                        channel="dine_in",
                    ),
                    _pos(restaurant, 3, "order.bill_requested", 20, order_id="O1", table_id="T1"),
                    _pos(restaurant, 4, "table.seated", 10, table_id="T2", covers=4),
                    _pos(
                        restaurant,
                        5,
                        "order.created",
                        9,
                        order_id="O2",
                        table_id="T2",
                        covers=4,
                        channel="dine_in",
                    ),
                ],
            )
        run_dbt(
            url,
            [
                "run",
                "--select",
                "+current_occupied_tables +current_active_orders +current_open_bills",
            ],
            Path(tmp_path_factory.mktemp("dbt-console")),
        )
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            _, token = operators.create(
                conn, Actor.cli(), name="glance-viewer", role="viewer", company_id=company
            )
        engine.dispose()
        port = free_port()
        proc = start(
            uvicorn_cmd("api.admin:app", host="127.0.0.1", port=port, workers=1),
            child_env(settings, {"DATABASE_URL": url}),
        )
        admin = f"http://127.0.0.1:{port}"
        wait_ready(f"{admin}/readyz", proc)
        yield admin, token, company
    finally:
        if proc is not None:
            stop(proc)
        drop_database(server_url, url)


def test_signals_page_shows_each_restaurants_now_and_freshness(
    browser: Browser, live: tuple[str, str, str]
) -> None:
    admin, token, company = live
    page = browser.new_context(base_url=admin, viewport={"width": 1280, "height": 900}).new_page()
    login(page, token, f"/console/companies/{company}/signals")
    row = page.locator("[data-test=now] tbody tr", has_text="glance-r1")
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    # restaurant, tz, open tables, covers, active orders, oldest order, open bills, bill wait
    assert cells[2:5] == ["2", "6", "2"], cells
    # Minutes since the events were landed: more if dbt was slow on a loaded machine.
    assert 48 <= int(cells[5].removesuffix(" min")) <= 55, cells
    assert cells[6] == "1", cells
    assert 20 <= int(cells[7].removesuffix(" min")) <= 27, cells
    expect(page.locator("[data-test=freshness]")).to_contain_text("order_velocity")
    shot(page, "signals")
    page.context.close()
