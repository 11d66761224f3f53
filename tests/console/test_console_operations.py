"""The console's operations in a real browser against real servers: enable and test an
integration and watch a real signed webhook land in its page; replay a dead letter to a
local partner and see it delivered; revoke a key and see the partner API refuse the next
call; and a viewer offered nothing that changes anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from partner_signals.pushes.worker import RunSummary
from partner_signals.settings import Settings
from tests.admin.conftest import Tokens
from tests.admin.test_dead_letters import deliver as deliver_now
from tests.admin.test_dead_letters import refused_pushes
from tests.admin.test_end_to_end import SECRET, deliveroo_webhook
from tests.console.conftest import login, shot
from tests.pushes.conftest import Partner, partners  # noqa: F401 - the fixture

T = TypeVar("T")


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """On a thread of its own: the push worker runs its own event loop, and Playwright's
    sync API keeps one running on this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def deliver(engine: sa.Engine, settings: Settings, company: str) -> RunSummary:
    return off_loop(deliver_now, engine, settings, company)


def test_enable_test_and_watch_a_signed_webhook_land(
    page: Page, tokens: Tokens, ingest_url: str
) -> None:
    company, restaurant = tokens.company_id, tokens.restaurant_id
    login(page, tokens.operator, f"/console/companies/{company}")
    tile = page.locator("[data-test=tile-deliveroo]")
    expect(tile).to_have_attribute("data-state", "disabled")
    tile.get_by_role("link", name="Set up…").click()

    page.fill("#enable input[name=secret]", SECRET)
    page.fill("#enable input[name=restaurant_id]", restaurant)
    page.locator("#enable").get_by_role("button", name="Enable").click()
    expect(page.get_by_role("status")).to_contain_text("deliveroo enabled")
    expect(page.locator("[data-test=enabled]")).to_have_text("enabled")

    page.get_by_role("button", name="Send a signed test").click()
    expect(page.locator("[data-test=test-result]")).to_contain_text("Test passed")
    expect(page.locator("[data-test=events]")).to_have_text("0 / 0")  # the test landed nothing

    with httpx.Client(base_url=ingest_url, timeout=10) as ingest:
        landed = deliveroo_webhook(ingest, company, restaurant)
        assert landed.status_code == 200, landed.text
    page.goto(f"/console/companies/{company}/integrations/deliveroo")
    expect(page.locator("[data-test=events]")).to_have_text("1 / 1")
    expect(page.locator("[data-test=last-event]")).to_contain_text("s ago")
    assert page.locator("svg.chart rect[data-kind=events][data-count='1']").count() == 1
    shot(page, "integration")

    page.goto(f"/console/companies/{company}")
    expect(page.locator("[data-test=tile-deliveroo]")).to_have_attribute("data-state", "connected")
    shot(page, "hub")


def test_replay_a_dead_letter_and_see_it_delivered(
    page: Page,
    tokens: Tokens,
    engine: sa.Engine,
    settings: Settings,
    partners: Callable[..., Partner],  # noqa: F811
) -> None:
    company, restaurant = tokens.company_id, tokens.restaurant_id
    partner = partners(respond=lambda r: (400, {}, b"no"))
    off_loop(refused_pushes, engine, settings, company, restaurant, partner)  # 3 dead letters

    login(page, tokens.operator, f"/console/companies/{company}/pushes")
    rows = page.locator("[data-test=dead-letters] tbody tr")
    expect(rows).to_have_count(3)
    backlog = page.locator("[data-test=backlog] tr", has_text="webhook")
    expect(backlog.locator(".badge.bad")).to_have_text("2")
    shot(page, "pushes")

    page.goto(f"/console/companies/{company}")
    expect(page.locator("[data-test=health]")).to_contain_text(
        "2 dead letter(s) of webhook waiting for replay"
    )
    page.goto(f"/console/companies/{company}/pushes")

    partner.respond = lambda r: (200, {}, b"ok")  # the partner fixed its side
    before = len(partner.received)
    first = rows.first
    first.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("1 re-queued")
    expect(page.locator("[data-test=dead-letters] tbody tr")).to_have_count(2)

    summary = deliver(engine, settings, company)
    assert summary.delivered == 1
    assert len(partner.received) == before + 1

    # The rest as a selection.
    for box in page.locator("[data-test=dead-letters] input[name=ids]").all():
        box.check()
    page.get_by_role("button", name="Replay selected").click()
    expect(page.get_by_role("status")).to_contain_text("2 re-queued")
    assert deliver(engine, settings, company).delivered == 2
    page.goto(f"/console/companies/{company}/pushes?replayed=true")
    expect(page.locator("[data-test=dead-letters] tbody tr")).to_have_count(3)
    page.goto(f"/console/companies/{company}/adapters/webhook")
    expect(page.locator(".facts")).to_contain_text("delivered")
    shot(page, "adapter")


def test_revoke_a_key_and_the_next_call_is_refused(
    page: Page, tokens: Tokens, partner_api_url: str
) -> None:
    company, restaurant = tokens.company_id, tokens.restaurant_id
    login(page, tokens.company_admin, f"/console/companies/{company}/keys")
    page.get_by_role("button", name="Create a partner key").click()
    secret = page.locator("[data-test=secret]").inner_text().strip()
    page.get_by_role("link", name="Done").click()
    prefix = secret[:10]

    path = f"/v1/restaurants/{restaurant}/workforce"
    with httpx.Client(base_url=partner_api_url, timeout=10) as api:
        before = api.get(path, headers={"Authorization": f"Bearer {secret}"})
        assert before.status_code != 401, before.text
        assert secret not in page.content()
        shot(page, "keys")

        page.locator(f"[data-test=key-{prefix}]").get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("status")).to_contain_text("revoked")
        revoked_at = time.monotonic()
        while True:
            after = api.get(path, headers={"Authorization": f"Bearer {secret}"})
            if after.status_code == 401 or time.monotonic() - revoked_at > 1.0:
                break
            time.sleep(0.02)
        assert after.status_code == 401, after.text
        assert after.json()["code"] == "invalid_key"


def test_a_viewer_is_offered_nothing_that_changes_anything(page: Page, tokens: Tokens) -> None:
    company = tokens.company_id
    login(page, tokens.company_viewer, f"/console/companies/{company}")
    for path in (
        f"/console/companies/{company}",
        f"/console/companies/{company}/integrations/stripe",
        f"/console/companies/{company}/adapters/webhook",
        f"/console/companies/{company}/pushes",
        f"/console/companies/{company}/keys",
        f"/console/companies/{company}/signals",
        f"/console/audit?company={company}",
    ):
        page.goto(path)
        assert page.locator("h1").count() == 1, path
        # The only buttons a viewer sees are filters (GET forms) and logging out.
        posts = page.locator("main form[method=post]")
        assert posts.count() == 0, (path, posts.first.evaluate("f => f.action"))
        assert page.locator("main a.button").count() == 0, path
