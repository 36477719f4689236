"""IAM's account password policy in IamService and the Authorizer (on SQLite and
PostgreSQL): its defaults and limits, each rule on a new password, reuse prevention,
expiry on a clock the test moves, and AllowUsersToChangePassword."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import text
from tests._postgres import PostgresServer

from kennel.iam._authorizer import AccessLog, Authorizer, RequestFacts
from kennel.iam._errors import (
    IamValidationError,
    NoSuchEntityError,
    PasswordPolicyViolationError,
)
from kennel.iam._keys import SecretBox
from kennel.iam._password_policy import PasswordPolicy
from kennel.iam._service import IamService
from kennel.store import Database, LoginProfile

ACCOUNT = "123456789012"
START = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"
STRONG = "Tr0ub4dor&3-and-more"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def iam(db: Database, clock: Clock) -> IamService:
    service = IamService(
        db, SecretBox(Fernet.generate_key()), account_id=ACCOUNT, region="us-east-1", clock=clock
    )
    service.create_user("alice")
    return service


def set_policy(iam: IamService, **given: Any) -> None:
    iam.update_account_password_policy(PasswordPolicy.given(**given))


def violation(call: Any, *args: Any) -> str:
    with pytest.raises(PasswordPolicyViolationError) as info:
        call(*args)
    assert (info.value.status, info.value.aws_code) == (400, "PasswordPolicyViolation")
    return info.value.message


# --- the policy itself --------------------------------------------------------------------


def test_no_policy_is_no_such_entity(iam: IamService) -> None:
    message = f"The Password Policy with domain name {ACCOUNT} cannot be found."
    with pytest.raises(NoSuchEntityError) as got:
        iam.get_account_password_policy()
    assert (got.value.status, got.value.aws_code, got.value.message) == (
        404,
        "NoSuchEntity",
        message,
    )
    with pytest.raises(NoSuchEntityError, match="cannot be found"):
        iam.delete_account_password_policy()
    assert iam.account_password_policy() is None


def test_parameters_left_out_take_aws_defaults(iam: IamService) -> None:
    set_policy(iam)
    assert iam.get_account_password_policy() == {
        "PasswordPolicy": {
            "MinimumPasswordLength": 6,
            "RequireSymbols": False,
            "RequireNumbers": False,
            "RequireUppercaseCharacters": False,
            "RequireLowercaseCharacters": False,
            "AllowUsersToChangePassword": False,
            "ExpirePasswords": False,
        }
    }


def test_an_update_replaces_the_whole_policy(iam: IamService) -> None:
    set_policy(
        iam,
        minimum_password_length=14,
        require_symbols=True,
        require_numbers=True,
        require_uppercase_characters=True,
        require_lowercase_characters=True,
        allow_users_to_change_password=True,
        max_password_age=90,
        password_reuse_prevention=5,
        hard_expiry=True,
    )
    assert iam.get_account_password_policy()["PasswordPolicy"] == {
        "MinimumPasswordLength": 14,
        "RequireSymbols": True,
        "RequireNumbers": True,
        "RequireUppercaseCharacters": True,
        "RequireLowercaseCharacters": True,
        "AllowUsersToChangePassword": True,
        "ExpirePasswords": True,
        "MaxPasswordAge": 90,
        "PasswordReusePrevention": 5,
        "HardExpiry": True,
    }
    set_policy(iam, require_numbers=True)
    shape = iam.get_account_password_policy()["PasswordPolicy"]
    assert shape["MinimumPasswordLength"] == 6 and shape["RequireNumbers"] is True
    assert shape["RequireSymbols"] is False and shape["ExpirePasswords"] is False
    assert not {"MaxPasswordAge", "PasswordReusePrevention", "HardExpiry"} & set(shape)

    iam.delete_account_password_policy()
    assert iam.account_password_policy() is None
    with pytest.raises(NoSuchEntityError):
        iam.get_account_password_policy()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"minimum_password_length": 5},
            "1 validation error detected: Value '5' at 'minimumPasswordLength' failed to "
            "satisfy constraint: Member must have value greater than or equal to 6",
        ),
        (
            {"minimum_password_length": 129},
            "1 validation error detected: Value '129' at 'minimumPasswordLength' failed to "
            "satisfy constraint: Member must have value less than or equal to 128",
        ),
        (
            {"max_password_age": 0},
            "1 validation error detected: Value '0' at 'maxPasswordAge' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1",
        ),
        (
            {"max_password_age": 1096},
            "1 validation error detected: Value '1096' at 'maxPasswordAge' failed to satisfy "
            "constraint: Member must have value less than or equal to 1095",
        ),
        (
            {"password_reuse_prevention": 25, "minimum_password_length": 3},
            "2 validation errors detected: Value '3' at 'minimumPasswordLength' failed to "
            "satisfy constraint: Member must have value greater than or equal to 6; "
            "Value '25' at 'passwordReusePrevention' failed to satisfy constraint: Member "
            "must have value less than or equal to 24",
        ),
    ],
)
def test_values_out_of_range_are_refused_and_change_nothing(
    iam: IamService, given: dict[str, int], message: str
) -> None:
    set_policy(iam, minimum_password_length=10)
    with pytest.raises(IamValidationError) as info:
        set_policy(iam, **given)
    assert (info.value.status, info.value.aws_code, info.value.message) == (
        400,
        "ValidationError",
        message,
    )
    assert iam.get_account_password_policy()["PasswordPolicy"]["MinimumPasswordLength"] == 10


def test_the_limits_themselves_are_allowed(iam: IamService) -> None:
    for low_or_high in (6, 128):
        set_policy(
            iam,
            minimum_password_length=low_or_high,
            max_password_age=1 if low_or_high == 6 else 1095,
            password_reuse_prevention=1 if low_or_high == 6 else 24,
        )
        policy = iam.account_password_policy()
        assert policy is not None and policy.minimum_password_length == low_or_high


# --- the rules on a new password --------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "bad", "message", "good"),
    [
        (
            {"minimum_password_length": 30},
            PASSPHRASE,
            "Password should have a minimum length of 30",
            PASSPHRASE + " and a few more",
        ),
        (
            {"require_uppercase_characters": True},
            PASSPHRASE,
            "Password should have at least one uppercase letter",
            "Correct horse battery staple",
        ),
        (
            {"require_lowercase_characters": True},
            PASSPHRASE.upper(),
            "Password should have at least one lowercase letter",
            PASSPHRASE.upper() + "s",
        ),
        (
            {"require_numbers": True},
            PASSPHRASE,
            "Password should have at least one number",
            PASSPHRASE + " 4",
        ),
        (
            {"require_symbols": True},
            PASSPHRASE + ".,;:?",
            "Password should have at least one symbol (! @ # $ % ^ & * ( ) _ + - = [ ] { } | ')",
            PASSPHRASE + "'",
        ),
    ],
)
def test_each_rule_refuses_a_password_that_breaks_it(
    iam: IamService, rule: dict[str, Any], bad: str, message: str, good: str
) -> None:
    set_policy(iam, **rule)
    assert violation(iam.create_login_profile, "alice", bad) == message
    with pytest.raises(NoSuchEntityError):
        iam.get_login_profile("alice")  # nothing was made
    iam.create_login_profile("alice", good)
    assert violation(iam.update_login_profile, "alice", bad) == message
    assert violation(iam.change_password, "alice", good, bad) == message
    assert iam.check_password("alice", good) and not iam.check_password("alice", bad)


def test_every_rule_broken_is_named(iam: IamService) -> None:
    set_policy(
        iam,
        minimum_password_length=12,
        require_symbols=True,
        require_numbers=True,
        require_uppercase_characters=True,
    )
    assert violation(iam.create_login_profile, "alice", "abc") == (
        "Password should have a minimum length of 12; "
        "Password should have at least one uppercase letter; "
        "Password should have at least one number; "
        "Password should have at least one symbol (! @ # $ % ^ & * ( ) _ + - = [ ] { } | ')"
    )
    iam.create_login_profile("alice", STRONG)


def test_without_a_policy_kennels_own_rule_stays(iam: IamService) -> None:
    message = violation(iam.create_login_profile, "alice", "seven77")
    assert (
        message
        == "Password should have a minimum length of 8 and a maximum length of 128 characters."
    )
    iam.create_login_profile("alice", "a long lowercase passphrase with no digits")
    set_policy(iam)  # AWS's defaults: 6 characters, nothing else
    iam.update_login_profile("alice", password="six666")
    assert iam.check_password("alice", "six666")
    assert violation(iam.update_login_profile, "alice", "x" * 129) == (
        "Password should have a maximum length of 128"
    )
    iam.delete_account_password_policy()
    assert violation(iam.update_login_profile, "alice", "six666").startswith(
        "Password should have a minimum length of 8"
    )


# --- reuse prevention ---------------------------------------------------------------------------


def test_reuse_prevention_refuses_the_last_n_passwords(iam: IamService) -> None:
    iam.create_login_profile("alice", "first password")
    iam.change_password("alice", "first password", "second password")
    iam.change_password("alice", "second password", "third password")
    set_policy(iam, password_reuse_prevention=3)
    message = violation(iam.change_password, "alice", "third password", "first password")
    assert message.startswith("Password should not be one of the last 3 passwords")
    assert violation(iam.update_login_profile, "alice", "second password") == message
    assert iam.check_password("alice", "third password")

    set_policy(iam, password_reuse_prevention=2)  # the first is no longer remembered
    iam.change_password("alice", "third password", "first password")
    assert iam.check_password("alice", "first password")
    set_policy(iam, password_reuse_prevention=1)
    assert "the last 1 password " in violation(iam.update_login_profile, "alice", "first password")
    iam.update_login_profile("alice", password="third password")


def test_history_keeps_hashes_only_and_at_most_24(iam: IamService, db: Database) -> None:
    iam.create_login_profile("alice", "password number 0")
    for n in range(1, 30):
        iam.update_login_profile("alice", password=f"password number {n}")
    with db.session() as session:
        profile = session.get(LoginProfile, "alice")
        assert profile is not None
        remembered = [profile.password_hash, *profile.previous_password_hashes]
    assert len(remembered) == 24
    assert all(h.startswith("scrypt$") and "password" not in h for h in remembered)
    set_policy(iam, password_reuse_prevention=24)
    violation(iam.update_login_profile, "alice", "password number 6")  # 24th most recent
    iam.update_login_profile("alice", password="password number 5")  # 25th: forgotten


# --- expiry -----------------------------------------------------------------------------------


def test_a_password_older_than_max_age_is_expired(iam: IamService, clock: Clock) -> None:
    iam.create_login_profile("alice", PASSPHRASE)
    assert iam.password_state("alice") == "valid"
    set_policy(iam, max_password_age=30)
    clock.now = START + timedelta(days=30) - timedelta(seconds=1)
    assert iam.password_state("alice") == "valid"
    clock.now = START + timedelta(days=30)
    assert iam.password_state("alice") == "expired"
    assert iam.get_login_profile("alice")["LoginProfile"]["PasswordResetRequired"] is False

    set_policy(iam, max_password_age=30, hard_expiry=True)
    assert iam.password_state("alice") == "hard-expired"

    iam.update_login_profile("alice", password="set by an administrator")
    assert iam.password_state("alice") == "valid"  # a new password starts a new age
    clock.now += timedelta(days=31)
    assert iam.password_state("alice") == "hard-expired"
    iam.delete_account_password_policy()
    assert iam.password_state("alice") == "valid"


def test_changing_an_expired_password_ends_the_expiry(iam: IamService, clock: Clock) -> None:
    iam.create_login_profile("alice", PASSPHRASE, password_reset_required=True)
    assert iam.password_state("alice") == "reset-required"
    set_policy(iam, max_password_age=1)
    clock.now = START + timedelta(days=2)
    assert iam.password_state("alice") == "expired"  # expiry is named before the reset
    iam.change_password("alice", PASSPHRASE, STRONG)
    assert iam.password_state("alice") == "valid"


# --- AllowUsersToChangePassword ---------------------------------------------------------------


@pytest.fixture
def authz(iam: IamService, db: Database) -> Authorizer:
    return Authorizer(iam, AccessLog(db), ttl=60.0)


def _allowed(authz: Authorizer, action: str, resource: str, user: str = ALICE) -> bool:
    principal = authz.principal_for_arn(user)
    return authz.decide(principal, action, resource, RequestFacts("r", region="us-east-1")).allowed


def test_allow_users_to_change_password_grants_their_own_password_only(
    iam: IamService, authz: Authorizer
) -> None:
    bob = f"arn:aws:iam::{ACCOUNT}:user/bob"
    iam.create_user("bob")
    assert not _allowed(authz, "iam:ChangePassword", ALICE)
    assert not _allowed(authz, "iam:GetAccountPasswordPolicy", "*")

    set_policy(iam, allow_users_to_change_password=True)
    assert _allowed(authz, "iam:ChangePassword", ALICE)
    granted = authz.decide(
        authz.principal_for_arn(ALICE), "iam:ChangePassword", ALICE, RequestFacts("r")
    )
    assert granted.decision.statement is not None  # `kennel iam explain` names the grant
    assert granted.decision.statement.policy == (
        "AllowUsersToChangePassword (the account password policy)"
    )
    assert _allowed(authz, "iam:GetAccountPasswordPolicy", "*")
    assert not _allowed(authz, "iam:ChangePassword", bob)  # not someone else's
    assert not _allowed(authz, "iam:UpdateLoginProfile", ALICE)
    assert not _allowed(authz, "iam:UpdateAccountPasswordPolicy", "*")

    iam.put_inline(
        "user",
        "alice",
        "no-password-changes",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "iam:ChangePassword", "Resource": "*"}],
        },
    )
    assert not _allowed(authz, "iam:ChangePassword", ALICE)  # an explicit deny still wins
    assert _allowed(authz, "iam:ChangePassword", bob, user=bob)

    set_policy(iam, allow_users_to_change_password=False)
    assert not _allowed(authz, "iam:ChangePassword", bob, user=bob)


# --- the migration ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0014(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        database = Database(server.create_database(f"pp_{uuid.uuid4().hex[:12]}"))
    else:
        database = Database(f"sqlite:///{tmp_path}/k.db")
    request.addfinalizer(database.dispose)
    command.upgrade(database._alembic_config(), "0014")
    return database


def test_0015_backfills_when_each_password_was_set(at_0014: Database) -> None:
    made = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    with at_0014.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (name, arn, is_admin, user_id, path, created_at) "
                "VALUES ('old', 'arn:aws:iam::123456789012:user/old', false, 'AIDAX', '/', :t)"
            ),
            {"t": made},
        )
        connection.execute(
            text(
                "INSERT INTO iam_login_profiles "
                "(user_name, password_hash, password_reset_required, created_at) "
                "VALUES ('old', 'scrypt$stored', false, :t)"
            ),
            {"t": made},
        )
    at_0014.upgrade()
    with at_0014.session() as session:
        profile = session.get(LoginProfile, "old")
        assert profile is not None
        changed = profile.password_changed_at
        assert (changed if changed.tzinfo else changed.replace(tzinfo=UTC)) == made
        assert profile.previous_password_hashes == []
        assert profile.password_hash == "scrypt$stored"
