"""The console as an operator meets it: Debian's chromium driven by Playwright against a
real admin uvicorn over the test database. Each page visited is screenshotted into
.data/screenshots/console/ (not committed; docs/console.md shows one of each)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from partner_signals.processes import child_env, free_port, start, stop, uvicorn_cmd, wait_ready
from partner_signals.settings import Settings
from tests.admin.conftest import (  # noqa: F401 - fixtures
    Tokens,
    admin_url,
    ingest_url,
    make_tokens,
    tokens,
)

SHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser, admin_url: str) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(base_url=admin_url, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def login(page: Page, token: str, path: str = "/console") -> None:
    page.goto(path)
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="session")
def partner_api_url(settings: Settings) -> Iterator[str]:
    """`uvicorn api.app:app` (the partner API) on a free port over the test database."""
    port = free_port()
    proc = start(
        uvicorn_cmd("api.app:app", host="127.0.0.1", port=port, workers=1), child_env(settings)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/healthz", proc)
        yield url
    finally:
        stop(proc)
