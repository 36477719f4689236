"""IAM's ChangePassword in IamService (on SQLite and PostgreSQL), and the built-in policy
IAMUserChangePassword that lets a user call it on themselves only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from kennel.iam._builtin import BUILTIN_BY_ARN
from kennel.iam._errors import (
    NoSuchEntityError,
    PasswordPolicyViolationError,
    WrongOldPasswordError,
)
from kennel.iam._keys import SecretBox
from kennel.iam._policy import AuthzRequest, evaluate
from kennel.iam._service import IamService
from kennel.store import Database

ACCOUNT = "123456789012"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
OLD = "correct horse battery staple"
NEW = "tr0ub4dor and 3 more words"
CHANGE_PASSWORD = "arn:aws:iam::aws:policy/IAMUserChangePassword"


@pytest.fixture
def iam(db: Database) -> IamService:
    box = SecretBox(Fernet.generate_key())
    service = IamService(db, box, account_id=ACCOUNT, region="us-east-1", clock=lambda: NOW)
    service.create_user("alice")
    return service


def reset_required(iam: IamService, user: str) -> bool:
    return bool(iam.get_login_profile(user)["LoginProfile"]["PasswordResetRequired"])


def test_the_new_password_replaces_the_old_and_ends_the_reset(iam: IamService) -> None:
    iam.create_login_profile("alice", OLD, password_reset_required=True)
    assert iam.password_reset_required("alice") is True

    iam.change_password("alice", OLD, NEW)

    assert iam.check_password("alice", NEW)
    assert not iam.check_password("alice", OLD)
    assert reset_required(iam, "alice") is False
    assert iam.password_reset_required("alice") is False
    iam.change_password("alice", NEW, OLD)  # and again, with no reset pending
    assert iam.check_password("alice", OLD)


def test_a_wrong_old_password_changes_nothing(iam: IamService) -> None:
    iam.create_login_profile("alice", OLD, password_reset_required=True)
    for wrong in (OLD.upper(), "", NEW):
        with pytest.raises(WrongOldPasswordError) as info:
            iam.change_password("alice", wrong, NEW)
        assert (info.value.status, info.value.aws_code) == (403, "AccessDenied")
        assert info.value.message == "The old password is not correct."
    assert iam.check_password("alice", OLD)
    assert not iam.check_password("alice", NEW)
    assert reset_required(iam, "alice") is True


@pytest.mark.parametrize("new", ["short", "x" * 129, OLD])
def test_the_new_password_must_pass_the_rules(iam: IamService, new: str) -> None:
    iam.create_login_profile("alice", OLD, password_reset_required=True)
    with pytest.raises(PasswordPolicyViolationError) as info:
        iam.change_password("alice", OLD, new)
    assert (info.value.status, info.value.aws_code) == (400, "PasswordPolicyViolation")
    assert iam.check_password("alice", OLD)
    assert reset_required(iam, "alice") is True


def test_no_profile_or_no_user_is_no_such_entity(iam: IamService) -> None:
    with pytest.raises(NoSuchEntityError, match="Login Profile for User alice"):
        iam.change_password("alice", OLD, NEW)
    with pytest.raises(NoSuchEntityError, match="user with name ghost"):
        iam.change_password("ghost", OLD, NEW)
    with pytest.raises(NoSuchEntityError):
        iam.password_reset_required("alice")


def test_the_builtin_policy_allows_changing_only_ones_own_password(iam: IamService) -> None:
    iam.ensure_builtins()
    listed = {p["PolicyName"] for p in iam.list_policies(scope="AWS")["Policies"]}
    assert "IAMUserChangePassword" in listed
    iam.attach("user", "alice", CHANGE_PASSWORD)
    key = iam.create_access_key("alice")["AccessKey"]["AccessKeyId"]
    alice = iam.resolve(key)
    assert alice is not None
    own = f"arn:aws:iam::{ACCOUNT}:user/alice"

    def allowed(action: str, resource: str) -> bool:
        request = AuthzRequest(alice.arn, action, resource, alice.context())
        return evaluate(request, alice.policies, boundary=alice.boundary).allowed

    assert allowed("iam:ChangePassword", own)
    assert not allowed("iam:ChangePassword", f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert not allowed("iam:UpdateLoginProfile", own)
    assert allowed("iam:GetAccountPasswordPolicy", "*")
    assert BUILTIN_BY_ARN[CHANGE_PASSWORD].name == "IAMUserChangePassword"
