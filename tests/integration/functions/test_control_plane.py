"""Lambda's control plane on a real server, through a plain boto3 ``lambda`` client.

Functions from a zip, their configuration as boto3 parses it, updates with RevisionId
preconditions, versions, aliases, reserved and provisioned concurrency, account
settings, function URLs, permissions, asynchronous invocation configs, tags, deletion
and its cascade, and who may hand a role to Lambda (iam:PassRole).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import aws_error
from tests.integration.functions.conftest import Create, no_retries, unique

from kennel._errors import KennelError

HANDLER = "import os\n\ndef handler(event, context):\n    return {'stage': os.environ['STAGE']}\n"


def _zip(text: str = HANDLER, extra: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", text)
        if extra:
            archive.writestr("blob.bin", extra, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def _trust(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture(scope="module")
def lam(lambda_client: Any) -> Any:
    return lambda_client


@pytest.fixture(scope="module")
def role(execution_role: str) -> str:
    return execution_role


@pytest.fixture(scope="module")
def account(lambda_client: Any, role: str) -> str:
    return role.split(":")[4]


@pytest.fixture
def fn(create_function: Create) -> str:
    return create_function(HANDLER, Environment={"Variables": {"STAGE": "test"}})


def test_create_get_list(lam: Any, role: str, account: str) -> None:
    name = unique("fn")
    package = _zip()
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": package},
        Description="the dog-breed front",
        Timeout=10,
        MemorySize=256,
        Environment={"Variables": {"STAGE": "prod"}},
        Tags={"team": "dogs"},
    )
    arn = f"arn:aws:lambda:us-east-1:{account}:function:{name}"
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionArn"] == arn and created["Role"] == role
    assert (created["Timeout"], created["MemorySize"], created["CodeSize"]) == (
        10,
        256,
        len(package),
    )
    assert created["Environment"] == {"Variables": {"STAGE": "prod"}}
    assert created["State"] == "Active" and created["Version"] == "$LATEST"
    lam.get_waiter("function_active_v2").wait(FunctionName=name)

    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["CodeSha256"] == created["CodeSha256"]
    assert got["Configuration"]["Description"] == "the dog-breed front"
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Tags"] == {"team": "dogs"}
    by_arn = lam.get_function_configuration(FunctionName=arn)
    assert by_arn["FunctionName"] == name and by_arn["LastUpdateStatus"] == "Successful"
    listed = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    assert listed[name]["FunctionArn"] == arn and "State" not in listed[name]
    names = [
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1})
        for f in page["Functions"]
    ]
    assert name in names and len(names) == len(set(names))
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "dogs"}
    lam.tag_resource(Resource=arn, Tags={"tier": "front"})
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"tier": "front"}
    lam.delete_function(FunctionName=name)


def test_a_package_over_six_megabytes_is_accepted(lam: Any, role: str) -> None:
    name = unique("big")
    package = _zip(extra=os.urandom(8 * 2**20))
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": package},
    )
    assert created["CodeSize"] == len(package)
    updated = lam.update_function_code(FunctionName=name, ZipFile=package)
    assert updated["CodeSha256"] == created["CodeSha256"]
    lam.delete_function(FunctionName=name)


def test_unknown_function_is_resource_not_found(lam: Any, account: str) -> None:
    with pytest.raises(ClientError) as info:
        lam.get_function(FunctionName="no-such-function")
    assert aws_error(info) == (
        404,
        "ResourceNotFoundException",
        f"Function not found: arn:aws:lambda:us-east-1:{account}:function:no-such-function",
    )
    assert isinstance(info.value, lam.exceptions.ResourceNotFoundException)
    assert info.value.response["Type"] == "User"


def test_updates_and_revision_preconditions(lam: Any, fn: str) -> None:
    revision = lam.get_function(FunctionName=fn)["Configuration"]["RevisionId"]
    with pytest.raises(lam.exceptions.PreconditionFailedException) as info:
        lam.update_function_configuration(FunctionName=fn, Timeout=30, RevisionId="stale")
    assert aws_error(info)[0] == 412
    updated = lam.update_function_configuration(
        FunctionName=fn, Timeout=30, MemorySize=512, RevisionId=revision
    )
    assert (updated["Timeout"], updated["MemorySize"]) == (30, 512)
    assert updated["LastUpdateStatus"] == "Successful" and updated["RevisionId"] != revision
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    coded = lam.update_function_code(
        FunctionName=fn,
        ZipFile=_zip("def handler(e, c):\n    return 2\n"),
        RevisionId=updated["RevisionId"],
    )
    assert coded["CodeSha256"] != updated["CodeSha256"] and coded["Timeout"] == 30
    with pytest.raises(ClientError) as bad:
        lam.update_function_configuration(FunctionName=fn, Timeout=901)
    assert aws_error(bad)[:2] == (400, "ValidationException")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_function_configuration(FunctionName=fn, Runtime="nodejs20.x")


def test_versions_and_aliases(lam: Any, fn: str, account: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:{account}:function:{fn}"
    one = lam.publish_version(FunctionName=fn, Description="first")
    assert one["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (one["Version"], one["FunctionArn"]) == ("1", f"{arn}:1")
    assert lam.publish_version(FunctionName=fn)["Version"] == "1"  # nothing changed
    lam.update_function_configuration(FunctionName=fn, Timeout=9)
    assert lam.publish_version(FunctionName=fn)["Version"] == "2"
    versions = lam.list_versions_by_function(FunctionName=fn)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert lam.get_function_configuration(FunctionName=fn, Qualifier="1")["Timeout"] == 3

    alias = lam.create_alias(FunctionName=fn, Name="prod", FunctionVersion="1")
    assert alias["AliasArn"] == f"{arn}:prod" and alias["FunctionVersion"] == "1"
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_alias(FunctionName=fn, Name="prod", FunctionVersion="1")
    moved = lam.update_alias(
        FunctionName=fn, Name="prod", FunctionVersion="2", RevisionId=alias["RevisionId"]
    )
    assert moved["FunctionVersion"] == "2"
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_alias(FunctionName=fn, Name="prod", RevisionId=alias["RevisionId"])
    assert lam.get_alias(FunctionName=fn, Name="prod")["FunctionVersion"] == "2"
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fn)["Aliases"]] == ["prod"]
    through_alias = lam.get_function(FunctionName=f"{fn}:prod")["Configuration"]
    assert through_alias["FunctionArn"] == f"{arn}:prod" and through_alias["Version"] == "2"
    lam.delete_alias(FunctionName=fn, Name="prod")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_alias(FunctionName=fn, Name="prod")
    lam.delete_function(FunctionName=fn, Qualifier="1")
    versions = lam.list_versions_by_function(FunctionName=fn)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "2"]


def test_reserved_concurrency_and_account_settings(lam: Any, fn: str) -> None:
    settings = lam.get_account_settings()
    limit = settings["AccountLimit"]["ConcurrentExecutions"]
    unreserved = settings["AccountLimit"]["UnreservedConcurrentExecutions"]
    assert limit == 100 and settings["AccountUsage"]["FunctionCount"] >= 1
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=unreserved - 9)
    assert aws_error(info) == (
        400,
        "InvalidParameterValueException",
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [10].",
    )
    put = lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=5)
    assert put["ReservedConcurrentExecutions"] == 5
    assert lam.get_function_concurrency(FunctionName=fn)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function(FunctionName=fn)["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    after = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    assert after == unreserved - 5
    lam.delete_function_concurrency(FunctionName=fn)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=fn)


def test_provisioned_concurrency_configs(lam: Any, fn: str, account: str) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert aws_error(info)[2] == (
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    )
    lam.publish_version(FunctionName=fn)
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    put = lam.put_provisioned_concurrency_config(
        FunctionName=fn, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["Status"] == "IN_PROGRESS" and put["RequestedProvisionedConcurrentExecutions"] == 1
    got = lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="live")
    assert got["RequestedProvisionedConcurrentExecutions"] == 1
    assert got["Status"] in ("IN_PROGRESS", "READY", "FAILED")
    listed = lam.list_provisioned_concurrency_configs(FunctionName=fn)
    arns = [c["FunctionArn"] for c in listed["ProvisionedConcurrencyConfigs"]]
    assert arns == [f"arn:aws:lambda:us-east-1:{account}:function:{fn}:live"]
    lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="live")
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="live")


def test_function_url_configs(lam: Any, fn: str, server: RunningServer) -> None:
    created = lam.create_function_url_config(
        FunctionName=fn,
        AuthType="NONE",
        Cors={"AllowOrigins": ["*"], "AllowMethods": ["GET", "POST"], "MaxAge": 60},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionUrl"] == f"{server.url}/fn/{fn}/"
    assert created["AuthType"] == "NONE" and created["Cors"]["MaxAge"] == 60
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_function_url_config(FunctionName=fn, AuthType="NONE")
    got = lam.get_function_url_config(FunctionName=fn)
    assert got["FunctionUrl"] == created["FunctionUrl"] and "LastModifiedTime" in got
    updated = lam.update_function_url_config(FunctionName=fn, AuthType="AWS_IAM")
    assert updated["AuthType"] == "AWS_IAM"
    listed = lam.list_function_url_configs(FunctionName=fn)["FunctionUrlConfigs"]
    assert [c["AuthType"] for c in listed] == ["AWS_IAM"]
    lam.delete_function_url_config(FunctionName=fn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=fn)


def test_permissions(lam: Any, fn: str, account: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:{account}:function:{fn}"
    added = lam.add_permission(
        FunctionName=fn,
        StatementId="url-anyone",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "url-anyone",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunctionUrl",
        "Resource": arn,
        "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
    }
    lam.add_permission(
        FunctionName=fn,
        StatementId="s3",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::dog-images",
        SourceAccount=account,
    )
    policy = lam.get_policy(FunctionName=fn)
    statements = json.loads(policy["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["url-anyone", "s3"]
    assert policy["RevisionId"] == lam.get_function(FunctionName=fn)["Configuration"]["RevisionId"]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.add_permission(
            FunctionName=fn, StatementId="s3", Action="lambda:InvokeFunction", Principal="*"
        )
    lam.remove_permission(FunctionName=fn, StatementId="url-anyone")
    lam.remove_permission(FunctionName=fn, StatementId="s3")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=fn)


def test_event_invoke_configs(lam: Any, fn: str, account: str) -> None:
    put = lam.put_function_event_invoke_config(
        FunctionName=fn, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=120
    )
    assert put["FunctionArn"] == f"arn:aws:lambda:us-east-1:{account}:function:{fn}:$LATEST"
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 120)
    assert put["LastModified"].year >= 2024  # a timestamp, parsed by boto3
    updated = lam.update_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0)
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (0, 120)
    assert lam.get_function_event_invoke_config(FunctionName=fn)["MaximumRetryAttempts"] == 0
    listed = lam.list_function_event_invoke_configs(FunctionName=fn)
    assert len(listed["FunctionEventInvokeConfigs"]) == 1
    lam.delete_function_event_invoke_config(FunctionName=fn)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=fn)


def test_delete_cascades(lam: Any, fn: str, server: RunningServer) -> None:
    lam.publish_version(FunctionName=fn)
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    lam.create_function_url_config(FunctionName=fn, AuthType="AWS_IAM")
    lam.add_permission(
        FunctionName=fn, StatementId="x", Action="lambda:InvokeFunction", Principal="*"
    )
    lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0)
    delete = lam.delete_function(FunctionName=fn)
    assert delete["ResponseMetadata"]["HTTPStatusCode"] == 204
    gone: list[tuple[str, dict[str, str]]] = [
        ("get_function", {}),
        ("get_alias", {"Name": "live"}),
        ("get_function_url_config", {}),
        ("get_policy", {}),
        ("get_function_event_invoke_config", {}),
    ]
    for operation, extra in gone:
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            getattr(lam, operation)(FunctionName=fn, **extra)
    assert not (server.home / "artifacts" / "functions" / fn).exists()


def test_kennel_reads_logs_events_and_metrics(server: RunningServer, fn: str) -> None:
    with server.client() as api:
        assert api.get(f"/api/v1/functions/{fn}/logs") == {"events": []}
        assert api.get(f"/api/v1/functions/{fn}/events", params={"status": "failed"}) == {
            "events": []
        }
        metrics = api.get(f"/api/v1/functions/{fn}/metrics")
        assert metrics["function"] == fn and metrics["metrics"] == {}
        with pytest.raises(KennelError) as missing:
            api.get("/api/v1/functions/no-such-function/logs")
        assert (missing.value.status, missing.value.aws_code) == (404, "ResourceNotFoundException")


def test_passing_a_role_takes_pass_role_and_lambda_trust(
    server: RunningServer, iam_client: Any, role: str
) -> None:
    iam = iam_client
    user = unique("deployer")
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="lambda-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="us-east-1",
    )
    lam = session.client("lambda", endpoint_url=server.url, config=no_retries())
    name = unique("fn")

    def create(with_role: str) -> Any:
        return lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=with_role,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
        )

    with pytest.raises(ClientError) as denied:
        create(role)
    status, code, message = aws_error(denied)
    assert (status, code) == (403, "AccessDeniedException")
    assert f"iam:PassRole on resource: {role}" in message

    iam.put_user_policy(
        UserName=user,
        PolicyName="pass-to-lambda",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:PassRole",
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}
                        },
                    }
                ],
            }
        ),
    )
    sagemaker_role = iam.create_role(
        RoleName=unique("sm-role"),
        AssumeRolePolicyDocument=_trust("sagemaker.amazonaws.com"),
    )["Role"]["Arn"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as untrusted:
        create(sagemaker_role)
    assert (
        aws_error(untrusted)[2] == "The role defined for the function cannot be assumed by Lambda."
    )
    assert create(role)["FunctionName"] == name
    lam.delete_function(FunctionName=name)
