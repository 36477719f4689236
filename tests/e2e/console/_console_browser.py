"""Playwright (Python) driving Debian's Chromium against a real kennel server's console.

``open_browser`` launches the system Chromium (``tests/_browser.chromium_path``) headless,
offline except for 127.0.0.1; ``ConsolePage`` wraps a page with what every console test
needs: sign-in, a record of console errors and uncaught exceptions, and screenshots into
the test-artifacts folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests._browser import chromium_path

WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
LAUNCH_ARGS = [
    "--no-sandbox",  # root in containers and CI
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # a CDN would show
]


def artifacts_dir() -> Path:
    base = Path(os.environ.get("KENNEL_TEST_ARTIFACTS", "test-artifacts"))
    path = base / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_browser(playwright: Any) -> Any:
    executable = chromium_path()
    if executable is None:
        raise RuntimeError("no Chromium found (install it with scripts/install-browser)")
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=LAUNCH_ARGS, timeout=60_000
    )


@dataclass
class ConsolePage:
    """A browser page on the console, recording what went wrong in it."""

    page: Any
    base_url: str
    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.set_default_timeout(30_000)

    def _on_console(self, message: Any) -> None:
        if message.type not in ("error", "warning") or message.type == "warning":
            return
        text = message.text
        if not any(p.search(text) for p in self.expected):
            self.errors.append(f"console.{message.type}: {text} ({message.location})")

    def expect_error(self, pattern: str) -> None:
        """An error line the test provokes on purpose (e.g. the browser's own note of a
        403 answer when a test shows a denial)."""
        self.expected.append(re.compile(pattern))

    def goto(self, path: str = "") -> None:
        self.page.goto(f"{self.base_url}/console/{path}")

    def sign_in_with_key(self, access_key_id: str, secret: str) -> None:
        self.goto()
        self.page.get_by_label("Access key ID").fill(access_key_id)
        self.page.get_by_label("Secret access key").fill(secret)
        self.page.get_by_role("form", name="Sign in with an access key").get_by_role(
            "button", name="Sign in"
        ).click()
        self.page.get_by_role("button", name="Sign out").wait_for()

    def sign_in_with_password(self, user: str, password: str) -> None:
        self.goto()
        self.page.get_by_label("IAM user name").fill(user)
        self.page.get_by_label("Password", exact=True).fill(password)
        self.page.get_by_role("form", name="Sign in with a password").get_by_role(
            "button", name="Sign in"
        ).click()
        self.page.get_by_role("button", name="Sign out").wait_for()

    def screenshot(self, name: str) -> Path:
        path = artifacts_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_errors(self) -> None:
        assert not self.errors, "errors in the browser's console:\n" + "\n".join(self.errors)

    def horizontal_overflow(self) -> int:
        """How many pixels the page is wider than the window (0: nothing sticks out)."""
        return int(
            self.page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        )
