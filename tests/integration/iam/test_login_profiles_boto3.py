"""Console passwords (IAM login profiles) through a plain boto3 ``iam`` client, real server."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import aws_error

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
PASSWORD = "correct horse battery staple"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _iam(server: RunningServer, key: str | None = None, secret: str | None = None) -> Any:
    if key is None:
        key, secret = server.credentials()
    return boto3.client(
        "iam",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=NO_RETRIES,
    )


def test_create_get_update_delete_with_boto3(server: RunningServer) -> None:
    iam = _iam(server)
    user = _unique("console")
    iam.create_user(UserName=user)

    before = datetime.now(UTC) - timedelta(seconds=5)
    created = iam.create_login_profile(UserName=user, Password=PASSWORD)["LoginProfile"]
    assert created["UserName"] == user
    assert created["PasswordResetRequired"] is False
    assert before <= created["CreateDate"] <= datetime.now(UTC) + timedelta(seconds=5)
    assert iam.get_login_profile(UserName=user)["LoginProfile"] == created

    iam.update_login_profile(UserName=user, PasswordResetRequired=True)
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"] is True
    iam.update_login_profile(UserName=user, Password="another password")
    # Leaving the flag out keeps it (it is not a reset to false).
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"] is True
    iam.update_login_profile(UserName=user, PasswordResetRequired=False)
    assert iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"] is False

    with pytest.raises(ClientError) as twice:
        iam.create_login_profile(UserName=user, Password=PASSWORD)
    assert aws_error(twice)[:2] == (409, "EntityAlreadyExists")
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_login_profile(UserName=user, Password=PASSWORD)

    with pytest.raises(ClientError) as conflict:
        iam.delete_user(UserName=user)
    assert aws_error(conflict)[:2] == (409, "DeleteConflict")

    iam.delete_login_profile(UserName=user)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as gone:
        iam.get_login_profile(UserName=user)
    assert aws_error(gone) == (
        404,
        "NoSuchEntity",
        f"Login Profile for User {user} cannot be found.",
    )
    with pytest.raises(ClientError) as again:
        iam.delete_login_profile(UserName=user)
    assert aws_error(again)[:2] == (404, "NoSuchEntity")
    iam.delete_user(UserName=user)


@pytest.mark.parametrize("password", ["short", "x" * 129])
def test_password_length_rules(server: RunningServer, password: str) -> None:
    iam = _iam(server)
    user = _unique("console")
    iam.create_user(UserName=user)
    with pytest.raises(iam.exceptions.PasswordPolicyViolationException) as refused:
        iam.create_login_profile(UserName=user, Password=password)
    status, code, message = aws_error(refused)
    assert (status, code) == (400, "PasswordPolicyViolation")
    assert "minimum length of 8" in message
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName=user)
    iam.delete_user(UserName=user)


def test_unknown_user_is_no_such_entity(server: RunningServer) -> None:
    iam = _iam(server)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.create_login_profile(UserName=_unique("ghost"), Password=PASSWORD)


def test_least_privilege_user_is_denied_another_users_password(server: RunningServer) -> None:
    admin = _iam(server)
    account = admin.get_user()["User"]["Arn"].split(":")[4]
    me, other = _unique("self-service"), _unique("victim")
    admin.create_user(UserName=me)
    admin.create_user(UserName=other)
    own_arn = f"arn:aws:iam::{account}:user/{me}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "iam:CreateLoginProfile",
                    "iam:GetLoginProfile",
                    "iam:UpdateLoginProfile",
                    "iam:DeleteLoginProfile",
                ],
                "Resource": own_arn,
            }
        ],
    }
    admin.put_user_policy(UserName=me, PolicyName="own-password", PolicyDocument=json.dumps(policy))
    key = admin.create_access_key(UserName=me)["AccessKey"]
    mine = _iam(server, key["AccessKeyId"], key["SecretAccessKey"])

    # On itself: allowed (UserName left out means the caller, as in AWS).
    assert mine.create_login_profile(Password=PASSWORD)["LoginProfile"]["UserName"] == me
    assert mine.get_login_profile(UserName=me)["LoginProfile"]["UserName"] == me

    with pytest.raises(ClientError) as denied:
        mine.create_login_profile(UserName=other, Password=PASSWORD)
    status, code, message = aws_error(denied)
    assert (status, code) == (403, "AccessDenied")
    assert "iam:CreateLoginProfile" in message and f"user/{other}" in message
    with pytest.raises(admin.exceptions.NoSuchEntityException):
        admin.get_login_profile(UserName=other)
    with pytest.raises(ClientError) as denied_delete:
        mine.delete_login_profile(UserName=other)
    assert aws_error(denied_delete)[:2] == (403, "AccessDenied")

    mine.delete_login_profile()
    admin.delete_access_key(UserName=me, AccessKeyId=key["AccessKeyId"])
    admin.delete_user_policy(UserName=me, PolicyName="own-password")
    admin.delete_user(UserName=me)
    admin.delete_user(UserName=other)
