"""IAM on a real server, through plain boto3 (iam, sts, sagemaker-runtime) and kennel's client.

The dog-breed project's least-privilege story end to end: a role that may invoke one
endpoint and nothing else; AmazonSageMakerFullAccess flagged by the audit; a policy
generated from what the role really did, which is then enough to run the flow.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyotp
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import aws_error
from tests.integration.endpoints.conftest import Models

from kennel._client import KennelClient
from kennel._errors import AuthError

FULL_ACCESS = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class Aws:
    """boto3 clients for one set of credentials against the test server."""

    def __init__(self, server: RunningServer, key: str, secret: str, token: str | None = None):
        self.server = server
        self.credentials = Credentials(key, secret, token)
        self.session = boto3.Session(
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            region_name="us-east-1",
        )

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.server.url, config=NO_RETRIES)

    def kennel(self) -> KennelClient:
        return KennelClient(self.server.url, self.credentials, "us-east-1")


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Aws:
    key, secret = server.credentials()
    return Aws(server, key, secret)


@pytest.fixture(scope="module")
def account(admin: Aws) -> str:
    return str(admin.client("sts").get_caller_identity()["Account"])


def _user_with_key(admin: Aws, name: str) -> Aws:
    iam = admin.client("iam")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Aws(admin.server, key["AccessKeyId"], key["SecretAccessKey"])


def _assume(caller: Aws, role_arn: str, **extra: Any) -> Aws:
    creds = caller.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName=_unique("s"), **extra
    )["Credentials"]
    return Aws(caller.server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def _role_trusting_admin(iam: Any, role: str, account: str) -> str:
    trust = _doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:user/admin"},
            "Action": "sts:AssumeRole",
        }
    )
    return str(iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"])


def _invoke(aws: Aws, endpoint: str) -> dict[str, Any]:
    answer = aws.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps({"echo": "woof"}), ContentType="application/json"
    )
    return dict(json.loads(answer["Body"].read()))


@pytest.fixture(scope="module")
def two_endpoints(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two live echo endpoints (the dog-breed one, and another the role must not touch)."""
    with server.client() as api:
        made = Models(api, tmp_path_factory.mktemp("iam-models"))
        model = made.model("v1")
        config = made.config({"model_name": model, "initial_instance_count": 1})
        dogs = made.endpoint(config, wait=False)
        other = made.endpoint(config, wait=False)
        from tests.integration.endpoints.conftest import wait_status

        for name in (dogs, other):
            assert wait_status(api, name, ("InService", "Failed"))["status"] == "InService"
        yield dogs, other
        made.cleanup()


