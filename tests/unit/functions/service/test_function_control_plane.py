"""FunctionService's control plane: Lambda's shapes, preconditions, limits and cascades."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from tests.unit.functions.service._helpers import ACCOUNT, code, zip_of

from kennel._errors import KennelError, ValidationError
from kennel.functions._errors import (
    InvalidParameterValueError,
    PreconditionFailedError,
    ProvisionedConcurrencyConfigNotFoundError,
    RequestTooLargeError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from kennel.functions._service import FunctionService
from kennel.functions._spec import (
    ConcurrencySpec,
    CreateAliasSpec,
    CreateFunctionSpec,
    PermissionSpec,
    ProvisionedConcurrencySpec,
    PublishVersionSpec,
    UpdateAliasSpec,
    UpdateCodeSpec,
    UpdateConfigurationSpec,
    parse,
)
from kennel.iam._service import IamService
from kennel.store import ArtifactStore, LambdaAlias, LambdaVersion

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn"
AWS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def _config(**fields: Any) -> UpdateConfigurationSpec:
    return UpdateConfigurationSpec.model_validate(fields)


def _permission(**fields: Any) -> PermissionSpec:
    return PermissionSpec.model_validate(
        {"StatementId": "s1", "Action": "lambda:InvokeFunction", **fields}
    )


def test_create_answers_a_function_configuration(service: FunctionService, make: Any) -> None:
    shape = make("fn", Description="d", Environment={"Variables": {"STAGE": "prod"}})
    package = zip_of({"app.py": "def handler(event, context):\n    return {'echo': event}\n"})
    assert shape["FunctionName"] == "fn" and shape["FunctionArn"] == ARN
    assert shape["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    assert shape["CodeSize"] == len(package)
    assert (shape["Version"], shape["State"], shape["LastUpdateStatus"]) == (
        "$LATEST",
        "Active",
        "Successful",
    )
    assert (shape["Timeout"], shape["MemorySize"], shape["Runtime"]) == (3, 128, "python3.11")
    assert shape["Environment"] == {"Variables": {"STAGE": "prod"}}
    assert shape["PackageType"] == "Zip" and shape["Architectures"] == ["x86_64"]
    assert AWS_TIME.match(shape["LastModified"])
    assert service.get_function("fn")["Configuration"] == shape
    assert service.get_function("fn")["Code"]["Location"].endswith(".zip")


def test_a_name_is_taken_once(make: Any) -> None:
    make("fn")
    with pytest.raises(ResourceConflictError, match="Function already exist: fn"):
        make("fn")


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"Runtime": "python3.12"}, InvalidParameterValueError, "Value python3.12 at 'runtime'"),
        ({"Handler": None}, InvalidParameterValueError, "Runtime and Handler are mandatory"),
        (
            {"Environment": {"Variables": {"AWS_REGION": "x"}}},
            InvalidParameterValueError,
            "Reserved keys used in this request: AWS_REGION",
        ),
        (
            {"Environment": {"Variables": {"BIG": "x" * 5000}}},
            InvalidParameterValueError,
            "exceeded the 4KB limit",
        ),
        ({"Code": {"ZipFile": "bm90IGEgemlw"}}, InvalidParameterValueError, "Could not unzip"),
        ({"Code": {"S3Bucket": "b", "S3Key": "k"}}, InvalidParameterValueError, "ZipFile"),
        ({"Role": "not-a-role"}, ValidationError, "at 'role' failed to satisfy constraint"),
        ({"Layers": ["arn:l:1"]}, InvalidParameterValueError, "Layers"),
    ],
)
def test_create_refuses_what_lambda_refuses(
    make: Any, fields: dict[str, Any], error: type[KennelError], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        make("fn", **fields)


def test_a_package_over_the_limit_is_too_large(make: Any) -> None:
    import os

    big = zip_of({"app.py": "x", "blob.bin": os.urandom(2**20 + 10).hex()})
    with pytest.raises(RequestTooLargeError) as info:
        make("fn", Code={"ZipFile": base64.b64encode(big).decode()})
    assert info.value.status == 413


def test_a_package_without_the_handler_is_accepted_like_on_aws(make: Any) -> None:
    assert make("fn", Handler="missing.handler")["Handler"] == "missing.handler"


def test_a_role_lambda_cannot_assume_is_refused(make: Any, iam: IamService) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    other = iam.create_role("sm-role", trust)["Role"]["Arn"]
    for role in (other, f"arn:aws:iam::{ACCOUNT}:role/nobody"):
        with pytest.raises(InvalidParameterValueError) as info:
            make("fn", Role=role)
        assert (
            info.value.message == "The role defined for the function cannot be assumed by Lambda."
        )


def test_updates_check_the_revision_and_change_it(service: FunctionService, make: Any) -> None:
    revision = make("fn")["RevisionId"]
    with pytest.raises(PreconditionFailedError) as info:
        service.update_function_configuration("fn", _config(Timeout=5, RevisionId="stale"))
    assert info.value.status == 412
    assert info.value.message.startswith("The Revision Id provided does not match")
    updated = service.update_function_configuration("fn", _config(Timeout=5, RevisionId=revision))
    assert updated["Timeout"] == 5 and updated["RevisionId"] != revision
    assert updated["LastUpdateStatus"] == "Successful"
    new_code = code("def handler(e, c):\n    return 2\n")
    changed = service.update_function_code(
        "fn", UpdateCodeSpec.model_validate({**new_code, "RevisionId": updated["RevisionId"]})
    )
    assert changed["CodeSha256"] != updated["CodeSha256"]
    with pytest.raises(PreconditionFailedError):
        service.update_function_code(
            "fn", UpdateCodeSpec.model_validate({**new_code, "RevisionId": revision})
        )


def test_environment_can_be_cleared(service: FunctionService, make: Any) -> None:
    make("fn", Environment={"Variables": {"STAGE": "1"}})
    cleared = service.update_function_configuration("fn", _config(Environment={}))
    assert "Environment" not in cleared
    assert service.resolve("fn").environment == {}


def test_publishing_unchanged_code_returns_the_same_version(
    service: FunctionService, make: Any
) -> None:
    make("fn")
    first = service.publish_version("fn", PublishVersionSpec(Description="one"))
    assert (first["Version"], first["FunctionArn"], first["Description"]) == (
        "1",
        f"{ARN}:1",
        "one",
    )
    assert "LastUpdateStatus" not in first
    assert service.publish_version("fn", PublishVersionSpec())["Version"] == "1"
    service.update_function_configuration("fn", _config(MemorySize=256))
    second = service.publish_version("fn", PublishVersionSpec())
    assert second["Version"] == "2" and second["MemorySize"] == 256
    assert service.get_function_configuration("fn", "1")["MemorySize"] == 128  # immutable
    listed = service.list_versions("fn")["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
    assert listed[0]["FunctionArn"] == f"{ARN}:$LATEST"
    assert "State" not in listed[0]


def test_publish_checks_the_code_sha256(service: FunctionService, make: Any) -> None:
    sha = make("fn")["CodeSha256"]
    with pytest.raises(InvalidParameterValueError, match=r"CodeSHA256 \(abc\) is different"):
        service.publish_version("fn", PublishVersionSpec(CodeSha256="abc"))
    assert service.publish_version("fn", PublishVersionSpec(CodeSha256=sha))["Version"] == "1"


def test_create_and_update_code_can_publish(service: FunctionService, make: Any) -> None:
    created = make("fn", Publish=True)
    assert created["Version"] == "1" and created["FunctionArn"] == ARN
    published = service.update_function_code(
        "fn", UpdateCodeSpec.model_validate({**code("x = 1\n"), "Publish": True})
    )
    assert published["Version"] == "2" and published["FunctionArn"] == f"{ARN}:2"


def test_aliases(service: FunctionService, make: Any) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    alias = service.create_alias("fn", CreateAliasSpec(Name="prod", FunctionVersion="1"))
    assert alias["AliasArn"] == f"{ARN}:prod" and alias["FunctionVersion"] == "1"
    with pytest.raises(ResourceConflictError, match=f"Alias already exists: {ARN}:prod"):
        service.create_alias("fn", CreateAliasSpec(Name="prod", FunctionVersion="1"))
    with pytest.raises(ResourceNotFoundError, match=f"Function not found: {ARN}:9"):
        service.create_alias("fn", CreateAliasSpec(Name="beta", FunctionVersion="9"))
    with pytest.raises(ValidationError):
        service.create_alias("fn", CreateAliasSpec(Name="12", FunctionVersion="1"))
    with pytest.raises(PreconditionFailedError):
        service.update_alias("fn", "prod", UpdateAliasSpec(Description="x", RevisionId="old"))
    updated = service.update_alias(
        "fn", "prod", UpdateAliasSpec(FunctionVersion="$LATEST", RevisionId=alias["RevisionId"])
    )
    assert updated["FunctionVersion"] == "$LATEST" and updated["RevisionId"] != alias["RevisionId"]
    assert [a["Name"] for a in service.list_aliases("fn")["Aliases"]] == ["prod"]
    assert service.list_aliases("fn", "1")["Aliases"] == []
    config = service.get_function_configuration("fn", "prod")
    assert config["FunctionArn"] == f"{ARN}:prod" and config["Version"] == "$LATEST"
    service.delete_alias("fn", "prod")
    with pytest.raises(ResourceNotFoundError, match="Cannot find alias arn"):
        service.get_alias("fn", "prod")


def test_reserved_concurrency_keeps_the_unreserved_minimum(
    service: FunctionService, make: Any
) -> None:
    make("a")
    make("b")
    put = service.put_function_concurrency
    assert put("a", ConcurrencySpec(ReservedConcurrentExecutions=80)) == {
        "ReservedConcurrentExecutions": 80
    }
    with pytest.raises(InvalidParameterValueError) as info:
        put("b", ConcurrencySpec(ReservedConcurrentExecutions=11))
    assert info.value.message == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [10]."
    )
    assert put("b", ConcurrencySpec(ReservedConcurrentExecutions=10))
    assert put("a", ConcurrencySpec(ReservedConcurrentExecutions=80))  # replacing its own
    assert service.get_function_concurrency("a") == {"ReservedConcurrentExecutions": 80}
    settings = service.account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 100
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 10
    assert settings["AccountUsage"]["FunctionCount"] == 2
    service.delete_function_concurrency("a")
    assert service.get_function_concurrency("a") == {}
    assert service.get_function("b")["Concurrency"] == {"ReservedConcurrentExecutions": 10}
    with pytest.raises(InvalidParameterValueError, match="permitted on Lambda functions only"):
        put("a:1", ConcurrencySpec(ReservedConcurrentExecutions=1))


def test_provisioned_concurrency(service: FunctionService, make: Any) -> None:
    make("fn")
    spec = ProvisionedConcurrencySpec(ProvisionedConcurrentExecutions=2)
    with pytest.raises(InvalidParameterValueError) as info:
        service.put_provisioned_concurrency("fn", "$LATEST", spec)
    assert info.value.message == (
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    )
    with pytest.raises(ResourceNotFoundError):
        service.put_provisioned_concurrency("fn", "1", spec)
    service.publish_version("fn", PublishVersionSpec())
    answer = service.put_provisioned_concurrency("fn", "1", spec)
    assert answer["Status"] == "IN_PROGRESS"
    assert answer["RequestedProvisionedConcurrentExecutions"] == 2
    assert answer["AllocatedProvisionedConcurrentExecutions"] == 0
    listed = service.list_provisioned_concurrency("fn")["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{ARN}:1"]
    service.create_alias("fn", CreateAliasSpec(Name="live", FunctionVersion="1"))
    with pytest.raises(ResourceConflictError, match="already Provisioned version"):
        service.put_provisioned_concurrency("fn", "live", spec)
    service.put_function_concurrency("fn", ConcurrencySpec(ReservedConcurrentExecutions=5))
    with pytest.raises(InvalidParameterValueError, match="should not be greater than the reserved"):
        service.put_provisioned_concurrency(
            "fn", "1", ProvisionedConcurrencySpec(ProvisionedConcurrentExecutions=6)
        )
    with pytest.raises(InvalidParameterValueError, match="should not be lower than"):
        service.put_function_concurrency("fn", ConcurrencySpec(ReservedConcurrentExecutions=1))
    service.delete_provisioned_concurrency("fn", "1")
    with pytest.raises(ProvisionedConcurrencyConfigNotFoundError):
        service.get_provisioned_concurrency("fn", "1")


def test_permissions_make_lambda_policy_statements(
    service: FunctionService, make: Any, iam: IamService
) -> None:
    revision = make("fn")["RevisionId"]
    added = service.add_permission(
        "fn",
        None,
        _permission(
            Principal="s3.amazonaws.com",
            SourceArn="arn:aws:s3:::bucket",
            SourceAccount=ACCOUNT,
            RevisionId=revision,
        ),
    )
    statement = json.loads(added["Statement"])
    assert statement == {
        "Sid": "s1",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": ARN,
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": ACCOUNT},
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"},
        },
    }
    service.add_permission(
        "fn",
        None,
        _permission(
            StatementId="url",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
        ),
    )
    service.add_permission("fn", None, _permission(StatementId="acct", Principal=ACCOUNT))
    policy = service.get_policy("fn")
    document = json.loads(policy["Policy"])
    assert document["Id"] == "default" and document["Version"] == "2012-10-17"
    assert [s["Principal"] for s in document["Statement"]] == [
        {"Service": "s3.amazonaws.com"},
        "*",
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    ]
    assert document["Statement"][1]["Condition"] == {
        "StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}
    }
    assert policy["RevisionId"] == service.get_function_configuration("fn")["RevisionId"]
    assert policy["RevisionId"] != revision
    assert iam.resource_policy(ARN) is not None  # what the authorizer consults
    with pytest.raises(ResourceConflictError, match=r"The statement id \(s1\) provided already"):
        service.add_permission("fn", None, _permission(Principal="*"))
    with pytest.raises(PreconditionFailedError):
        service.add_permission(
            "fn", None, _permission(StatementId="s9", Principal="*", RevisionId=revision)
        )
    with pytest.raises(InvalidParameterValueError, match="principal was invalid"):
        service.add_permission("fn", None, _permission(StatementId="bad", Principal="bob"))
    with pytest.raises(InvalidParameterValueError, match=r"adding policies for \$LATEST"):
        service.add_permission("fn", "$LATEST", _permission(Principal="*"))
    service.remove_permission("fn", "s1")
    with pytest.raises(ResourceNotFoundError, match="Statement s1 is not found"):
        service.remove_permission("fn", "s1")
    service.remove_permission("fn", "url")
    service.remove_permission("fn", "acct")
    assert iam.resource_policy(ARN) is None
    with pytest.raises(ResourceNotFoundError, match="The resource you requested does not exist."):
        service.get_policy("fn")


def test_qualified_permissions(service: FunctionService, make: Any) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    service.create_alias("fn", CreateAliasSpec(Name="live", FunctionVersion="1"))
    alias_revision = service.get_alias("fn", "live")["RevisionId"]
    added = service.add_permission("fn", "live", _permission(Principal="*"))
    assert json.loads(added["Statement"])["Resource"] == f"{ARN}:live"
    assert service.get_policy("fn", "live")["RevisionId"] != alias_revision
    with pytest.raises(ResourceNotFoundError):
        service.get_policy("fn")


def test_delete_function_cascades(
    service: FunctionService, make: Any, iam: IamService, artifacts: ArtifactStore
) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    service.create_alias("fn", CreateAliasSpec(Name="live", FunctionVersion="1"))
    service.add_permission("fn", None, _permission(Principal="*"))
    service.add_permission("fn", "live", _permission(Principal="*"))
    service.put_provisioned_concurrency(
        "fn", "live", ProvisionedConcurrencySpec(ProvisionedConcurrentExecutions=1)
    )
    assert artifacts.list("functions/fn")
    resolved = service.resolve("fn")
    service.delete_function("fn")
    with pytest.raises(ResourceNotFoundError):
        service.resolve("fn")
    assert resolved.name == "fn"
    assert iam.resource_policy(ARN) is None and iam.resource_policy(f"{ARN}:live") is None
    assert artifacts.list("functions/fn") == []
    assert service.provisioned_configs() == []
    with service.db.session() as session:
        assert session.query(LambdaVersion).count() == 0
        assert session.query(LambdaAlias).count() == 0
    with pytest.raises(ResourceNotFoundError) as info:
        service.delete_function("fn")
    assert info.value.message == f"Function not found: {ARN}"


def test_deleting_a_version(service: FunctionService, make: Any) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    service.create_alias("fn", CreateAliasSpec(Name="live", FunctionVersion="1"))
    with pytest.raises(InvalidParameterValueError, match="cannot be deleted without"):
        service.delete_function("fn", "$LATEST")
    with pytest.raises(ResourceConflictError, match=r"aliases reference it: \[live\]"):
        service.delete_function("fn", "1")
    service.delete_alias("fn", "live")
    service.delete_function("fn:1")
    assert [v["Version"] for v in service.list_versions("fn")["Versions"]] == ["$LATEST"]


def test_list_functions_pages(service: FunctionService, make: Any) -> None:
    for name in ("a", "b", "c"):
        make(name)
    first = service.list_functions(max_items=2)
    assert [f["FunctionName"] for f in first["Functions"]] == ["a", "b"]
    rest = service.list_functions(marker=first["NextMarker"], max_items=2)
    assert [f["FunctionName"] for f in rest["Functions"]] == ["c"] and "NextMarker" not in rest
    service.publish_version("a", PublishVersionSpec())
    every = service.list_functions("ALL")["Functions"]
    assert [f["FunctionArn"].rsplit(":", 2)[-2:] for f in every][:2] == [
        ["a", "$LATEST"],
        ["a", "1"],
    ]


def test_spec_errors_read_like_lambda_validation() -> None:
    with pytest.raises(ValidationError) as info:
        parse(CreateFunctionSpec, {"FunctionName": "f", "Role": "r", "Code": {}, "MemorySize": 64})
    assert info.value.message == (
        "1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: "
        "Member must have value greater than or equal to 128"
    )
    with pytest.raises(ValidationError, match="Value null at 'role'"):
        parse(CreateFunctionSpec, {"FunctionName": "f", "Code": {}})
