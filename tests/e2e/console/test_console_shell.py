"""The console's shell: sign-in, navigation at both widths, keyboard use, sign-out."""

from __future__ import annotations

import uuid
from typing import Any

from tests._server import RunningServer
from tests._signing import wrong_secret
from tests.e2e.console._console_browser import NARROW
from tests.e2e.console.conftest import admin_key

OLD_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tr0ub4dor and 3 more words"
CHANGE_PASSWORD = "arn:aws:iam::aws:policy/IAMUserChangePassword"


def test_a_wrong_secret_is_refused_and_the_right_one_signs_in(
    new_context: Any, server: RunningServer
) -> None:
    page = new_context()
    page.expect_error(r"status of 401")
    key, secret = admin_key(server)
    page.goto()
    page.page.get_by_label("Access key ID").fill(key)
    page.page.get_by_label("Secret access key").fill(wrong_secret(secret))
    page.page.get_by_role("form", name="Sign in with an access key").get_by_role("button").click()
    alert = page.page.get_by_role("alert")
    alert.wait_for()
    assert "Sign-in failed" in alert.inner_text()
    page.sign_in_with_key(key, secret)
    assert page.page.get_by_role("heading", level=1).inner_text() == "Overview"
    page.screenshot("shell-overview-1280")
    page.assert_no_errors()


def test_the_session_is_an_httponly_cookie_and_sign_out_ends_it(console: Any) -> None:
    cookies = {c["name"]: c for c in console.page.context.cookies()}
    cookie = cookies["kennel-console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert console.page.evaluate("() => document.cookie") == ""  # scripts cannot read it
    console.page.get_by_role("button", name="Sign out").click()
    console.page.get_by_role("heading", name="Sign in to kennel").wait_for()
    console.page.reload()
    console.page.get_by_role("heading", name="Sign in to kennel").wait_for()


def test_the_narrow_layout_has_a_menu_and_nothing_sticks_out(
    new_context: Any, server: RunningServer
) -> None:
    page = new_context(NARROW)
    page.sign_in_with_key(*admin_key(server))
    nav = page.page.get_by_role("navigation", name="Console")
    assert not nav.is_visible()
    menu = page.page.get_by_role("button", name="Menu")
    menu.click()
    assert nav.is_visible() and menu.get_attribute("aria-expanded") == "true"
    page.screenshot("shell-menu-390")
    assert page.horizontal_overflow() == 0
    page.assert_no_errors()


def test_the_console_works_from_the_keyboard(console: Any) -> None:
    page = console.page
    page.reload()
    page.get_by_role("heading", name="Overview").wait_for()
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("() => document.activeElement.textContent.trim()"))
        if seen[-1] == "Overview" and len(seen) > 2:
            break
    assert "Sign out" in seen
    # A link in the navigation opens its page with Enter, and focus moves to its heading.
    page.get_by_role("navigation", name="Console").get_by_role("link").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.tagName === 'H1'"
    )


def test_a_password_that_must_be_reset_is_changed_then_signs_in(
    new_context: Any, server: RunningServer
) -> None:
    iam = server.session.client("iam", endpoint_url=server.url)
    user = f"reset-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.create_login_profile(UserName=user, Password=OLD_PASSWORD, PasswordResetRequired=True)
    iam.attach_user_policy(UserName=user, PolicyArn=CHANGE_PASSWORD)
    iam.attach_user_policy(UserName=user, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    page = new_context()
    page.expect_error(r"status of 403")  # the browser's own note of the PasswordResetRequired
    page.goto()
    page.page.get_by_label("IAM user name").fill(user)
    page.page.get_by_label("Password", exact=True).fill(OLD_PASSWORD)
    page.page.get_by_role("form", name="Sign in with a password").get_by_role("button").click()

    form = page.page.get_by_role("form", name="Choose a new password")
    form.wait_for()
    assert page.page.evaluate("() => document.activeElement.id") == "new-password"
    assert page.page.get_by_role("button", name="Sign out").count() == 0
    assert "kennel-console" not in {c["name"] for c in page.page.context.cookies()}
    assert _severe_violations(page.page) == []
    page.screenshot("shell-new-password-1280")

    form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    form.get_by_label("Confirm new password").fill(NEW_PASSWORD + "?")
    form.get_by_role("button", name="Change password and sign in").click()
    alert = page.page.get_by_role("alert")
    alert.wait_for()
    assert "do not match" in alert.inner_text()
    assert form.get_by_label("Confirm new password").get_attribute("aria-invalid") == "true"
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"]

    form.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Change password and sign in").click()
    page.page.get_by_role("button", name="Sign out").wait_for()
    assert page.page.get_by_role("heading", level=1).inner_text() == "Overview"
    assert "kennel-console" in {c["name"] for c in page.page.context.cookies()}
    profile = iam.get_login_profile(UserName=user)["LoginProfile"]
    assert profile["PasswordResetRequired"] is False
    page.assert_no_errors()

    # The new password now signs in directly.
    again = new_context()
    again.sign_in_with_password(user, NEW_PASSWORD)
    again.assert_no_errors()


def _severe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on what the page shows."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}}
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
