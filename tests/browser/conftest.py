"""Browser tests of the web viewer: Playwright (sync API) driving Debian's Chromium.

The browser is never downloaded: the tests use ``/usr/bin/chromium``. Without it (or
without the ``playwright`` package) they are skipped with the reason printed, except when
``CI=true``: there the browser tests are mandatory and a missing browser fails the run
(``.ci/run`` installs Chromium first).

These tests live in their own directory because Playwright's sync API refuses to run inside
a running asyncio loop; nothing here uses pytest-asyncio.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.server.conftest import LiveServer, live_server, server_settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

__all__ = [
    "CHROMIUM",
    "SCREENSHOTS",
    "PageErrors",
    "browser_missing",
    "live_server",
    "require_browser",
    "server_settings",
    "sign_in",
]

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: the only browser these tests use."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
"""Where every browser test leaves a screenshot of its last page (``<test name>.png``)."""


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the python package 'playwright' is not installed (pip install -e '.[dev]')"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing (apt-get install -y chromium); no browser is downloaded"
    return None


def require_browser() -> None:
    """Skip the calling test module when the browser is missing; fail instead in CI."""
    reason = browser_missing()
    if reason is None:
        return
    message = f"browser tests: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the browser tests are mandatory)", pytrace=False)
    print(f"\nSKIPPED {message}")
    pytest.skip(message, allow_module_level=True)


@dataclass
class PageErrors:
    """What went wrong inside the page: uncaught exceptions and console errors."""

    exceptions: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Fail on an uncaught exception or a Content-Security-Policy violation."""
        assert not self.exceptions, f"uncaught errors in the page: {self.exceptions}"
        csp = [m for m in self.console if "Content Security Policy" in m]
        assert not csp, f"the page broke its own CSP: {csp}"


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    """One Playwright driver per test module (gone before other modules run)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Headless Chromium from ``/usr/bin/chromium`` (never a downloaded one)."""
    instance = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield instance
    instance.close()


def _screenshot_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_") + ".png"


@pytest.fixture
def page_errors() -> PageErrors:
    """The errors the ``page`` fixture collects (checked when the test ends)."""
    return PageErrors()


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, page_errors: PageErrors
) -> Iterator[Page]:
    """A fresh browser context and page; a screenshot is saved when the test ends.

    The live server is started first, so it is still serving when the screenshot is taken.
    """
    request.getfixturevalue("live_server")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: page_errors.exceptions.append(str(exc)))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            page_errors.console.append(message.text)

    tab.on("console", on_console)
    try:
        yield tab
        page_errors.check()
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            tab.evaluate("() => window.scrollTo(0, 0)")
            tab.screenshot(path=str(SCREENSHOTS / _screenshot_name(request)), full_page=True)
        finally:
            context.close()


def sign_in(page: Page, live: LiveServer, role: str = "admin", path: str = "/") -> None:
    """Open the viewer at ``path``, enter the token of ``role`` and wait for the live tail."""
    from playwright.sync_api import expect

    page.goto(live.url + path)
    page.locator("#token-input").fill(live.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#tail-status")).to_have_attribute("data-state", "live")
