"""Console passwords (IAM login profiles) in IamService, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from kennel.iam._errors import (
    DeleteConflictError,
    EntityAlreadyExistsError,
    NoSuchEntityError,
    PasswordPolicyViolationError,
)
from kennel.iam._keys import SecretBox
from kennel.iam._service import IamService, hash_password, verify_password
from kennel.store import Database, LoginProfile

ACCOUNT = "123456789012"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def iam(db: Database) -> IamService:
    box = SecretBox(Fernet.generate_key())
    return IamService(db, box, account_id=ACCOUNT, region="us-east-1", clock=lambda: NOW)


def stored_hash(iam: IamService, user: str) -> str:
    with iam.db.session() as session:
        profile = session.get(LoginProfile, user)
        assert profile is not None
        return profile.password_hash


def test_create_get_update_and_delete(iam: IamService) -> None:
    iam.create_user("alice")
    created = iam.create_login_profile("alice", PASSWORD)
    assert created == {
        "LoginProfile": {"UserName": "alice", "CreateDate": NOW, "PasswordResetRequired": False}
    }
    assert iam.get_login_profile("alice") == created

    iam.update_login_profile("alice", password_reset_required=True)
    assert iam.get_login_profile("alice")["LoginProfile"]["PasswordResetRequired"] is True
    assert iam.check_password("alice", PASSWORD)  # the flag alone keeps the password

    iam.update_login_profile("alice", password="a new password")
    assert not iam.check_password("alice", PASSWORD)
    assert iam.check_password("alice", "a new password")
    assert iam.get_login_profile("alice")["LoginProfile"]["PasswordResetRequired"] is True

    iam.delete_login_profile("alice")
    with pytest.raises(NoSuchEntityError) as info:
        iam.get_login_profile("alice")
    assert info.value.status == 404 and info.value.aws_code == "NoSuchEntity"
    assert info.value.message == "Login Profile for User alice cannot be found."
    assert not iam.check_password("alice", "a new password")


def test_the_hash_is_scrypt_with_a_salt_never_the_password(iam: IamService) -> None:
    iam.create_user("alice")
    iam.create_user("bob")
    iam.create_login_profile("alice", PASSWORD)
    iam.create_login_profile("bob", PASSWORD)
    stored = stored_hash(iam, "alice")
    assert PASSWORD not in stored
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert stored_hash(iam, "bob") != stored  # a fresh salt for each


def test_wrong_password_unknown_user_and_no_profile_are_false(iam: IamService) -> None:
    iam.create_user("alice")
    iam.create_user("bob")
    iam.create_login_profile("alice", PASSWORD)
    assert iam.check_password("alice", PASSWORD) is True
    assert iam.check_password("alice", PASSWORD.upper()) is False
    assert iam.check_password("alice", "") is False
    assert iam.check_password("bob", PASSWORD) is False
    assert iam.check_password("nobody", PASSWORD) is False


def test_a_second_profile_is_a_409(iam: IamService) -> None:
    iam.create_user("alice")
    iam.create_login_profile("alice", PASSWORD)
    with pytest.raises(EntityAlreadyExistsError) as info:
        iam.create_login_profile("alice", "another password")
    assert info.value.status == 409 and info.value.aws_code == "EntityAlreadyExists"
    assert iam.check_password("alice", PASSWORD)


def test_missing_user_or_profile_is_a_404(iam: IamService) -> None:
    with pytest.raises(NoSuchEntityError, match="user with name ghost"):
        iam.create_login_profile("ghost", PASSWORD)
    iam.create_user("alice")
    with pytest.raises(NoSuchEntityError, match="Login Profile for User alice"):
        iam.update_login_profile("alice", password=PASSWORD)
    with pytest.raises(NoSuchEntityError):
        iam.delete_login_profile("alice")


@pytest.mark.parametrize("password", ["", "short", "x" * 7, "x" * 129])
def test_length_rules(iam: IamService, password: str) -> None:
    iam.create_user("alice")
    with pytest.raises(PasswordPolicyViolationError) as info:
        iam.create_login_profile("alice", password)
    assert info.value.status == 400 and info.value.aws_code == "PasswordPolicyViolation"
    assert "minimum length of 8" in info.value.message
    assert "maximum length of 128" in info.value.message
    iam.create_login_profile("alice", PASSWORD)
    with pytest.raises(PasswordPolicyViolationError):
        iam.update_login_profile("alice", password=password)
    assert iam.check_password("alice", PASSWORD)


@pytest.mark.parametrize("password", ["x" * 8, "é" * 128])
def test_the_limits_themselves_are_allowed(iam: IamService, password: str) -> None:
    iam.create_user("alice")
    iam.create_login_profile("alice", password, password_reset_required=True)
    assert iam.check_password("alice", password)
    assert iam.get_login_profile("alice")["LoginProfile"]["PasswordResetRequired"] is True


def test_delete_user_refused_while_it_has_a_password(iam: IamService) -> None:
    iam.create_user("alice")
    iam.create_login_profile("alice", PASSWORD)
    with pytest.raises(DeleteConflictError) as info:
        iam.delete_user("alice")
    assert info.value.status == 409 and info.value.aws_code == "DeleteConflict"
    assert "login profile" in info.value.message
    iam.delete_login_profile("alice")
    iam.delete_user("alice")
    assert not iam.check_password("alice", PASSWORD)


def test_console_session_acts_as_the_user(iam: IamService) -> None:
    iam.create_user("alice")
    credentials = iam.console_session("alice", 3600)["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert credentials["Expiration"] == NOW.replace(hour=13)
    principal = iam.resolve(credentials["AccessKeyId"])
    assert principal is not None
    assert (principal.kind, principal.name) == ("user", "alice")
    assert principal.arn == f"arn:aws:iam::{ACCOUNT}:user/alice"
    stored = iam.session_credentials(credentials["AccessKeyId"])
    assert stored is not None
    secret, token, _, arn = stored
    assert (secret, token) == (credentials["SecretAccessKey"], credentials["SessionToken"])
    assert arn == principal.arn
    with pytest.raises(NoSuchEntityError):
        iam.console_session("ghost", 3600)


def test_verify_password_refuses_what_it_cannot_read() -> None:
    good = hash_password(PASSWORD)
    assert verify_password(PASSWORD, good)
    for stored in (None, "", "plain", "bcrypt$x", good.replace("scrypt", "md5"), good + "$"):
        assert verify_password(PASSWORD, stored) is False
    scheme, n, r, p, salt, digest = good.split("$")
    assert not verify_password(PASSWORD, "$".join([scheme, "3", r, p, salt, digest]))
    assert not verify_password(PASSWORD, "$".join([scheme, n, r, p, "!!", digest]))
