"""Fixtures of the console's browser tests: one Chromium per session, a signed-in page
per test (at 1280 px, or 390 px with ``narrow_console``), errors checked at the end."""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator
from typing import Any

import pytest
from tests._server import RunningServer
from tests.e2e.console._console_browser import NARROW, WIDE, ConsolePage, open_browser

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API runs an
    event loop on the main thread while it is started, and asyncio.run() in any later
    test would then fail with "cannot be called from a running event loop"."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - dev extras install it
        pytest.skip(f"playwright is not installed: {exc}")
    with sync_playwright() as playwright:
        try:
            launched = open_browser(playwright)
        except Exception as exc:
            if os.environ.get("CI") == "true":
                raise
            pytest.skip(f"Chromium could not be started: {exc}")
        yield launched
        launched.close()


def admin_key(server: RunningServer) -> tuple[str, str]:
    """The bootstrap admin's access key, from the profile the server wrote."""
    credentials = configparser.ConfigParser()
    credentials.read(server.env["AWS_SHARED_CREDENTIALS_FILE"])
    profile = credentials["kennel"]
    return profile["aws_access_key_id"], profile["aws_secret_access_key"]


def _console(
    browser: Any, server: RunningServer, viewport: dict[str, int]
) -> Iterator[ConsolePage]:
    context = browser.new_context(viewport=viewport)
    page = ConsolePage(context.new_page(), server.url)
    page.sign_in_with_key(*admin_key(server))
    try:
        yield page
        page.assert_no_errors()
    finally:
        context.close()


@pytest.fixture
def console(browser: Any, server: RunningServer) -> Iterator[ConsolePage]:
    """The admin, signed in, at 1280 px; fails the test if the page logged an error."""
    yield from _console(browser, server, WIDE)


@pytest.fixture
def narrow_console(browser: Any, server: RunningServer) -> Iterator[ConsolePage]:
    """The same at a phone's 390 px."""
    yield from _console(browser, server, NARROW)


@pytest.fixture
def new_context(browser: Any, server: RunningServer) -> Iterator[Any]:
    """Make a ConsolePage that is not signed in yet: new_context(viewport=...)."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] | None = None) -> ConsolePage:
        context = browser.new_context(viewport=viewport or WIDE)
        contexts.append(context)
        return ConsolePage(context.new_page(), server.url)

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
