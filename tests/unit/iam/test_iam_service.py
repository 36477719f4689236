"""IamService over a real database (SQLite and PostgreSQL): what IAM's and STS's callers rely on."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from cryptography.fernet import Fernet

from kennel.iam._builtin import ADMINISTRATOR_ACCESS, BUILTIN_POLICIES
from kennel.iam._errors import (
    DeleteConflictError,
    EntityAlreadyExistsError,
    IamValidationError,
    InvalidAuthenticationCodeError,
    LimitExceededError,
    NoSuchEntityError,
    StsAccessDeniedError,
)
from kennel.iam._keys import SecretBox
from kennel.iam._policy import AuthzRequest, MalformedPolicyDocumentError, evaluate
from kennel.iam._service import TOTP_STEP, IamService, Principal
from kennel.store import AccessKey, Database, ManagedPolicy, User

ACCOUNT = "123456789012"
# 2025-06-01T12:00:05Z: five seconds into a TOTP step.
START = datetime(2025, 6, 1, 12, 0, 5, tzinfo=UTC)
ENDPOINT = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/classifier"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @property
    def step(self) -> int:
        return int(self.now.timestamp()) // TOTP_STEP


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust(principal: Any) -> dict[str, Any]:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


def allows(principal: Principal, action: str, resource: str = "*") -> bool:
    request = AuthzRequest(principal.arn, action, resource, principal.context())
    return evaluate(request, principal.policies, boundary=principal.boundary).allowed


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def iam(db: Database, box: SecretBox, clock: Clock) -> IamService:
    return IamService(db, box, account_id=ACCOUNT, region="us-east-1", clock=clock)


def user_with_key(iam: IamService, name: str = "alice") -> str:
    iam.create_user(name)
    key_id: str = iam.create_access_key(name)["AccessKey"]["AccessKeyId"]
    return key_id


def resolved(iam: IamService, key_id: str) -> Principal:
    principal = iam.resolve(key_id)
    assert principal is not None
    return principal


# --- users --------------------------------------------------------------------------------


def test_create_get_list_and_delete_users(iam: IamService) -> None:
    created = iam.create_user("bob")["User"]
    assert created["UserName"] == "bob"
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/bob"
    assert created["UserId"].startswith("AIDA") and created["Path"] == "/"
    assert created["CreateDate"].tzinfo is not None
    pathed = iam.create_user("alice", path="/eng/")["User"]
    assert pathed["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/eng/alice"

    assert iam.get_user("bob")["User"] == created
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["alice", "bob"]

    iam.delete_user("bob")
    with pytest.raises(NoSuchEntityError) as info:
        iam.get_user("bob")
    assert info.value.status == 404 and info.value.aws_code == "NoSuchEntity"
    assert info.value.message == "The user with name bob cannot be found."
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["alice"]
    with pytest.raises(NoSuchEntityError):
        iam.delete_user("bob")


def test_duplicate_user_is_a_409(iam: IamService) -> None:
    iam.create_user("alice")
    with pytest.raises(EntityAlreadyExistsError) as info:
        iam.create_user("alice")
    assert info.value.status == 409 and info.value.aws_code == "EntityAlreadyExists"
    assert info.value.message == "User with name alice already exists."


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "x" * 65])
def test_user_name_validation(iam: IamService, name: str) -> None:
    with pytest.raises(IamValidationError) as info:
        iam.create_user(name)
    assert info.value.status == 400 and info.value.aws_code == "ValidationError"
    assert info.value.message == (
        f"1 validation error detected: Value '{name}' at 'userName' failed to satisfy "
        r"constraint: Member must have length between 1 and 64 and match the pattern "
        r"[\w+=,.@-]+"
    )
    assert iam.list_users()["Users"] == []


def test_longest_allowed_name_and_bad_path(iam: IamService) -> None:
    iam.create_user("x" * 64)
    with pytest.raises(IamValidationError, match="must begin and end with /"):
        iam.create_user("carol", path="eng")


def test_delete_user_refused_while_keys_policies_or_mfa_remain(
    iam: IamService, clock: Clock
) -> None:
    key_id = user_with_key(iam)
    iam.create_group("team")
    iam.add_user_to_group("team", "alice")
    with pytest.raises(DeleteConflictError, match="must delete access keys first") as info:
        iam.delete_user("alice")
    assert info.value.status == 409 and info.value.aws_code == "DeleteConflict"
    iam.delete_access_key(key_id, "alice")

    policy = iam.create_policy("p", doc(allow("sagemaker:ListModels")))["Policy"]["Arn"]
    iam.attach("user", "alice", policy)
    with pytest.raises(DeleteConflictError, match=f"managed policy {policy}"):
        iam.delete_user("alice")
    iam.detach("user", "alice", policy)

    iam.put_inline("user", "alice", "inline", doc(allow("sagemaker:ListModels")))
    with pytest.raises(DeleteConflictError, match="inline policy inline"):
        iam.delete_user("alice")
    iam.delete_inline("user", "alice", "inline")

    serial = enable_mfa(iam, clock, "alice")[0]
    with pytest.raises(DeleteConflictError, match="must remove MFA devices first"):
        iam.delete_user("alice")
    iam.deactivate_mfa_device("alice", serial)

    with pytest.raises(DeleteConflictError, match="must remove user from all groups first"):
        iam.delete_user("alice")
    iam.remove_user_from_group("team", "alice")

    iam.delete_user("alice")
    assert iam.list_users()["Users"] == []
    assert iam.get_group("team")["Users"] == []


# --- access keys --------------------------------------------------------------------------


def test_access_key_secret_is_returned_once_and_stored_encrypted(
    iam: IamService, db: Database, box: SecretBox, stored_bytes: Callable[[Database], bytes]
) -> None:
    iam.create_user("alice")
    key = iam.create_access_key("alice")["AccessKey"]
    key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
    assert key_id.startswith("AKIA") and len(key_id) == 20
    assert len(secret) == 40 and key["Status"] == "Active" and key["UserName"] == "alice"

    listed = iam.list_access_keys("alice")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key_id]
    assert "SecretAccessKey" not in listed[0]
    assert secret not in json.dumps(iam.list_access_keys("alice"), default=str)
    assert secret not in json.dumps(iam.get_user("alice"), default=str)

    with db.session() as session:
        row = session.get(AccessKey, key_id)
        assert row is not None
        assert secret.encode() not in row.secret_encrypted
        assert box.decrypt(row.secret_encrypted) == secret

    on_disk = stored_bytes(db)
    assert key_id.encode() in on_disk  # the key id is there in clear: the right bytes
    assert secret.encode() not in on_disk


def test_session_secrets_are_not_on_disk_in_clear(
    iam: IamService, db: Database, stored_bytes: Callable[[Database], bytes]
) -> None:
    key_id = user_with_key(iam)
    credentials = iam.get_session_token(resolved(iam, key_id))["Credentials"]
    stored = iam.session_credentials(credentials["AccessKeyId"])
    assert stored is not None
    assert stored[:2] == (credentials["SecretAccessKey"], credentials["SessionToken"])
    on_disk = stored_bytes(db)
    assert credentials["AccessKeyId"].encode() in on_disk
    assert credentials["SecretAccessKey"].encode() not in on_disk
    assert credentials["SessionToken"].encode() not in on_disk


def test_access_key_quota_is_two(iam: IamService) -> None:
    iam.create_user("alice")
    first = iam.create_access_key("alice")["AccessKey"]["AccessKeyId"]
    iam.create_access_key("alice")
    with pytest.raises(LimitExceededError) as info:
        iam.create_access_key("alice")
    assert info.value.aws_code == "LimitExceeded" and info.value.status == 409
    assert info.value.message == "Cannot exceed quota for AccessKeysPerUser: 2"
    assert len(iam.list_access_keys("alice")["AccessKeyMetadata"]) == 2
    # Another user has their own quota; deleting a key makes room.
    iam.create_user("bob")
    iam.create_access_key("bob")
    iam.delete_access_key(first, "alice")
    iam.create_access_key("alice")
    assert len(iam.list_access_keys("alice")["AccessKeyMetadata"]) == 2


def test_update_access_key_status(iam: IamService) -> None:
    key_id = user_with_key(iam)
    with pytest.raises(IamValidationError) as info:
        iam.update_access_key(key_id, "Disabled", "alice")
    assert info.value.message == (
        "1 validation error detected: Value 'Disabled' at 'status' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Active, Inactive]"
    )
    assert iam.list_access_keys("alice")["AccessKeyMetadata"][0]["Status"] == "Active"
    iam.update_access_key(key_id, "Inactive", "alice")
    assert iam.list_access_keys("alice")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    iam.create_user("bob")
    with pytest.raises(NoSuchEntityError, match=f"Access Key with id {key_id}"):
        iam.update_access_key(key_id, "Active", "bob")
    with pytest.raises(NoSuchEntityError):
        iam.update_access_key("AKIANOSUCHKEY0000000", "Active")


def test_access_key_last_used_before_any_use(iam: IamService) -> None:
    key_id = user_with_key(iam)
    assert iam.get_access_key_last_used(key_id) == {
        "UserName": "alice",
        "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"},
    }
    assert "PasswordLastUsed" not in iam.get_user("alice")["User"]
    assert iam.user_of_key(key_id) == "alice"
    with pytest.raises(NoSuchEntityError):
        iam.get_access_key_last_used("AKIANOSUCHKEY0000000")


# --- groups -------------------------------------------------------------------------------


def test_group_membership(iam: IamService) -> None:
    group = iam.create_group("team", path="/eng/")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/eng/team"
    assert group["GroupId"].startswith("AGPA")
    with pytest.raises(EntityAlreadyExistsError):
        iam.create_group("team")
    iam.create_user("alice")
    iam.create_user("bob")
    iam.add_user_to_group("team", "bob")
    iam.add_user_to_group("team", "alice")
    iam.add_user_to_group("team", "alice")  # twice is once
    assert [u["UserName"] for u in iam.get_group("team")["Users"]] == ["alice", "bob"]
    assert [g["GroupName"] for g in iam.list_groups_for_user("alice")["Groups"]] == ["team"]
    with pytest.raises(NoSuchEntityError):
        iam.add_user_to_group("team", "nobody")
    with pytest.raises(NoSuchEntityError):
        iam.add_user_to_group("nogroup", "alice")

    with pytest.raises(DeleteConflictError, match="remove users from group first"):
        iam.delete_group("team")
    iam.remove_user_from_group("team", "alice")
    with pytest.raises(NoSuchEntityError, match="not in group team"):
        iam.remove_user_from_group("team", "alice")
    iam.remove_user_from_group("team", "bob")
    iam.delete_group("team")
    assert iam.list_groups()["Groups"] == []


def test_group_policies_reach_members_through_resolve(iam: IamService) -> None:
    key_id = user_with_key(iam)
    iam.create_group("team")
    iam.put_inline("group", "team", "list-models", doc(allow("sagemaker:ListModels")))
    managed = iam.create_policy("invoke", doc(allow("sagemaker:InvokeEndpoint")))
    iam.attach("group", "team", managed["Policy"]["Arn"])

    before = resolved(iam, key_id)
    assert before.policies == ()
    assert not allows(before, "sagemaker:ListModels")

    iam.add_user_to_group("team", "alice")
    member = resolved(iam, key_id)
    assert sorted(p.name or "" for p in member.policies) == ["invoke", "list-models"]
    assert allows(member, "sagemaker:ListModels")
    assert allows(member, "sagemaker:InvokeEndpoint", ENDPOINT)
    assert not allows(member, "sagemaker:DeleteEndpoint", ENDPOINT)

    with pytest.raises(DeleteConflictError, match="must detach all policies first"):
        iam.delete_group("team")

    iam.remove_user_from_group("team", "alice")
    assert resolved(iam, key_id).policies == ()


# --- roles --------------------------------------------------------------------------------


def test_role_trust_policy_is_validated(iam: IamService) -> None:
    no_principal = doc({"Effect": "Allow", "Action": "sts:AssumeRole"})
    with pytest.raises(MalformedPolicyDocumentError) as info:
        iam.create_role("r", no_principal)
    assert info.value.aws_code == "MalformedPolicyDocument" and info.value.status == 400
    assert info.value.message == "Missing required field Principal"
    with pytest.raises(MalformedPolicyDocumentError):
        iam.create_role("r", "{not json")
    with pytest.raises(NoSuchEntityError):
        iam.get_role("r")

    role = iam.create_role("r", trust({"Service": "lambda.amazonaws.com"}))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/r"
    assert role["RoleId"].startswith("AROA") and role["MaxSessionDuration"] == 3600
    assert json.loads(role["AssumeRolePolicyDocument"]) == trust(
        {"Service": "lambda.amazonaws.com"}
    )
    with pytest.raises(EntityAlreadyExistsError):
        iam.create_role("r", trust({"Service": "lambda.amazonaws.com"}))
    with pytest.raises(MalformedPolicyDocumentError):
        iam.update_assume_role_policy("r", no_principal)
    assert "lambda" in iam.get_role("r")["Role"]["AssumeRolePolicyDocument"]


@pytest.mark.parametrize(
    ("seconds", "ok"), [(3599, False), (3600, True), (43200, True), (43201, False)]
)
def test_role_max_session_duration_bounds(iam: IamService, seconds: int, ok: bool) -> None:
    document = trust({"Service": "lambda.amazonaws.com"})
    if ok:
        role = iam.create_role("r", document, max_session_duration=seconds)["Role"]
        assert role["MaxSessionDuration"] == seconds
    else:
        with pytest.raises(IamValidationError, match="must be between 3600 and 43200"):
            iam.create_role("r", document, max_session_duration=seconds)
        assert iam.list_roles()["Roles"] == []


def test_role_boundary_must_exist(iam: IamService) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:policy/nope"
    document = trust({"Service": "lambda.amazonaws.com"})
    with pytest.raises(NoSuchEntityError, match="nope does not exist"):
        iam.create_role("r", document, permissions_boundary=missing)
    assert iam.list_roles()["Roles"] == []

    boundary = iam.create_policy("bound", doc(allow("sagemaker:List*")))["Policy"]["Arn"]
    role = iam.create_role("r", document, permissions_boundary=boundary)["Role"]
    assert role["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": boundary,
    }
    with pytest.raises(DeleteConflictError, match="permissions boundary"):
        iam.delete_policy(boundary)


def test_delete_role_refused_while_policies_attached(iam: IamService) -> None:
    iam.create_role("r", trust({"Service": "lambda.amazonaws.com"}))
    iam.put_inline("role", "r", "inline", doc(allow("logs:PutLogEvents")))
    with pytest.raises(DeleteConflictError, match="role r still has inline policy inline"):
        iam.delete_role("r")
    iam.delete_inline("role", "r", "inline")
    iam.delete_role("r")
    with pytest.raises(NoSuchEntityError):
        iam.get_role("r")


# --- managed policies ---------------------------------------------------------------------


def test_create_policy(iam: IamService) -> None:
    policy = iam.create_policy("p", doc(allow("sagemaker:ListModels")), description="d")["Policy"]
    assert policy["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/p"
    assert policy["DefaultVersionId"] == "v1" and policy["AttachmentCount"] == 0
    assert policy["PolicyId"].startswith("ANPA") and policy["Description"] == "d"
    with pytest.raises(EntityAlreadyExistsError, match="A policy called p already exists"):
        iam.create_policy("p", doc(allow("sagemaker:ListModels")))
    with pytest.raises(MalformedPolicyDocumentError, match="should not specify a principal"):
        iam.create_policy(
            "q",
            doc({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}),
        )
    version = iam.get_policy_version(policy["Arn"])["PolicyVersion"]
    assert version["VersionId"] == "v1" and version["IsDefaultVersion"]
    assert json.loads(version["Document"]) == doc(allow("sagemaker:ListModels"))


def test_policy_versions_up_to_five(iam: IamService) -> None:
    arn = iam.create_policy("p", doc(allow("sagemaker:ListModels")))["Policy"]["Arn"]
    for n in range(2, 6):
        version = iam.create_policy_version(arn, doc(allow(f"sagemaker:Describe{n}")))
        assert version["PolicyVersion"]["VersionId"] == f"v{n}"
        assert not version["PolicyVersion"]["IsDefaultVersion"]
    with pytest.raises(LimitExceededError, match="up to 5 versions") as info:
        iam.create_policy_version(arn, doc(allow("sagemaker:ListModels")))
    assert info.value.aws_code == "LimitExceeded"
    versions = iam.list_policy_versions(arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [
        ("v1", True),
        ("v2", False),
        ("v3", False),
        ("v4", False),
        ("v5", False),
    ]
    with pytest.raises(NoSuchEntityError, match="version v9"):
        iam.get_policy_version(arn, "v9")


def test_set_as_default_changes_what_resolve_evaluates(iam: IamService) -> None:
    key_id = user_with_key(iam)
    arn = iam.create_policy("p", doc(allow("sagemaker:ListModels")))["Policy"]["Arn"]
    iam.attach("user", "alice", arn)
    assert allows(resolved(iam, key_id), "sagemaker:ListModels")

    iam.create_policy_version(arn, doc(allow("sagemaker:ListEndpoints")))
    principal = resolved(iam, key_id)
    assert allows(principal, "sagemaker:ListModels")
    assert not allows(principal, "sagemaker:ListEndpoints")

    iam.create_policy_version(arn, doc(allow("sagemaker:ListEndpoints")), set_as_default=True)
    principal = resolved(iam, key_id)
    assert not allows(principal, "sagemaker:ListModels")
    assert allows(principal, "sagemaker:ListEndpoints")
    assert iam.get_policy(arn)["Policy"]["DefaultVersionId"] == "v3"
    assert iam.get_policy_version(arn)["PolicyVersion"]["VersionId"] == "v3"


def test_builtins_cannot_be_changed_or_deleted(iam: IamService) -> None:
    iam.ensure_builtins()
    with pytest.raises(IamValidationError, match="built-in"):
        iam.create_policy_version(ADMINISTRATOR_ACCESS, doc(allow("s3:*")), set_as_default=True)
    with pytest.raises(IamValidationError, match="built-in"):
        iam.delete_policy(ADMINISTRATOR_ACCESS)
    policy = iam.get_policy(ADMINISTRATOR_ACCESS)["Policy"]
    assert policy["DefaultVersionId"] == "v1"
    version = iam.get_policy_version(ADMINISTRATOR_ACCESS)["PolicyVersion"]
    assert json.loads(version["Document"]) == doc(allow("*"))


def test_delete_policy_refused_while_attached_or_a_boundary(iam: IamService) -> None:
    iam.create_user("alice")
    arn = iam.create_policy("p", doc(allow("sagemaker:ListModels")))["Policy"]["Arn"]
    iam.attach("user", "alice", arn)
    assert iam.get_policy(arn)["Policy"]["AttachmentCount"] == 1
    assert iam.list_entities_for_policy(arn)["PolicyUsers"] == [{"UserName": "alice"}]
    with pytest.raises(DeleteConflictError, match="attached to entities"):
        iam.delete_policy(arn)
    iam.detach("user", "alice", arn)
    with pytest.raises(NoSuchEntityError):
        iam.detach("user", "alice", arn)

    iam.put_boundary("user", "alice", arn)
    assert iam.get_policy(arn)["Policy"]["PermissionsBoundaryUsageCount"] == 1
    with pytest.raises(DeleteConflictError, match="permissions boundary"):
        iam.delete_policy(arn)
    iam.delete_boundary("user", "alice")

    iam.delete_policy(arn)
    with pytest.raises(NoSuchEntityError):
        iam.get_policy(arn)


def test_attach_needs_an_existing_policy_and_principal(iam: IamService) -> None:
    iam.create_user("alice")
    with pytest.raises(NoSuchEntityError, match="does not exist or is not attachable"):
        iam.attach("user", "alice", f"arn:aws:iam::{ACCOUNT}:policy/nope")
    arn = iam.create_policy("p", doc(allow("sagemaker:ListModels")))["Policy"]["Arn"]
    with pytest.raises(NoSuchEntityError, match="role with name ghost"):
        iam.attach("role", "ghost", arn)
    iam.attach("user", "alice", arn)
    iam.attach("user", "alice", arn)  # twice is once
    assert iam.list_attached("user", "alice")["AttachedPolicies"] == [
        {"PolicyName": "p", "PolicyArn": arn}
    ]


def test_boundary_reaches_resolve(iam: IamService) -> None:
    key_id = user_with_key(iam)
    iam.put_inline("user", "alice", "all", doc(allow("sagemaker:*")))
    bound = iam.create_policy("bound", doc(allow("sagemaker:List*")))["Policy"]["Arn"]
    assert allows(resolved(iam, key_id), "sagemaker:DeleteModel")
    iam.put_boundary("user", "alice", bound)
    principal = resolved(iam, key_id)
    assert principal.boundary is not None
    assert allows(principal, "sagemaker:ListModels")
    assert not allows(principal, "sagemaker:DeleteModel")


# --- built-ins and the admin --------------------------------------------------------------


def test_ensure_builtins_is_idempotent_and_gives_the_admin_administrator_access_once(
    iam: IamService, db: Database
) -> None:
    with db.session() as session:
        session.add(User(name="admin", arn=f"arn:aws:iam::{ACCOUNT}:user/admin", is_admin=True))
    generation = iam.generation
    iam.ensure_builtins()
    assert iam.generation > generation
    aws = iam.list_policies(scope="AWS")["Policies"]
    assert sorted(p["Arn"] for p in aws) == sorted(b.arn for b in BUILTIN_POLICIES)
    assert iam.list_policies(scope="Local")["Policies"] == []
    attached = [{"PolicyName": "AdministratorAccess", "PolicyArn": ADMINISTRATOR_ACCESS}]
    assert iam.list_attached("user", "admin")["AttachedPolicies"] == attached
    user_id = iam.get_user("admin")["User"]["UserId"]
    assert user_id.startswith("AIDA")
    policy_ids = {p["Arn"]: p["PolicyId"] for p in aws}

    iam.ensure_builtins()
    again = iam.list_policies(scope="AWS")["Policies"]
    assert {p["Arn"]: p["PolicyId"] for p in again} == policy_ids
    assert iam.list_attached("user", "admin")["AttachedPolicies"] == attached
    assert iam.get_user("admin")["User"]["UserId"] == user_id

    # Once: an operator who detaches it is not overridden at the next start.
    iam.detach("user", "admin", ADMINISTRATOR_ACCESS)
    iam.ensure_builtins()
    assert iam.list_attached("user", "admin")["AttachedPolicies"] == []


def test_ensure_builtins_restores_a_changed_builtin_document(iam: IamService, db: Database) -> None:
    iam.ensure_builtins()
    with db.session() as session:
        row = session.get(ManagedPolicy, ADMINISTRATOR_ACCESS)
        assert row is not None
        row.document = json.dumps(doc(allow("s3:GetObject")))
    iam.ensure_builtins()
    version = iam.get_policy_version(ADMINISTRATOR_ACCESS)["PolicyVersion"]
    assert json.loads(version["Document"]) == doc(allow("*"))


def test_ensure_builtins_without_an_admin_user(iam: IamService) -> None:
    iam.ensure_builtins()
    assert iam.list_users()["Users"] == []
    assert len(iam.list_policies()["Policies"]) == len(BUILTIN_POLICIES)


# --- resource policies --------------------------------------------------------------------


def test_resource_policy_on_a_function_and_its_versions(iam: IamService) -> None:
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn"
    with pytest.raises(MalformedPolicyDocumentError):
        iam.put_resource_policy(function, doc(allow("lambda:InvokeFunction", function)))
    document = doc(
        {
            "Sid": "fromRole",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/caller"},
            "Action": "lambda:InvokeFunction",
            "Resource": function,
        }
    )
    assert iam.resource_policy(function) is None
    iam.put_resource_policy(function, document)
    policy = iam.resource_policy(function)
    assert policy is not None and policy.statements[0].sid == "fromRole"
    assert iam.resource_policy(function + ":3") == policy
    assert iam.resource_policy(function + "-other") is None
    iam.delete_resource_policy(function)
    assert iam.resource_policy(function) is None


# --- resolve and STS ----------------------------------------------------------------------


def test_resolve_a_user_key_and_an_unknown_key(iam: IamService) -> None:
    key_id = user_with_key(iam)
    iam.put_inline("user", "alice", "mine", doc(allow("sagemaker:ListModels")))
    principal = resolved(iam, key_id)
    assert principal.arn == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert (principal.kind, principal.name, principal.access_key_id) == ("user", "alice", key_id)
    assert principal.id == iam.get_user("alice")["User"]["UserId"]
    assert [p.name for p in principal.policies] == ["mine"]
    assert principal.mfa is None and principal.session_policy is None
    assert "aws:MultiFactorAuthPresent" not in principal.context()
    assert iam.resolve("AKIANOSUCHKEY0000000") is None
    assert iam.resolve("ASIANOSUCHKEY0000000") is None


def test_resolve_a_role_session(iam: IamService, clock: Clock) -> None:
    key_id = user_with_key(iam)
    user = resolved(iam, key_id)
    role_arn = iam.create_role("worker", trust({"AWS": user.arn}))["Role"]["Arn"]
    iam.put_inline("role", "worker", "role-policy", doc(allow("sagemaker:*")))
    session_policy = json.dumps(doc(allow("sagemaker:ListModels")))
    result = iam.assume_role(user, role_arn, "job-1", policy=session_policy)
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/job-1"
    assert result["AssumedRoleUser"]["Arn"] == session_arn
    role_id = iam.get_role("worker")["Role"]["RoleId"]
    assert result["AssumedRoleUser"]["AssumedRoleId"] == f"{role_id}:job-1"
    credentials = result["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert credentials["Expiration"] == (START + timedelta(seconds=3600)).replace(microsecond=0)

    session = resolved(iam, credentials["AccessKeyId"])
    assert session.arn == session_arn and session.kind == "role" and session.name == "worker"
    assert session.role_arn == role_arn and session.session_name == "job-1"
    assert session.id == role_id
    assert [p.name for p in session.policies] == ["role-policy"]
    assert session.session_policy is not None
    assert [s.actions for s in session.session_policy.statements] == [("sagemaker:ListModels",)]
    assert session.mfa is False and session.token_issued_at == START
    context = session.context()
    assert context["aws:PrincipalArn"] == role_arn
    assert context["aws:PrincipalType"] == "AssumedRole"
    assert context["aws:userid"] == f"{role_id}:job-1"
    assert context["aws:MultiFactorAuthPresent"] == "false"
    assert iam.get_role("worker")["Role"]["RoleLastUsed"]["LastUsedDate"] == START


def test_assume_role_refuses_a_malformed_session_policy(iam: IamService) -> None:
    user = resolved(iam, user_with_key(iam))
    role_arn = iam.create_role("worker", trust({"AWS": user.arn}))["Role"]["Arn"]
    with pytest.raises(MalformedPolicyDocumentError):
        iam.assume_role(user, role_arn, "s1", policy="{nope")


def test_assume_role_for_a_service_principal_honours_the_trust_policy(iam: IamService) -> None:
    arn = iam.create_role("fn-role", trust({"Service": "lambda.amazonaws.com"}))["Role"]["Arn"]
    result = iam.assume_role("lambda.amazonaws.com", arn, "fn-start")
    session = resolved(iam, result["Credentials"]["AccessKeyId"])
    assert session.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-role/fn-start"

    with pytest.raises(StsAccessDeniedError) as info:
        iam.assume_role("sagemaker.amazonaws.com", arn, "job")
    assert info.value.status == 403 and info.value.aws_code == "AccessDenied"
    assert info.value.message == (
        "User: sagemaker.amazonaws.com is not authorized to perform: sts:AssumeRole on "
        f"resource: {arn}"
    )
    user_trusted = iam.create_role("u", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    with pytest.raises(StsAccessDeniedError):
        iam.assume_role("lambda.amazonaws.com", user_trusted["Role"]["Arn"], "fn-start")
    with pytest.raises(StsAccessDeniedError):
        iam.assume_role("lambda.amazonaws.com", f"arn:aws:iam::{ACCOUNT}:role/ghost", "s1")
    with pytest.raises(IamValidationError, match="not a role ARN of account"):
        iam.assume_role("lambda.amazonaws.com", "arn:aws:iam::999999999999:role/fn-role", "s1")
    with pytest.raises(IamValidationError, match="roleSessionName"):
        iam.assume_role("lambda.amazonaws.com", arn, "x")


@pytest.mark.parametrize(
    ("seconds", "ok"), [(899, False), (900, True), (7200, True), (7201, False)]
)
def test_assume_role_session_duration_bounds(iam: IamService, seconds: int, ok: bool) -> None:
    arn = iam.create_role(
        "fn-role", trust({"Service": "lambda.amazonaws.com"}), max_session_duration=7200
    )["Role"]["Arn"]
    if ok:
        result = iam.assume_role("lambda.amazonaws.com", arn, "s1", duration_seconds=seconds)
        expected = (START + timedelta(seconds=seconds)).replace(microsecond=0)
        assert result["Credentials"]["Expiration"] == expected
    else:
        with pytest.raises(IamValidationError, match=r"DurationSeconds \(\d+\) must be between"):
            iam.assume_role("lambda.amazonaws.com", arn, "s1", duration_seconds=seconds)


def test_get_session_token(iam: IamService) -> None:
    key_id = user_with_key(iam)
    iam.put_inline("user", "alice", "mine", doc(allow("sagemaker:ListModels")))
    user = resolved(iam, key_id)
    credentials = iam.get_session_token(user)["Credentials"]
    assert credentials["Expiration"] == START + timedelta(hours=12)
    session = resolved(iam, credentials["AccessKeyId"])
    assert (session.arn, session.kind, session.name) == (user.arn, "user", "alice")
    assert [p.name for p in session.policies] == ["mine"]
    assert session.mfa is False

    with pytest.raises(StsAccessDeniedError, match="with session credentials"):
        iam.get_session_token(session)
    role_arn = iam.create_role("worker", trust({"AWS": user.arn}))["Role"]["Arn"]
    role_session = resolved(
        iam, iam.assume_role(user, role_arn, "s1")["Credentials"]["AccessKeyId"]
    )
    with pytest.raises(StsAccessDeniedError, match="with session credentials"):
        iam.get_session_token(role_session)

    iam.get_session_token(user, duration_seconds=36 * 3600)
    for seconds in (899, 36 * 3600 + 1):
        with pytest.raises(IamValidationError, match="must be between 900 and 129600"):
            iam.get_session_token(user, duration_seconds=seconds)


def test_purge_expired_sessions_removes_only_those_expired_more_than_a_day(
    iam: IamService, clock: Clock
) -> None:
    user = resolved(iam, user_with_key(iam))
    short = iam.get_session_token(user, duration_seconds=900)["Credentials"]["AccessKeyId"]
    longer = iam.get_session_token(user, duration_seconds=3600)["Credentials"]["AccessKeyId"]
    assert iam.purge_expired_sessions() == 0

    clock.advance(900 + 86400 - 5)  # short expired just under a day ago
    assert iam.purge_expired_sessions() == 0
    assert iam.resolve(short) is not None

    clock.advance(10)  # short: a day and 5 s ago; longer: under a day ago
    assert iam.purge_expired_sessions() == 1
    assert iam.resolve(short) is None
    assert iam.resolve(longer) is not None
    assert iam.resolve(user.access_key_id) is not None

    clock.advance(2700)
    assert iam.purge_expired_sessions() == 1
    assert iam.resolve(longer) is None


# --- MFA ----------------------------------------------------------------------------------


def new_device(iam: IamService, name: str) -> tuple[str, pyotp.TOTP]:
    device = iam.create_virtual_mfa_device(name)["VirtualMFADevice"]
    return device["SerialNumber"], pyotp.TOTP(device["Base32StringSeed"].decode())


def code(totp: pyotp.TOTP, step: int) -> str:
    return str(totp.at(step * TOTP_STEP))


def enable_mfa(iam: IamService, clock: Clock, user: str) -> tuple[str, pyotp.TOTP]:
    serial, totp = new_device(iam, f"{user}-phone")
    iam.enable_mfa_device(user, serial, code(totp, clock.step - 1), code(totp, clock.step))
    return serial, totp


def test_virtual_mfa_device_shape(iam: IamService) -> None:
    created = iam.create_virtual_mfa_device("phone")
    serial = created["VirtualMFADevice"]["SerialNumber"]
    assert serial == f"arn:aws:iam::{ACCOUNT}:mfa/phone"
    seed = created["VirtualMFADevice"]["Base32StringSeed"].decode()
    assert created["OtpauthUri"].startswith("otpauth://totp/") and seed in created["OtpauthUri"]
    with pytest.raises(EntityAlreadyExistsError):
        iam.create_virtual_mfa_device("phone")
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == [{"SerialNumber": serial}]


def test_enabling_mfa_needs_two_consecutive_codes(iam: IamService, clock: Clock) -> None:
    iam.create_user("alice")
    serial, totp = new_device(iam, "phone")
    now = clock.step
    for first, second in [(now, now), (now - 2, now), (now, now - 1), (now - 3, now - 2)]:
        with pytest.raises(InvalidAuthenticationCodeError) as info:
            iam.enable_mfa_device("alice", serial, code(totp, first), code(totp, second))
        assert info.value.aws_code == "InvalidAuthenticationCode" and info.value.status == 403
    assert iam.list_mfa_devices("alice")["MFADevices"] == []

    iam.enable_mfa_device("alice", serial, code(totp, now - 1), code(totp, now))
    devices = iam.list_mfa_devices("alice")["MFADevices"]
    assert [(d["UserName"], d["SerialNumber"]) for d in devices] == [("alice", serial)]
    assert devices[0]["EnableDate"] == START

    iam.create_user("bob")
    with pytest.raises(EntityAlreadyExistsError, match="already in use"):
        iam.enable_mfa_device("bob", serial, code(totp, now), code(totp, now + 1))
    with pytest.raises(DeleteConflictError):
        iam.delete_virtual_mfa_device(serial)


def test_get_session_token_with_mfa_refuses_replayed_codes(iam: IamService, clock: Clock) -> None:
    user = resolved(iam, user_with_key(iam))
    serial, totp = enable_mfa(iam, clock, "alice")
    enabled_at = clock.step
    # The code that enabled the device is spent.
    with pytest.raises(StsAccessDeniedError, match="invalid MFA one time pass code"):
        iam.get_session_token(user, serial_number=serial, token_code=code(totp, enabled_at))

    clock.advance(TOTP_STEP)
    fresh = code(totp, clock.step)
    credentials = iam.get_session_token(user, serial_number=serial, token_code=fresh)
    session = resolved(iam, credentials["Credentials"]["AccessKeyId"])
    assert session.mfa is True
    assert session.context()["aws:MultiFactorAuthPresent"] == "true"

    with pytest.raises(StsAccessDeniedError, match="invalid MFA one time pass code"):
        iam.get_session_token(user, serial_number=serial, token_code=fresh)

    clock.advance(TOTP_STEP)
    iam.get_session_token(user, serial_number=serial, token_code=code(totp, clock.step))


def test_codes_of_the_pairing_are_both_spent(iam: IamService, clock: Clock) -> None:
    """Pairing with the current and the next code (a clock running ahead) spends both."""
    user = resolved(iam, user_with_key(iam))
    serial, totp = new_device(iam, "phone")
    now = clock.step
    iam.enable_mfa_device("alice", serial, code(totp, now), code(totp, now + 1))
    clock.advance(TOTP_STEP)
    with pytest.raises(StsAccessDeniedError, match="invalid MFA one time pass code"):
        iam.get_session_token(user, serial_number=serial, token_code=code(totp, now + 1))
    clock.advance(TOTP_STEP)
    iam.get_session_token(user, serial_number=serial, token_code=code(totp, now + 2))


def test_mfa_code_of_another_device_or_user_is_refused(iam: IamService, clock: Clock) -> None:
    alice = resolved(iam, user_with_key(iam, "alice"))
    bob = resolved(iam, user_with_key(iam, "bob"))
    alice_serial, alice_totp = enable_mfa(iam, clock, "alice")
    bob_serial, bob_totp = enable_mfa(iam, clock, "bob")
    spare_serial, spare_totp = new_device(iam, "spare")  # never enabled
    clock.advance(TOTP_STEP)
    step = clock.step

    with pytest.raises(StsAccessDeniedError, match=f"no MFA device {bob_serial} enabled"):
        iam.get_session_token(alice, serial_number=bob_serial, token_code=code(bob_totp, step))
    with pytest.raises(StsAccessDeniedError, match="invalid MFA one time pass code"):
        iam.get_session_token(alice, serial_number=alice_serial, token_code=code(bob_totp, step))
    with pytest.raises(StsAccessDeniedError, match="no MFA device"):
        iam.get_session_token(alice, serial_number=spare_serial, token_code=code(spare_totp, step))
    with pytest.raises(StsAccessDeniedError, match="no MFA device"):
        iam.get_session_token(
            alice, serial_number=f"arn:aws:iam::{ACCOUNT}:mfa/ghost", token_code="123456"
        )
    with pytest.raises(IamValidationError, match="must be given together"):
        iam.get_session_token(alice, serial_number=alice_serial)
    # A code from the past (outside the ±1 step window) is refused too.
    with pytest.raises(StsAccessDeniedError):
        iam.get_session_token(
            alice, serial_number=alice_serial, token_code=code(alice_totp, step - 5)
        )
    # None of the refusals spent anything: the right code still works.
    iam.get_session_token(alice, serial_number=alice_serial, token_code=code(alice_totp, step))
    iam.get_session_token(bob, serial_number=bob_serial, token_code=code(bob_totp, step))


def test_assume_role_with_mfa_marks_the_session(iam: IamService, clock: Clock) -> None:
    user = resolved(iam, user_with_key(iam))
    role_arn = iam.create_role("worker", trust({"AWS": user.arn}))["Role"]["Arn"]
    serial, totp = enable_mfa(iam, clock, "alice")
    plain = iam.assume_role(user, role_arn, "plain")["Credentials"]["AccessKeyId"]
    assert resolved(iam, plain).mfa is False
    clock.advance(TOTP_STEP)
    with_mfa = iam.assume_role(
        user, role_arn, "mfa", serial_number=serial, token_code=code(totp, clock.step)
    )["Credentials"]["AccessKeyId"]
    assert resolved(iam, with_mfa).mfa is True
    # A session that came from an MFA session carries the flag on without a code.
    mfa_user = resolved(
        iam,
        iam.get_session_token(user, serial_number=serial, token_code=code(totp, clock.step + 1))[
            "Credentials"
        ]["AccessKeyId"],
    )
    chained = iam.assume_role(mfa_user, role_arn, "chained")["Credentials"]["AccessKeyId"]
    assert resolved(iam, chained).mfa is True


def test_deactivated_device_can_be_deleted(iam: IamService, clock: Clock) -> None:
    iam.create_user("alice")
    serial, _ = enable_mfa(iam, clock, "alice")
    with pytest.raises(NoSuchEntityError, match="not enabled for bob"):
        iam.deactivate_mfa_device("bob", serial)
    iam.deactivate_mfa_device("alice", serial)
    assert iam.list_mfa_devices("alice")["MFADevices"] == []
    iam.delete_virtual_mfa_device(serial)
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    with pytest.raises(NoSuchEntityError):
        iam.delete_virtual_mfa_device(serial)


def test_every_change_bumps_the_generation(iam: IamService) -> None:
    seen = [iam.generation]

    def bumped() -> bool:
        seen.append(iam.generation)
        return seen[-1] > seen[-2]

    key_id = user_with_key(iam)
    assert bumped()
    arn = iam.create_policy("p", doc(allow("sagemaker:ListModels")))["Policy"]["Arn"]
    assert bumped()
    iam.attach("user", "alice", arn)
    assert bumped()
    iam.detach("user", "alice", arn)
    assert bumped()
    iam.update_access_key(key_id, "Inactive")
    assert bumped()
    iam.get_user("alice")
    iam.list_users()
    assert not bumped()
