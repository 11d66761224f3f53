"""Log in, look around, change a plan and an operator, and what a viewer is not offered."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from tests.admin.conftest import Tokens
from tests.console.conftest import login, shot


def test_login_sets_a_strict_httponly_cookie_and_a_bad_token_is_refused(
    page: Page, tokens: Tokens
) -> None:
    page.goto("/console/audit")
    assert "/console/login" in page.url
    page.fill("input[name=token]", "pso_not-a-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked operator token")
    shot(page, "login")

    page.fill("input[name=token]", tokens.admin)
    page.click("button[type=submit]")
    assert page.url.endswith("/console/audit")  # back where it was going
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "ps_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert tokens.admin not in cookie["value"]


def test_admin_sets_a_plan_and_it_is_in_the_audit_page(page: Page, tokens: Tokens) -> None:
    login(page, tokens.admin, f"/console/companies/{tokens.company_id}")
    expect(page.locator("[data-test=plan]")).to_have_text("standard")
    page.select_option("select[name=plan]", "enterprise")
    page.click("text=Set plan")
    expect(page.get_by_role("status")).to_contain_text("plan set to enterprise")
    expect(page.locator("[data-test=plan]")).to_have_text("enterprise")
    shot(page, "company")

    page.goto(f"/console/audit?company={tokens.company_id}&action=companies.")
    row = page.locator("tr", has_text="companies.set_plan")
    expect(row).to_contain_text('"plan": "enterprise"')
    shot(page, "audit")


def test_operator_created_once_then_revoked_and_its_session_ends(
    page: Page, tokens: Tokens, browser: Browser, admin_url: str, ids: str
) -> None:
    login(page, tokens.admin, "/console/operators")
    page.fill("input[name=name]", f"night-{ids}")
    page.select_option("select[name=role]", "viewer")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    secret = page.locator("[data-test=secret]").inner_text().strip()
    assert secret.startswith("pso_")
    shot(page, "secret-once")

    # The new viewer logs in in its own browser.
    other = browser.new_context(base_url=admin_url).new_page()
    login(other, secret)
    expect(other.locator("[data-test=who]")).to_contain_text(f"night-{ids}")

    page.goto("/console/operators")
    assert secret not in page.content()  # never shown again
    page.locator("tr", has_text=f"night-{ids}").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    shot(page, "operators")

    other.goto("/console")
    assert "/console/login" in other.url  # the revoked operator's session ended
    other.context.close()


def test_viewer_is_offered_nothing_that_changes(page: Page, tokens: Tokens) -> None:
    login(page, tokens.viewer, f"/console/companies/{tokens.company_id}")
    expect(page.locator("[data-test=plan]")).to_be_visible()
    buttons = [b.inner_text() for b in page.locator("main button").all()]
    assert buttons == [], buttons
    expect(page.locator("header nav")).not_to_contain_text("Operators")
    page.goto("/console/operators")
    expect(page.locator("h1")).to_contain_text("forbidden")


def test_a_form_without_the_sessions_csrf_token_is_refused(
    page: Page, tokens: Tokens, admin_url: str, engine: sa.Engine
) -> None:
    login(page, tokens.admin)
    cookie = next(c for c in page.context.cookies() if c["name"] == "ps_console")
    with httpx.Client(base_url=admin_url, cookies={"ps_console": cookie["value"]}) as client:
        answer = client.post(
            f"/console/companies/{tokens.company_id}/set-plan",
            data={"plan": "enterprise", "csrf_token": "forged"},
        )
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    with engine.connect() as conn:
        plan = conn.execute(
            sa.text("select plan from ops.companies where company_id = :c"),
            {"c": tokens.company_id},
        ).scalar()
    assert plan == "standard"
