"""The account's concurrency limit and idle reaping, on a server of its own with a small
limit (3 concurrent executions, 1 of which reservations must leave) and a 1 s idle time."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests._server import RunningServer, start_server, stop_server
from tests.integration.functions.conftest import (
    BASIC_EXECUTION,
    code_zip,
    make_role,
    no_retries,
    payload_of,
)

SLEEPY = """
import os, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return os.getpid()
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        Path(tmp_path_factory.mktemp("kennel-small")),
        KENNEL_FUNCTION_CONCURRENCY_LIMIT="3",
        KENNEL_FUNCTION_UNRESERVED_MIN="1",
        KENNEL_FUNCTION_IDLE_SECONDS="1",
    )
    yield running
    assert stop_server(running) == 0


@pytest.fixture(scope="module")
def lam(small: RunningServer) -> Any:
    session = small.session
    iam = session.client("iam", endpoint_url=small.url, region_name="us-east-1")
    role = make_role(iam, "small-basic", BASIC_EXECUTION)
    client = session.client(
        "lambda", endpoint_url=small.url, region_name="us-east-1", config=no_retries()
    )
    for name in ("reserved-one", "shared"):
        client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": code_zip({"app.py": SLEEPY})},
        )
    return client


def _call(client: Any, name: str, sleep: float) -> str:
    try:
        client.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}))
    except ClientError as error:
        return str(error.response.get("Reason"))
    return "ok"


def test_unreserved_functions_share_what_reservations_leave_of_the_account_limit(
    lam: Any,
) -> None:
    with pytest.raises(ClientError) as caught:
        lam.put_function_concurrency(FunctionName="reserved-one", ReservedConcurrentExecutions=3)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    lam.put_function_concurrency(FunctionName="reserved-one", ReservedConcurrentExecutions=1)
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 3
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 2
    # The reserved function's one slot is its own: it runs while the shared pool is full.
    with ThreadPoolExecutor(5) as pool:
        shared = [pool.submit(_call, lam, "shared", 1.5) for _ in range(4)]
        time.sleep(0.5)
        reserved = pool.submit(_call, lam, "reserved-one", 0)
        results = sorted(f.result() for f in shared)
    assert results == ["ConcurrentInvocationLimitExceeded"] * 2 + ["ok"] * 2
    assert reserved.result() == "ok"


def test_an_idle_environment_is_reaped_and_the_next_call_starts_cold(lam: Any) -> None:
    first = lam.invoke(FunctionName="shared", Payload=b"{}", LogType="Tail")
    warm = lam.invoke(FunctionName="shared", Payload=b"{}", LogType="Tail")
    assert payload_of(warm) == payload_of(first)
    assert "Init Duration" not in base64.b64decode(warm["LogResult"]).decode()
    time.sleep(2.5)
    cold = lam.invoke(FunctionName="shared", Payload=b"{}", LogType="Tail")
    assert "Init Duration" in base64.b64decode(cold["LogResult"]).decode()