def test_least_privilege_role_end_to_end(
    admin: Aws, account: str, two_endpoints: tuple[str, str]
) -> None:
    dogs, other = two_endpoints
    iam = admin.client("iam")
    deployer = _unique("deployer")
    caller = _user_with_key(admin, deployer)
    role = _unique("dog-breed-fn")
    trust = _doc(
        {
            "Effect": "Allow",
            "Principal": {
                "Service": "lambda.amazonaws.com",
                "AWS": f"arn:aws:iam::{account}:user/{deployer}",
            },
            "Action": "sts:AssumeRole",
        }
    )
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    dogs_arn = f"arn:aws:sagemaker:us-east-1:{account}:endpoint/{dogs}"
    iam.put_role_policy(
        RoleName=role,
        PolicyName="invoke-dogs",
        PolicyDocument=_doc(
            {"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": dogs_arn}
        ),
    )
    fn = _assume(caller, role_arn)
    assert _invoke(fn, dogs)["echo"] == "woof"

    with pytest.raises(ClientError) as denied:
        _invoke(fn, other)
    status, code, message = aws_error(denied)
    session_arn = fn.client("sts").get_caller_identity()["Arn"]
    assert (status, code) == (403, "AccessDeniedException")
    assert message == (
        f"User: {session_arn} is not authorized to perform: sagemaker:InvokeEndpoint on "
        f"resource: arn:aws:sagemaker:us-east-1:{account}:endpoint/{other} because no "
        "identity-based policy allows the sagemaker:InvokeEndpoint action"
    )
    request_id = denied.value.response["ResponseMetadata"]["RequestId"]
    with admin.kennel() as api:
        explained = api.get(f"/api/v1/iam/access-log/{request_id}")["decisions"][0]
    assert explained["principal"] == session_arn
    assert explained["action"] == "sagemaker:InvokeEndpoint"
    assert explained["resource"].endswith(f":endpoint/{other}")
    assert explained["reason"] == "implicit-deny" and not explained["allowed"]

    with fn.kennel() as api, pytest.raises(AuthError) as no_training:
        api.post("/api/v1/training-jobs", {"name": _unique("job"), "entry_point": "train.py"})
    assert "sagemaker:CreateTrainingJob" in no_training.value.message
    assert no_training.value.aws_code == "AccessDeniedException"

    def role_findings() -> list[dict[str, Any]]:
        with admin.kennel() as api:
            findings = api.get("/api/v1/iam/audit")["findings"]
        return [f for f in findings if f["principal"] == role_arn]

    assert not [f for f in role_findings() if f["severity"] == "high"]
    iam.delete_role_policy(RoleName=role, PolicyName="invoke-dogs")
    iam.attach_role_policy(RoleName=role, PolicyArn=FULL_ACCESS)
    flagged = [f for f in role_findings() if f["id"] == "full-access-on-service-role"]
    assert flagged and flagged[0]["severity"] == "high"
    assert "AmazonSageMakerFullAccess" in flagged[0]["detail"]


