"""``kennel iam`` as a user types it, against the session's real server.

Names carry a random suffix: the server is shared by the whole test session.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests.e2e.test_cli import kennel

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INVOKE = "sagemaker:InvokeEndpoint"
NO_IDENTITY_POLICY = "because no identity-based policy allows"


def _env(server: RunningServer) -> dict[str, str]:
    # Wide enough that rich never folds an ARN in the human output we assert on.
    return {**server.env, "COLUMNS": "250"}


def _json(env: dict[str, str], *args: str) -> Any:
    return json.loads(kennel(env, *args, "--json").stdout)


def _policy(tmp_path: Path, name: str, *statements: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    return str(path)


def _aws(server: RunningServer, service: str, key: dict[str, Any]) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        aws_session_token=key.get("SessionToken"),
    )


def test_role_simulate_and_audit(server: RunningServer, tmp_path: Path) -> None:
    env = _env(server)
    me = _json(env, "iam", "whoami")
    assert me["Arn"].endswith(":user/admin")
    account = me["Account"]
    role = f"cli-role-{uuid.uuid4().hex[:8]}"
    allowed_ep = f"arn:aws:sagemaker:us-east-1:{account}:endpoint/cli-dogs"
    other_ep = f"arn:aws:sagemaker:us-east-1:{account}:endpoint/cli-cats"

    made = _json(env, "iam", "roles", "create", role, "--trust-service", "lambda.amazonaws.com")
    trust = made["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    document = _policy(
        tmp_path,
        "invoke",
        {"Sid": "Dogs", "Effect": "Allow", "Action": INVOKE, "Resource": allowed_ep},
    )
    kennel(env, "iam", "put-inline", "--role", role, "invoke-dogs", "--document", document)

    out = kennel(
        env, "iam", "simulate", "--principal", made["Arn"], "--action", INVOKE,
        "--resource", allowed_ep, "--resource", other_ep,
    ).stdout  # fmt: skip
    rows = [line for line in out.splitlines() if INVOKE in line and "│" in line]
    assert len(rows) == 2, out
    assert allowed_ep in rows[0] and "allowed" in rows[0] and "invoke-dogs:Dogs" in rows[0]
    assert other_ep in rows[1] and "implicit deny" in rows[1]
    assert NO_IDENTITY_POLICY in out and f"on resource: {other_ep}" in out

    kennel(env, "iam", "attach", "--role", role, "AmazonSageMakerFullAccess")
    findings = _json(env, "iam", "audit")
    mine = [f for f in findings if f["principal"] == made["Arn"]]
    assert [f["id"] for f in mine] == ["full-access-on-service-role"], findings
    assert mine[0]["severity"] == "high" and mine[0]["fix"]
    failed = kennel(env, "iam", "audit", "--fail-on", "high", check=False)
    assert failed.returncode == 2, failed.stderr
    assert "--fail-on high" in failed.stderr
    assert "full-access-on-service-role" in failed.stdout and "fix:" in failed.stdout

    kennel(env, "iam", "roles", "delete", role, "--force")
    assert role not in {r["RoleName"] for r in _json(env, "iam", "roles", "list")}


def test_user_denied_explained_then_generated_policy(server: RunningServer, tmp_path: Path) -> None:
    env = _env(server)
    user = f"cli-user-{uuid.uuid4().hex[:8]}"
    made = _json(env, "iam", "users", "create", user)
    arn = made["Arn"]
    account = arn.split(":")[4]
    created = kennel(env, "iam", "keys", "create", user, "--json")
    key = json.loads(created.stdout)
    assert key["Status"] == "Active" and len(key["SecretAccessKey"]) == 40
    assert "only time" in created.stderr

    runtime = _aws(server, "sagemaker-runtime", key)
    with pytest.raises(ClientError) as denied:
        runtime.invoke_endpoint(EndpointName="cats", Body=b"{}", ContentType="application/json")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    request_id = denied.value.response["ResponseMetadata"]["RequestId"]

    cats = f"arn:aws:sagemaker:us-east-1:{account}:endpoint/cats"
    explained = kennel(env, "iam", "explain", request_id).stdout
    assert arn in explained and INVOKE in explained and cats in explained
    assert "no statement allows this" in explained and NO_IDENTITY_POLICY in explained
    assert re.search(r'"Action": "sagemaker:InvokeEndpoint",\s+"Resource": "' + cats, explained)
    assert f"put-inline --user {user}" in explained

    document = _policy(tmp_path, "any", {"Effect": "Allow", "Action": INVOKE, "Resource": "*"})
    kennel(env, "iam", "put-inline", "--user", user, "invoke-any", "--document", document)
    with pytest.raises(ClientError) as missing:  # authorized, then: no such endpoint
        runtime.invoke_endpoint(EndpointName="dogs", Body=b"{}", ContentType="application/json")
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint dogs" in missing.value.response["Error"]["Message"]

    generated = kennel(env, "iam", "generate-policy", "--principal", arn, "--since", "1h")
    policy = json.loads(generated.stdout)
    assert [{k: v for k, v in s.items() if k != "Sid"} for s in policy["Statement"]] == [
        {
            "Effect": "Allow",
            "Action": INVOKE,
            "Resource": f"arn:aws:sagemaker:us-east-1:{account}:endpoint/dogs",
        }
    ]
    assert "1 statement from" in generated.stderr

    key_id = key["AccessKeyId"]
    kennel(env, "iam", "keys", "deactivate", user, key_id)
    with pytest.raises(ClientError) as refused:
        _aws(server, "sts", key).get_caller_identity()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"

    described = _json(env, "iam", "users", "describe", user)
    assert described["AccessKeys"][0]["Status"] == "Inactive"
    assert described["InlinePolicies"]["invoke-any"]["Statement"][0]["Resource"] == "*"
    kennel(env, "iam", "users", "delete", user, "--force")
    gone = kennel(env, "iam", "users", "describe", user, check=False)
    assert gone.returncode == 1 and "(NoSuchEntity)" in gone.stderr


def test_assume_role_mfa_and_errors(server: RunningServer) -> None:
    env = _env(server)
    me = _json(env, "iam", "whoami")
    role = f"cli-ops-{uuid.uuid4().hex[:8]}"
    kennel(env, "iam", "roles", "create", role, "--trust-principal", me["Arn"])
    exports = kennel(env, "iam", "assume-role", role, "--session-name", "cli", "--duration", "900")
    values = dict(re.findall(r"^export (AWS_\w+)=(\S+)$", exports.stdout, re.MULTILINE))
    assert set(values) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    session = {
        "AccessKeyId": values["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": values["AWS_SECRET_ACCESS_KEY"],
        "SessionToken": values["AWS_SESSION_TOKEN"],
    }
    assumed = _aws(server, "sts", session).get_caller_identity()["Arn"]
    assert assumed.endswith(f":assumed-role/{role}/cli")

    device = _json(env, "iam", "mfa", "create", f"cli-mfa-{uuid.uuid4().hex[:8]}")
    assert re.fullmatch(r"[A-Z2-7]{16,}=*", device["Base32StringSeed"])
    assert device["OtpauthUri"].startswith("otpauth://totp/")
    assert f"secret={device['Base32StringSeed']}" in device["OtpauthUri"]

    builtin = _json(env, "iam", "policies", "describe", "AmazonSageMakerFullAccess")
    assert builtin["Policy"]["Arn"] == "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
    assert builtin["Document"]["Statement"]

    bad = kennel(env, "iam", "access-log", "--since", "10x", check=False)
    assert bad.returncode == 1 and "not a duration" in bad.stderr and "90d" in bad.stderr
    unknown = kennel(env, "iam", "explain", "no-such-request", check=False)
    assert unknown.returncode == 1 and "No authorization decision" in unknown.stderr
    kennel(env, "iam", "roles", "delete", role)
