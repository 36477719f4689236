"""``kennel iam password-policy`` (show, ``set``, ``delete``) as a user types it, and the
policy's rules reaching ``kennel iam users set-password``."""

from __future__ import annotations

import json
import uuid

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]


def test_show_set_enforce_and_delete(server: RunningServer) -> None:
    env = {**server.env, "COLUMNS": "250"}
    kennel(env, "iam", "password-policy", "delete", check=False)  # a clean start
    none = kennel(env, "iam", "password-policy").stdout
    assert "No password policy is set" in none and "8 to 128 characters" in none
    assert json.loads(kennel(env, "iam", "password-policy", "--json").stdout) is None

    made = kennel(
        env, "iam", "password-policy", "set", "--min-length", "12", "--require-symbols",
        "--require-numbers", "--max-age", "90", "--reuse-prevention", "5", "--hard-expiry",
        "--allow-users-to-change",
    ).stdout  # fmt: skip
    assert "Set the account's password policy" in made
    assert "after 90 days" in made and "hard expiry" in made
    shown = json.loads(kennel(env, "iam", "password-policy", "--json").stdout)
    assert shown == {
        "MinimumPasswordLength": 12,
        "RequireSymbols": True,
        "RequireNumbers": True,
        "RequireUppercaseCharacters": False,
        "RequireLowercaseCharacters": False,
        "AllowUsersToChangePassword": True,
        "ExpirePasswords": True,
        "MaxPasswordAge": 90,
        "PasswordReusePrevention": 5,
        "HardExpiry": True,
    }
    table = kennel(env, "iam", "password-policy").stdout
    assert "minimum length" in table and "12" in table and "not any of the last 5" in table

    user = f"cli-policy-{uuid.uuid4().hex[:8]}"
    kennel(env, "iam", "users", "create", user)
    weak = kennel(
        env, "iam", "users", "set-password", user, "--password-stdin",
        stdin="long enough but plain\n", check=False,
    )  # fmt: skip
    assert weak.returncode == 1 and "(PasswordPolicyViolation)" in weak.stderr
    assert "at least one number" in weak.stderr and "at least one symbol" in weak.stderr
    kennel(env, "iam", "users", "set-password", user, "--password-stdin",
           stdin="long enough, 2 symbols!\n")  # fmt: skip

    bad = kennel(env, "iam", "password-policy", "set", "--max-age", "2000", check=False)
    assert bad.returncode == 1 and "(ValidationError)" in bad.stderr
    assert "maxPasswordAge" in bad.stderr

    kennel(env, "iam", "password-policy", "set")  # AWS's defaults: the whole policy replaced
    assert json.loads(kennel(env, "iam", "password-policy", "--json").stdout) == {
        "MinimumPasswordLength": 6,
        "RequireSymbols": False,
        "RequireNumbers": False,
        "RequireUppercaseCharacters": False,
        "RequireLowercaseCharacters": False,
        "AllowUsersToChangePassword": False,
        "ExpirePasswords": False,
    }

    assert "Deleted" in kennel(env, "iam", "password-policy", "delete").stdout
    again = kennel(env, "iam", "password-policy", "delete", check=False)
    assert again.returncode == 1 and "(NoSuchEntity)" in again.stderr
    kennel(env, "iam", "users", "delete", user, "--force")
