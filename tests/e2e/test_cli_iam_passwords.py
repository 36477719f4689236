"""``kennel iam users set-password`` / ``remove-password`` as a user types them.

The password goes in on standard input (``--password-stdin``, or the hidden prompt, which
reads standard input when there is no terminal) and must never come back out.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]

PASSWORD = "correct horse battery staple"


def _typed(
    env: dict[str, str], stdin: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return kennel(env, *args, stdin=stdin, check=check)


def _profile(env: dict[str, str], user: str) -> Any:
    described = json.loads(kennel(env, "iam", "users", "describe", user, "--json").stdout)
    return described["LoginProfile"]


def test_set_change_show_and_remove_a_password(server: RunningServer) -> None:
    env = {**server.env, "COLUMNS": "250"}
    user = f"cli-console-{uuid.uuid4().hex[:8]}"
    kennel(env, "iam", "users", "create", user)
    assert _profile(env, user) is None
    shown = kennel(env, "iam", "users", "describe", user).stdout
    assert "console password" in shown and "none" in shown

    made = _typed(env, PASSWORD + "\n", "iam", "users", "set-password", user, "--password-stdin")
    assert f"Set a console password for {user}" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr
    profile = _profile(env, user)
    assert profile["UserName"] == user and profile["PasswordResetRequired"] is False

    changed = _typed(
        env, "another password\nanother password\n",
        "iam", "users", "set-password", user, "--reset-required",
    )  # fmt: skip
    assert f"Changed the console password of {user}" in changed.stdout
    assert "another password" not in changed.stdout
    assert _profile(env, user)["PasswordResetRequired"] is True
    assert "must be changed at next sign-in" in kennel(env, "iam", "users", "describe", user).stdout

    mismatch = _typed(
        env, "another password\ndifferent password\n",
        "iam", "users", "set-password", user, check=False,
    )  # fmt: skip
    assert mismatch.returncode != 0

    short = _typed(env, "short\n", "iam", "users", "set-password", user, "--password-stdin",
                   check=False)  # fmt: skip
    assert short.returncode == 1 and "minimum length of 8" in short.stderr

    refused = kennel(env, "iam", "users", "delete", user, check=False)
    assert refused.returncode == 1 and "login profile" in refused.stderr

    kennel(env, "iam", "users", "remove-password", user)
    assert _profile(env, user) is None
    again = kennel(env, "iam", "users", "remove-password", user, check=False)
    assert again.returncode == 1 and "(NoSuchEntity)" in again.stderr

    _typed(env, PASSWORD + "\n", "iam", "users", "set-password", user, "--password-stdin")
    kennel(env, "iam", "users", "delete", user, "--force")
    gone = kennel(env, "iam", "users", "describe", user, check=False)
    assert gone.returncode == 1 and "(NoSuchEntity)" in gone.stderr


def test_set_password_for_an_unknown_user_fails_before_asking(server: RunningServer) -> None:
    result = _typed(
        server.env, "", "iam", "users", "set-password", f"ghost-{uuid.uuid4().hex[:8]}", check=False
    )
    assert result.returncode == 1 and "(NoSuchEntity)" in result.stderr
    assert "Password" not in result.stdout
