"""The stack's role and function handlers against a real server, without the engine:
plan, apply, plan again (nothing to do), change, delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config
from tests._server import RunningServer

from kennel._errors import NotFoundError, ValidationError
from kennel.iam._policy import MalformedPolicyDocumentError
from kennel.stack._functions import FunctionHandler
from kennel.stack._iam import RoleHandler
from kennel.stack._schema import FunctionBlock, RoleBlock
from kennel.stack._types import UNKNOWN, Address, StackContext

pytestmark = pytest.mark.timeout(300)

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
HANDLER = """
import json, os

def lambda_handler(event, context):
    request = json.loads(event.get("body") or "{{}}")
    return {{"statusCode": 200, "headers": {{"Content-Type": "application/json"}},
            "body": json.dumps({{"answer": {answer}, "greeting": os.environ["GREETING"],
                                "echo": request, "version": context.function_version}})}}
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ctx(server: RunningServer, tmp_path: Path) -> Iterator[StackContext]:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=120)

    def aws(service: str) -> Any:
        return server.session.client(
            service, endpoint_url=server.url, region_name="us-east-1", config=config
        )

    with server.client() as api:
        yield StackContext(api=api, base=tmp_path, stack="test", aws=aws, timeout_seconds=120.0)


def invoke_only(endpoint_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": endpoint_arn}
        ],
    }


def account_of(ctx: StackContext) -> str:
    return str(ctx.aws("sts").get_caller_identity()["Account"])


def test_a_role_is_created_left_alone_updated_and_deleted(ctx: StackContext) -> None:
    handler = RoleHandler()
    iam = ctx.aws("iam")
    address = Address("roles", unique("stack-role"))
    endpoint = f"arn:aws:sagemaker:us-east-1:{account_of(ctx)}:endpoint/classifier"
    block = RoleBlock(policies={"invoke": invoke_only(endpoint)})
    spec = block.model_dump(mode="json")

    step = handler.plan(ctx, address, spec)
    assert (step.action, step.physical, step.reason) == ("create", address.name, "does not exist")
    made = handler.apply(ctx, step)
    assert made["name"] == address.name
    assert made["arn"].endswith(f":role/{address.name}")
    assert handler.attributes(ctx, address.name) == made
    trust = iam.get_role(RoleName=address.name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}

    again = handler.plan(ctx, address, spec)
    assert (again.action, again.reason) == ("none", "unchanged")

    # A changed policy, a new one, a managed one and another trusted service.
    other = f"{endpoint}-v2"
    changed = RoleBlock(
        assumed_by=["lambda.amazonaws.com", "sagemaker.amazonaws.com"],
        policies={"invoke": invoke_only(other), "also": invoke_only(endpoint)},
        managed_policies=[BASIC_EXECUTION],
    ).model_dump(mode="json")
    step = handler.plan(ctx, address, changed)
    assert step.action == "update"
    assert step.reason == (
        "trust lambda.amazonaws.com -> lambda.amazonaws.com, sagemaker.amazonaws.com; "
        f"policy also added; policy invoke changed; attach {BASIC_EXECUTION}"
    )
    # Planning wrote nothing.
    assert iam.list_role_policies(RoleName=address.name)["PolicyNames"] == ["invoke"]
    handler.apply(ctx, step)
    document = iam.get_role_policy(RoleName=address.name, PolicyName="invoke")["PolicyDocument"]
    assert document == invoke_only(other)
    attached = iam.list_attached_role_policies(RoleName=address.name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [BASIC_EXECUTION]
    assert handler.plan(ctx, address, changed).action == "none"

    # Back to the first block: the extra policy goes, the managed one is detached.
    step = handler.plan(ctx, address, spec)
    assert "policy also removed" in step.reason and f"detach {BASIC_EXECUTION}" in step.reason
    handler.apply(ctx, step)
    assert iam.list_role_policies(RoleName=address.name)["PolicyNames"] == ["invoke"]
    assert iam.list_attached_role_policies(RoleName=address.name)["AttachedPolicies"] == []
    assert handler.plan(ctx, address, spec).action == "none"

    handler.delete(ctx, address.name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=address.name)
    handler.delete(ctx, address.name)  # gone already is fine


def test_bad_policies_fail_at_plan_with_iams_message_and_write_nothing(
    ctx: StackContext,
) -> None:
    handler = RoleHandler()
    address = Address("roles", unique("stack-bad"))
    no_resource = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint"}],
    }
    spec = RoleBlock(policies={"invoke": no_resource}).model_dump(mode="json")
    with pytest.raises(MalformedPolicyDocumentError) as caught:
        handler.plan(ctx, address, spec)
    assert str(caught.value) == (
        f"{address} policy 'invoke': Policy statement must contain resources."
    )
    bad_action = {
        **no_resource,
        "Statement": [{**no_resource["Statement"][0], "Resource": "*", "Action": "InvokeEndpoint"}],
    }
    spec = RoleBlock(policies={"invoke": bad_action}).model_dump(mode="json")
    with pytest.raises(MalformedPolicyDocumentError, match="prefaced by a vendor"):
        handler.plan(ctx, address, spec)
    spec = RoleBlock(managed_policies=["arn:aws:iam::aws:policy/NoSuchPolicy"]).model_dump(
        mode="json"
    )
    with pytest.raises(NotFoundError, match="NoSuchPolicy, which does not exist"):
        handler.plan(ctx, address, spec)
    spec = RoleBlock(policies={"bad name": invoke_only("*")}).model_dump(mode="json")
    with pytest.raises(ValidationError, match="policy name 'bad name' is not valid"):
        handler.plan(ctx, address, spec)
    with pytest.raises(ctx.aws("iam").exceptions.NoSuchEntityException):
        ctx.aws("iam").get_role(RoleName=address.name)

    # `kennel plan` before the endpoint exists: its ARN is not known yet, and that is fine.
    pending = RoleBlock(
        policies={"invoke": invoke_only(UNKNOWN.format("endpoints.classifier.arn"))},
        managed_policies=[UNKNOWN.format("roles.other.arn")],
    ).model_dump(mode="json")
    assert handler.plan(ctx, address, pending).action == "create"


