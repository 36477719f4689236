"""Function test fixtures: real boto3 ``lambda`` and ``iam`` clients, an execution role,
functions made from in-memory zips and removed afterwards."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from tests._server import RunningServer

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def no_retries(**extra: Any) -> Config:
    return Config(
        retries={"total_max_attempts": 1}, read_timeout=120, max_pool_connections=64, **extra
    )


@pytest.fixture(scope="session")
def lambda_client(server: RunningServer) -> Any:
    return server.session.client(
        "lambda", endpoint_url=server.url, region_name="us-east-1", config=no_retries()
    )


@pytest.fixture(scope="session")
def iam_client(server: RunningServer) -> Any:
    return server.session.client(
        "iam", endpoint_url=server.url, region_name="us-east-1", config=no_retries()
    )


def make_role(iam: Any, name: str, *policies: str) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"][
        "Arn"
    ]
    for policy in policies:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    return str(arn)


@pytest.fixture(scope="session")
def execution_role(iam_client: Any) -> str:
    return make_role(iam_client, unique("fn-basic"), BASIC_EXECUTION)


Create = Callable[..., str]


@pytest.fixture
def create_function(lambda_client: Any, execution_role: str) -> Iterator[Create]:
    """create_function(source, handler="app.handler", **config) -> name; deleted afterwards."""
    made: list[str] = []

    def create(
        source: str | dict[str, str],
        *,
        handler: str = "app.handler",
        name: str | None = None,
        **config: Any,
    ) -> str:
        files = {"app.py": source} if isinstance(source, str) else source
        name = name or unique("fn")
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=config.pop("Role", execution_role),
            Handler=handler,
            Code={"ZipFile": code_zip(files)},
            **config,
        )
        made.append(name)
        wait_active(lambda_client, name)
        return name

    yield create
    for name in made:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)


def wait_active(client: Any, name: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    config: dict[str, Any] = {}
    while time.monotonic() < deadline:
        config = client.get_function_configuration(FunctionName=name)
        if config.get("State", "Active") == "Active" and config.get(
            "LastUpdateStatus", "Successful"
        ) in ("Successful",):
            return config
        time.sleep(0.1)
    raise AssertionError(f"function {name} not Active: {config}")


def payload_of(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())
