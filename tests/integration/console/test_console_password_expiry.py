"""Console passwords under the account's password policy, over plain HTTP: one older than
MaxPasswordAge is held for a new one (as a required reset is), HardExpiry refuses it
until an administrator sets another, and AllowUsersToChangePassword lets a user with no
policies choose their new one on the sign-in page."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests._server import RunningServer

OLD = "correct horse battery staple"
NEW = "tr0ub4dor and 3 more words"
CHANGE_PASSWORD = "arn:aws:iam::aws:policy/IAMUserChangePassword"
COOKIE = "kennel-console"


@pytest.fixture
def iam(server: RunningServer) -> Iterator[Any]:
    """The admin's ``iam`` client; the account's password policy is removed afterwards (the
    session's server is shared)."""
    client = server.session.client("iam", endpoint_url=server.url)
    yield client
    # NoSuchEntity: the test deleted it itself.
    with contextlib.suppress(client.exceptions.NoSuchEntityException):
        client.delete_account_password_policy()


def _user(iam: Any, *, policy: str | None = CHANGE_PASSWORD, reset: bool = False) -> str:
    name = f"aged-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password=OLD, PasswordResetRequired=reset)
    if policy is not None:
        iam.attach_user_policy(UserName=name, PolicyArn=policy)
    return name


def _age(server: RunningServer, name: str, days: int) -> None:
    """Make the user's password ``days`` older, in the server's own database."""
    with contextlib.closing(sqlite3.connect(server.home / "kennel.db")) as db, db:
        changed = db.execute(
            "UPDATE iam_login_profiles SET password_changed_at = "
            "datetime(password_changed_at, ?) WHERE user_name = ?",
            (f"-{days} days", name),
        ).rowcount
    assert changed == 1


def _signin(client: httpx.Client, name: str, password: str) -> httpx.Response:
    return client.post("/console/api/signin", json={"user_name": name, "password": password})


def _change(client: httpx.Client, name: str, old: str, new: str) -> httpx.Response:
    return client.post(
        "/console/api/change-password",
        json={"user_name": name, "old_password": old, "new_password": new},
    )


def test_an_expired_password_is_held_for_a_new_one(server: RunningServer, iam: Any) -> None:
    iam.update_account_password_policy(MaxPasswordAge=30, MinimumPasswordLength=12)
    name = _user(iam)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert _signin(client, name, OLD).status_code == 200  # not old enough yet
    _age(server, name, 31)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        held = _signin(client, name, OLD)
        assert held.status_code == 403, held.text
        assert held.json()["__type"] == "PasswordResetRequired"
        assert "expired" in held.json()["message"]
        assert "12 to 128 characters" in held.json()["message"]  # what a new one needs
        assert COOKIE not in client.cookies
        assert _signin(client, name, NEW).status_code == 401  # a wrong one learns nothing

        changed = _change(client, name, OLD, NEW)
        assert changed.status_code == 200, changed.text
        assert changed.json()["signed_in"] is True and COOKIE in client.cookies
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert _signin(client, name, NEW).status_code == 200
    profile = iam.get_login_profile(UserName=name)["LoginProfile"]
    assert profile["PasswordResetRequired"] is False  # GetLoginProfile as it always was


def test_hard_expiry_waits_for_an_administrator(server: RunningServer, iam: Any) -> None:
    iam.update_account_password_policy(MaxPasswordAge=30, HardExpiry=True)
    name = _user(iam)
    _age(server, name, 31)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        refused = _signin(client, name, OLD)
        assert refused.status_code == 403
        assert refused.json()["__type"] == "PasswordExpired"
        assert "administrator" in refused.json()["message"]
        assert f"kennel iam users set-password {name}" in refused.json()["message"]
        assert _signin(client, name, NEW).status_code == 401

        changed = _change(client, name, OLD, NEW)
        assert changed.status_code == 403 and changed.json()["__type"] == "PasswordExpired"
        assert COOKIE not in client.cookies

    iam.update_login_profile(UserName=name, Password=NEW)  # the administrator's reset
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert _signin(client, name, NEW).status_code == 200


def test_allow_users_to_change_password_on_the_sign_in_page(
    server: RunningServer, iam: Any
) -> None:
    name = _user(iam, policy=None, reset=True)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        denied = _change(client, name, OLD, NEW)
        assert denied.status_code == 403 and denied.json()["__type"] == "AccessDenied"
        iam.update_account_password_policy(AllowUsersToChangePassword=True)
        changed = _change(client, name, OLD, NEW)
        assert changed.status_code == 200, changed.text
        assert changed.json()["user"] == name