def test_a_least_privilege_function_with_concurrency_and_a_public_url(
    ctx: StackContext, server: RunningServer
) -> None:
    progress: list[str] = []
    ctx.progress = progress.append
    roles, functions = RoleHandler(), FunctionHandler()
    lam = ctx.aws("lambda")
    role = Address("roles", unique("stack-fn-role"))
    fn = Address("functions", unique("stack-fn"))
    endpoint = f"arn:aws:sagemaker:us-east-1:{account_of(ctx)}:endpoint/classifier"
    role_spec = RoleBlock(policies={"invoke": invoke_only(endpoint)}).model_dump(mode="json")
    code = ctx.base / "code"
    code.mkdir()
    (code / "lambda_function.py").write_text(HANDLER.format(answer=42))
    block = FunctionBlock(
        code="code",
        role=role.name,
        environment={"GREETING": "hello"},
        reserved_concurrency=5,
        provisioned_concurrency=2,
        url={"auth_type": "NONE"},  # type: ignore[arg-type]
    )
    spec = block.model_dump(mode="json")
    assert functions.references(block) == {role}
    assert functions.references({**spec, "role": "arn:aws:iam::123456789012:role/x"}) == set()

    try:
        # The role does not exist yet: the plan still works (a stack plans before it applies).
        step = functions.plan(ctx, fn, spec)
        assert (step.action, step.reason) == ("create", "does not exist")
        role_arn = roles.apply(ctx, roles.plan(ctx, role, role_spec))["arn"]

        made = functions.apply(ctx, functions.plan(ctx, fn, spec))
        assert made["name"] == fn.name and made["alias"] == "live" and made["version"] == "1"
        assert made["arn"].endswith(f":function:{fn.name}")
        assert made["alias_arn"] == f"{made['arn']}:live"
        assert made["url"] == f"{server.url}/fn/{fn.name}:live/"
        config = lam.get_function_configuration(FunctionName=fn.name)
        assert config["Role"] == role_arn
        assert config["Environment"]["Variables"] == {"GREETING": "hello"}
        reserved = lam.get_function_concurrency(FunctionName=fn.name)
        assert reserved["ReservedConcurrentExecutions"] == 5
        provisioned = lam.get_provisioned_concurrency_config(FunctionName=fn.name, Qualifier="live")
        assert (provisioned["Status"], provisioned["AllocatedProvisionedConcurrentExecutions"]) == (
            "READY",
            2,
        )

        answer = httpx.post(made["url"], json={"url": "https://example.com/dog.jpg"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "answer": 42,
            "greeting": "hello",
            "echo": {"url": "https://example.com/dog.jpg"},
            "version": "1",
        }

        again = functions.plan(ctx, fn, spec)
        assert (again.action, again.reason) == ("none", "unchanged")
        assert functions.attributes(ctx, fn.name) == made
        assert f"function {fn.name}:live: provisioned concurrency 2/2 READY" in progress

        # New code: an update, a new version behind the same alias and URL.
        (code / "lambda_function.py").write_text(HANDLER.format(answer=43))
        step = functions.plan(ctx, fn, spec)
        assert (step.action, step.reason) == ("update", "code changed")
        assert step.fingerprint != again.fingerprint
        updated = functions.apply(ctx, step)
        assert updated["version"] == "2" and updated["url"] == made["url"]
        assert httpx.post(made["url"], json={}, timeout=60).json()["answer"] == 43
        assert functions.plan(ctx, fn, spec).action == "none"

        # Signed calls only: the URL's auth type and its public statement change together.
        private = {**spec, "url": {"auth_type": "AWS_IAM"}, "reserved_concurrency": 3}
        step = functions.plan(ctx, fn, private)
        assert step.reason == (
            "reserved_concurrency 5 -> 3; url NONE -> AWS_IAM; public access to the url revoked"
        )
        functions.apply(ctx, step)
        assert httpx.post(made["url"], json={}, timeout=60).status_code == 403
        assert functions.plan(ctx, fn, private).action == "none"
    finally:
        functions.delete(ctx, fn.name)
        roles.delete(ctx, role.name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=fn.name)
    functions.delete(ctx, fn.name)  # gone already is fine