def test_generated_policy_is_the_least_privilege_that_still_runs_the_flow(
    admin: Aws, account: str, two_endpoints: tuple[str, str]
) -> None:
    dogs, other = two_endpoints
    iam = admin.client("iam")
    role = _unique("dog-breed-full")
    role_arn = _role_trusting_admin(iam, role, account)
    iam.attach_role_policy(RoleName=role, PolicyArn=FULL_ACCESS)
    fn = _assume(admin, role_arn)
    for _ in range(3):
        assert _invoke(fn, dogs)["echo"] == "woof"  # the flow, under FullAccess

    with admin.kennel() as api:
        generated = api.post("/api/v1/iam/generate-policy", {"principal": role_arn})
        unused = api.get("/api/v1/iam/unused", params={"principal": role_arn})["unused"]
    dogs_arn = f"arn:aws:sagemaker:us-east-1:{account}:endpoint/{dogs}"
    assert generated["policy"]["Statement"] == [
        {
            "Sid": generated["policy"]["Statement"][0]["Sid"],
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": dogs_arn,
        }
    ]
    never_used = {a for u in unused for a in u["actions"]}
    assert "sagemaker:CreateTrainingJob" in never_used
    assert "sagemaker:InvokeEndpoint" not in never_used

    policy_arn = iam.create_policy(
        PolicyName=_unique("generated"), PolicyDocument=json.dumps(generated["policy"])
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    iam.detach_role_policy(RoleName=role, PolicyArn=FULL_ACCESS)
    narrowed = _assume(admin, role_arn)
    assert _invoke(narrowed, dogs)["echo"] == "woof"
    with pytest.raises(ClientError) as denied:
        _invoke(narrowed, other)
    assert aws_error(denied)[:2] == (403, "AccessDeniedException")


def test_temporary_credentials_expire(admin: Aws, account: str) -> None:
    iam = admin.client("iam")
    role = _unique("short")
    role_arn = _role_trusting_admin(iam, role, account)
    # boto3 checks DurationSeconds >= 900 itself; the test server allows 1 s and up.
    sts = admin.session.client(
        "sts", endpoint_url=admin.server.url, config=Config(parameter_validation=False)
    )
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="brief", DurationSeconds=4)[
        "Credentials"
    ]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    session = Aws(
        admin.server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    arn = session.client("sts").get_caller_identity()["Arn"]
    assert arn == f"arn:aws:sts::{account}:assumed-role/{role}/brief"
    time.sleep(max(0.0, creds["Expiration"].timestamp() - time.time()) + 1.0)
    with pytest.raises(ClientError) as expired:
        session.client("sts").get_caller_identity()
    assert aws_error(expired)[:2] == (403, "ExpiredToken")
    forged = Aws(admin.server, creds["AccessKeyId"], creds["SecretAccessKey"], "not-the-token")
    with pytest.raises(ClientError) as bad_token:
        forged.client("sts").get_caller_identity()
    assert aws_error(bad_token)[0] == 403


def test_a_deactivated_key_is_refused_and_a_reactivated_one_works(admin: Aws) -> None:
    name = _unique("rotating")
    user = _user_with_key(admin, name)
    key_id = user.credentials.access_key
    assert user.client("sts").get_caller_identity()["Arn"].endswith(f"user/{name}")
    iam = admin.client("iam")
    iam.update_access_key(UserName=name, AccessKeyId=key_id, Status="Inactive")
    with pytest.raises(ClientError) as refused:
        user.client("sts").get_caller_identity()
    assert aws_error(refused)[:2] == (403, "InvalidClientTokenId")
    iam.update_access_key(UserName=name, AccessKeyId=key_id, Status="Active")
    assert user.client("sts").get_caller_identity()["Arn"].endswith(f"user/{name}")
    used = iam.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
    assert used["ServiceName"] == "sts" and "LastUsedDate" in used
    iam.delete_access_key(UserName=name, AccessKeyId=key_id)
    with pytest.raises(ClientError):
        user.client("sts").get_caller_identity()


def test_a_user_without_policies_is_denied_everywhere_and_every_denial_is_logged(
    admin: Aws,
) -> None:
    user = _user_with_key(admin, _unique("nobody"))
    with user.kennel() as api:
        for method, path in (
            ("GET", "/api/v1/status"),
            ("GET", "/api/v1/datasets"),
            ("GET", "/api/v1/training-jobs"),
            ("GET", "/api/v1/models"),
            ("GET", "/api/v1/endpoints"),
            ("GET", "/api/v1/iam/audit"),
        ):
            with pytest.raises(AuthError) as denied:
                api.request(method, path)
            assert denied.value.status == 403, path
            assert "is not authorized to perform" in denied.value.message
    with pytest.raises(ClientError) as iam_denied:
        user.client("iam").list_users()
    assert aws_error(iam_denied)[:2] == (403, "AccessDenied")
    # GetCallerIdentity needs no permission, as on AWS.
    assert user.client("sts").get_caller_identity()["Arn"].endswith("user/" + _name(user))
    with admin.kennel() as api:
        log = api.get(
            "/api/v1/iam/access-log",
            params={"principal": user.client("sts").get_caller_identity()["Arn"], "denied": "true"},
        )["entries"]
    assert {e["action"] for e in log} >= {
        "kennel:GetServerStatus",
        "kennel:ListDatasets",
        "sagemaker:ListTrainingJobs",
        "sagemaker:ListModels",
        "sagemaker:ListEndpoints",
        "access-analyzer:ListFindings",
        "iam:ListUsers",
    }


def _name(aws: Aws) -> str:
    return str(aws.client("sts").get_caller_identity()["Arn"].rsplit("/", 1)[-1])


def test_a_permissions_boundary_caps_administrator_access(admin: Aws, account: str) -> None:
    iam = admin.client("iam")
    name = _unique("bounded")
    user = _user_with_key(admin, name)
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    boundary = iam.create_policy(
        PolicyName=_unique("read-only-boundary"),
        PolicyDocument=_doc({"Effect": "Allow", "Action": "sagemaker:List*", "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=boundary)
    with user.kennel() as api:
        assert "endpoints" in api.get("/api/v1/endpoints")
        with pytest.raises(AuthError) as capped:
            api.post("/api/v1/training-jobs", {"name": _unique("job"), "entry_point": "x.py"})
    assert capped.value.message.endswith(
        "because no permissions boundary allows the sagemaker:CreateTrainingJob action"
    )


def test_a_session_policy_narrows_an_assumed_role(admin: Aws, account: str) -> None:
    iam = admin.client("iam")
    role = _unique("wide")
    role_arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=_doc(
            {"Effect": "Allow", "Principal": {"AWS": account}, "Action": "sts:AssumeRole"}
        ),
    )["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=FULL_ACCESS)
    narrowed = _assume(
        admin,
        role_arn,
        Policy=_doc({"Effect": "Allow", "Action": "sagemaker:ListModels", "Resource": "*"}),
    )
    with narrowed.kennel() as api:
        assert "models" in api.get("/api/v1/models")
        with pytest.raises(AuthError) as denied:
            api.get("/api/v1/endpoints")
    assert "because no session policy allows the sagemaker:ListEndpoints action" in (
        denied.value.message
    )


def test_assume_role_needs_the_trust_policy(admin: Aws, account: str) -> None:
    iam = admin.client("iam")
    stranger = _user_with_key(admin, _unique("stranger"))
    iam.put_user_policy(
        UserName=_name(stranger),
        PolicyName="assume-anything",
        PolicyDocument=_doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
    )
    role_arn = iam.create_role(
        RoleName=_unique("lambda-only"),
        AssumeRolePolicyDocument=_doc(
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ),
    )["Role"]["Arn"]
    with pytest.raises(ClientError) as refused:
        _assume(stranger, role_arn)
    status, code, message = aws_error(refused)
    assert (status, code) == (403, "AccessDenied")
    assert "not authorized to perform: sts:AssumeRole" in message


def test_malformed_policies_are_refused_with_aws_messages(admin: Aws) -> None:
    iam = admin.client("iam")
    with pytest.raises(ClientError) as bad:
        iam.create_policy(
            PolicyName=_unique("bad"),
            PolicyDocument=json.dumps({"Statement": [{"Effect": "Allow", "Action": "*"}]}),
        )
    status, code, message = aws_error(bad)
    assert (status, code) == (400, "MalformedPolicyDocument")
    assert message.startswith("Policy document must be version 2012-10-17 or greater.")
    with pytest.raises(ClientError) as missing:
        iam.get_role(RoleName="no-such-role")
    assert aws_error(missing)[:2] == (404, "NoSuchEntity")


def test_mfa_session_satisfies_a_policy_that_requires_mfa(admin: Aws, tmp_path: Path) -> None:
    iam = admin.client("iam")
    name = _unique("mfa-user")
    user = _user_with_key(admin, name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="require-mfa",
        PolicyDocument=_doc(
            {"Effect": "Allow", "Action": "sagemaker:ListModels", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "sagemaker:*",
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            },
        ),
    )
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    totp = pyotp.TOTP(device["Base32StringSeed"].decode())
    step = int(time.time()) // 30
    iam.enable_mfa_device(
        UserName=name,
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=totp.at((step - 1) * 30),
        AuthenticationCode2=totp.at(step * 30),
    )
    with user.kennel() as api, pytest.raises(AuthError) as long_term:
        api.get("/api/v1/models")
    assert "explicit deny" in long_term.value.message

    plain = user.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    no_mfa = Aws(
        admin.server, plain["AccessKeyId"], plain["SecretAccessKey"], plain["SessionToken"]
    )
    with no_mfa.kennel() as api, pytest.raises(AuthError):
        api.get("/api/v1/models")

    good = totp.at((step + 1) * 30)
    with pytest.raises(ClientError) as wrong_code:
        user.client("sts").get_session_token(
            SerialNumber=device["SerialNumber"], TokenCode=f"{(int(good) + 1) % 10**6:06d}"
        )
    assert aws_error(wrong_code)[0] == 403
    creds = user.client("sts").get_session_token(
        SerialNumber=device["SerialNumber"], TokenCode=good
    )["Credentials"]
    with_mfa = Aws(
        admin.server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    with with_mfa.kennel() as api:
        assert "models" in api.get("/api/v1/models")
    listed = iam.list_mfa_devices(UserName=name)["MFADevices"]
    assert [d["SerialNumber"] for d in listed] == [device["SerialNumber"]]
