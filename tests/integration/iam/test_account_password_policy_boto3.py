"""IAM's account password policy through a plain boto3 ``iam`` client against a real
server: Get/Update/DeleteAccountPasswordPolicy, the rules on new console passwords, and
AllowUsersToChangePassword letting a user with no policies change their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import aws_error
from tests.integration.iam.test_change_password_boto3 import (
    NEW,
    OLD,
    _client,
    _console_signin,
    _unique,
    _user,
)


@pytest.fixture
def admin(server: RunningServer) -> Iterator[Any]:
    """The admin's ``iam`` client; the session's server is shared, so the account's
    password policy is removed again whatever the test did."""
    iam = _client(server, "iam")
    yield iam
    # NoSuchEntity: the test deleted it itself, or never set one.
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_account_password_policy()


def _account(server: RunningServer) -> str:
    return str(_client(server, "sts").get_caller_identity()["Account"])


def test_get_update_get_delete(server: RunningServer, admin: Any) -> None:
    missing = f"The Password Policy with domain name {_account(server)} cannot be found."
    with pytest.raises(admin.exceptions.NoSuchEntityException) as none:
        admin.get_account_password_policy()
    assert aws_error(none) == (404, "NoSuchEntity", missing)

    admin.update_account_password_policy(
        MinimumPasswordLength=12,
        RequireNumbers=True,
        RequireUppercaseCharacters=True,
        MaxPasswordAge=90,
        PasswordReusePrevention=3,
    )
    assert admin.get_account_password_policy()["PasswordPolicy"] == {
        "MinimumPasswordLength": 12,
        "RequireSymbols": False,
        "RequireNumbers": True,
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": False,
        "AllowUsersToChangePassword": False,
        "ExpirePasswords": True,
        "MaxPasswordAge": 90,
        "PasswordReusePrevention": 3,
    }

    admin.update_account_password_policy(HardExpiry=True)  # the rest back to the defaults
    policy = admin.get_account_password_policy()["PasswordPolicy"]
    assert policy["MinimumPasswordLength"] == 6 and policy["HardExpiry"] is True
    assert policy["ExpirePasswords"] is False and "MaxPasswordAge" not in policy

    admin.delete_account_password_policy()
    for call in (admin.get_account_password_policy, admin.delete_account_password_policy):
        with pytest.raises(admin.exceptions.NoSuchEntityException) as gone:
            call()
        assert aws_error(gone) == (404, "NoSuchEntity", missing)


@pytest.mark.parametrize(
    ("given", "member", "limit"),
    [
        ({"MinimumPasswordLength": 129}, "minimumPasswordLength", "less than or equal to 128"),
        ({"MaxPasswordAge": 1096}, "maxPasswordAge", "less than or equal to 1095"),
        ({"PasswordReusePrevention": 25}, "passwordReusePrevention", "less than or equal to 24"),
    ],
)
def test_values_out_of_range_are_a_validation_error(
    admin: Any, given: dict[str, int], member: str, limit: str
) -> None:
    """botocore itself refuses values under the model's minimum; the server the rest."""
    with pytest.raises(ClientError) as refused:
        admin.update_account_password_policy(**given)
    value = next(iter(given.values()))
    assert aws_error(refused) == (
        400,
        "ValidationError",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must have value {limit}",
    )
    with pytest.raises(admin.exceptions.NoSuchEntityException):
        admin.get_account_password_policy()  # nothing was set


def test_new_passwords_must_follow_the_policy(server: RunningServer, admin: Any) -> None:
    admin.update_account_password_policy(
        MinimumPasswordLength=10, RequireSymbols=True, PasswordReusePrevention=2
    )
    name = _unique("ruled")
    admin.create_user(UserName=name)
    with pytest.raises(admin.exceptions.PasswordPolicyViolationException) as weak:
        admin.create_login_profile(UserName=name, Password="no symbol")
    assert aws_error(weak) == (
        400,
        "PasswordPolicyViolation",
        "Password should have a minimum length of 10; Password should have at least one "
        "symbol (! @ # $ % ^ & * ( ) _ + - = [ ] { } | ')",
    )
    with pytest.raises(admin.exceptions.NoSuchEntityException):
        admin.get_login_profile(UserName=name)

    admin.create_login_profile(UserName=name, Password="first (one)")
    admin.attach_user_policy(
        UserName=name, PolicyArn="arn:aws:iam::aws:policy/IAMUserChangePassword"
    )
    key = admin.create_access_key(UserName=name)["AccessKey"]
    own = _client(
        server,
        "iam",
        {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]},
    )
    with pytest.raises(own.exceptions.PasswordPolicyViolationException) as plain:
        own.change_password(OldPassword="first (one)", NewPassword="plain words only")
    assert aws_error(plain)[2] == "Password should have at least one symbol " + (
        "(! @ # $ % ^ & * ( ) _ + - = [ ] { } | ')"
    )
    own.change_password(OldPassword="first (one)", NewPassword="second (one)")
    with pytest.raises(own.exceptions.PasswordPolicyViolationException) as reused:
        own.change_password(OldPassword="second (one)", NewPassword="first (one)")
    assert "last 2 passwords" in aws_error(reused)[2]
    with pytest.raises(admin.exceptions.PasswordPolicyViolationException):
        admin.update_login_profile(UserName=name, Password="first (one)")
    assert _console_signin(server, name, "second (one)") == 200


def test_allow_users_to_change_password_needs_no_policy(server: RunningServer, admin: Any) -> None:
    name, iam, _ = _user(server, policy=None)
    with pytest.raises(ClientError) as denied:
        iam.change_password(OldPassword=OLD, NewPassword=NEW)
    assert aws_error(denied)[:2] == (403, "AccessDenied")
    with pytest.raises(ClientError) as unreadable:
        iam.get_account_password_policy()
    assert aws_error(unreadable)[:2] == (403, "AccessDenied")

    admin.update_account_password_policy(AllowUsersToChangePassword=True)
    assert iam.get_account_password_policy()["PasswordPolicy"]["AllowUsersToChangePassword"]
    iam.change_password(OldPassword=OLD, NewPassword=NEW)
    assert _console_signin(server, name, NEW) == 200
    with pytest.raises(ClientError) as still:
        iam.update_login_profile(UserName=name, Password=OLD)  # an admin's action: still no
    assert aws_error(still)[:2] == (403, "AccessDenied")
    with pytest.raises(ClientError) as others:
        iam.update_account_password_policy(MinimumPasswordLength=6)
    assert aws_error(others)[:2] == (403, "AccessDenied")
