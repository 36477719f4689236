"""IAM's ChangePassword through a plain boto3 ``iam`` client against a real server: a user
changes their own console password, with the old one and the permission to."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import aws_error

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
OLD = "correct horse battery staple"
NEW = "tr0ub4dor and 3 more words"
CHANGE_PASSWORD = "arn:aws:iam::aws:policy/IAMUserChangePassword"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _client(server: RunningServer, service: str, credentials: dict[str, str] | None = None) -> Any:
    if credentials is None:
        key, secret = server.credentials()
        credentials = {"aws_access_key_id": key, "aws_secret_access_key": secret}
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        config=NO_RETRIES,
        **credentials,
    )


def _user(server: RunningServer, *, policy: str | None, password: str | None = OLD) -> Any:
    """A user with a console password that must be reset, ``policy`` attached, and an
    ``iam`` client signed with their own access key."""
    admin = _client(server, "iam")
    name = _unique("changer")
    admin.create_user(UserName=name)
    if password is not None:
        admin.create_login_profile(UserName=name, Password=password, PasswordResetRequired=True)
    if policy is not None:
        admin.attach_user_policy(UserName=name, PolicyArn=policy)
    key = admin.create_access_key(UserName=name)["AccessKey"]
    own = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    return name, _client(server, "iam", own), own


def _reset_required(server: RunningServer, name: str) -> bool:
    profile = _client(server, "iam").get_login_profile(UserName=name)["LoginProfile"]
    return bool(profile["PasswordResetRequired"])


def _console_signin(server: RunningServer, name: str, password: str) -> int:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/console/api/signin", json={"user_name": name, "password": password})
        return answer.status_code


def test_a_user_changes_their_own_password_and_ends_the_reset(server: RunningServer) -> None:
    name, iam, _ = _user(server, policy=CHANGE_PASSWORD)
    assert _reset_required(server, name) is True
    assert _console_signin(server, name, OLD) == 403  # held until it is changed

    iam.change_password(OldPassword=OLD, NewPassword=NEW)

    assert _reset_required(server, name) is False
    assert _console_signin(server, name, NEW) == 200
    assert _console_signin(server, name, OLD) == 401
    with pytest.raises(ClientError) as stale:
        iam.change_password(OldPassword=OLD, NewPassword="yet another password")
    assert aws_error(stale) == (403, "AccessDenied", "The old password is not correct.")
    iam.change_password(OldPassword=NEW, NewPassword=OLD)  # the new one now proves it
    assert _console_signin(server, name, OLD) == 200


def test_a_wrong_old_password_or_a_weak_new_one_changes_nothing(server: RunningServer) -> None:
    name, iam, _ = _user(server, policy=CHANGE_PASSWORD)
    with pytest.raises(ClientError) as wrong:
        iam.change_password(OldPassword=OLD + "!", NewPassword=NEW)
    assert aws_error(wrong) == (403, "AccessDenied", "The old password is not correct.")
    with pytest.raises(iam.exceptions.PasswordPolicyViolationException) as weak:
        iam.change_password(OldPassword=OLD, NewPassword="short")
    assert aws_error(weak)[:2] == (400, "PasswordPolicyViolation")
    assert _reset_required(server, name) is True
    assert _console_signin(server, name, OLD) == 403
    assert _console_signin(server, name, NEW) == 401


def test_a_session_of_the_user_may_change_it_too(server: RunningServer) -> None:
    name, _, own = _user(server, policy=CHANGE_PASSWORD)
    credentials = _client(server, "sts", own).get_session_token()["Credentials"]
    session = _client(
        server,
        "iam",
        {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        },
    )
    session.change_password(OldPassword=OLD, NewPassword=NEW)
    assert _reset_required(server, name) is False


def test_without_iam_change_password_the_user_is_denied(server: RunningServer) -> None:
    name, iam, _ = _user(server, policy=None)
    with pytest.raises(ClientError) as denied:
        iam.change_password(OldPassword=OLD, NewPassword=NEW)
    status, code, message = aws_error(denied)
    assert (status, code) == (403, "AccessDenied")
    assert "iam:ChangePassword" in message and f"user/{name}" in message
    assert _reset_required(server, name) is True
    assert _console_signin(server, name, NEW) == 401


def test_the_builtin_policy_does_not_reach_another_users_password(server: RunningServer) -> None:
    """IAMUserChangePassword names ${aws:username}; UpdateLoginProfile is not in it."""
    victim, _, _ = _user(server, policy=None)
    _, iam, _ = _user(server, policy=CHANGE_PASSWORD)
    with pytest.raises(ClientError) as denied:
        iam.update_login_profile(UserName=victim, Password=NEW)
    assert aws_error(denied)[:2] == (403, "AccessDenied")
    document = _client(server, "iam").get_policy_version(PolicyArn=CHANGE_PASSWORD, VersionId="v1")[
        "PolicyVersion"
    ]["Document"]
    assert document["Statement"][0]["Resource"] == ["arn:aws:iam::*:user/${aws:username}"]


def test_a_user_without_a_console_password_gets_no_such_entity(server: RunningServer) -> None:
    _, iam, _ = _user(server, policy=CHANGE_PASSWORD, password=None)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as missing:
        iam.change_password(OldPassword=OLD, NewPassword=NEW)
    assert aws_error(missing)[:2] == (404, "NoSuchEntity")


def test_a_role_session_gets_invalid_user_type(server: RunningServer) -> None:
    admin = _client(server, "iam")
    account = _client(server, "sts").get_caller_identity()["Account"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:user/admin"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = _unique("not-a-user")
    role_arn = admin.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    admin.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    credentials = _client(server, "sts").assume_role(RoleArn=role_arn, RoleSessionName="not-me")[
        "Credentials"
    ]
    as_role = _client(
        server,
        "iam",
        {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        },
    )
    with pytest.raises(ClientError) as refused:
        as_role.change_password(OldPassword=OLD, NewPassword=NEW)
    status, code, message = aws_error(refused)
    assert (status, code) == (400, "InvalidUserType")
    assert "only an IAM user" in message
