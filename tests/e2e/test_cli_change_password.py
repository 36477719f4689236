"""``kennel iam change-password``: a user changes their own console password with the
CLI's credentials (boto3's change_password), typed at hidden prompts or given as options."""

from __future__ import annotations

import configparser
import subprocess
import uuid
from pathlib import Path

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

OLD = "correct horse battery staple"
NEW = "tr0ub4dor and 3 more words"
CHANGE_PASSWORD = "arn:aws:iam::aws:policy/IAMUserChangePassword"


def _run(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return kennel(env, *args, stdin=stdin, check=False)


def _as_user(server: RunningServer, tmp_path: Path, key: dict[str, str]) -> dict[str, str]:
    """The server's environment with a profile of the user's own access key."""
    credentials = configparser.ConfigParser()
    credentials.read(server.env["AWS_SHARED_CREDENTIALS_FILE"])
    credentials["changer"] = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }
    path = tmp_path / "credentials"
    with path.open("w") as file:
        credentials.write(file)
    return {**server.env, "AWS_SHARED_CREDENTIALS_FILE": str(path), "KENNEL_PROFILE": "changer"}


def test_a_user_changes_their_password_from_the_cli(server: RunningServer, tmp_path: Path) -> None:
    iam = server.session.client("iam", endpoint_url=server.url)
    user = f"cli-changer-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    made = _run(
        server.env, OLD + "\n", "iam", "users", "set-password", user, "--password-stdin",
        "--reset-required",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"]
    iam.attach_user_policy(UserName=user, PolicyArn=CHANGE_PASSWORD)
    env = _as_user(server, tmp_path, iam.create_access_key(UserName=user)["AccessKey"])

    wrong = _run(env, "", "iam", "change-password", "--old-password", NEW, "--new-password", OLD)
    assert wrong.returncode == 1 and "The old password is not correct." in wrong.stderr

    typed = _run(env, f"{OLD}\n{NEW}\n{NEW}\n", "iam", "change-password")
    assert typed.returncode == 0, typed.stderr
    assert "Changed your console password." in typed.stdout
    assert OLD not in typed.stdout + typed.stderr and NEW not in typed.stdout + typed.stderr
    profile = iam.get_login_profile(UserName=user)["LoginProfile"]
    assert profile["PasswordResetRequired"] is False

    given = _run(env, "", "iam", "change-password", "--old-password", NEW, "--new-password", OLD)
    assert given.returncode == 0, given.stderr

    flagged = _run(
        server.env, NEW + "\n", "iam", "users", "set-password", user, "--password-stdin",
        "--no-reset-required",
    )  # fmt: skip
    assert flagged.returncode == 0, flagged.stderr
    assert not iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"]
