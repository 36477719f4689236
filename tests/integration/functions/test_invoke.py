"""Invoke through a real server with real boto3 ``lambda`` clients: every invocation type,
log tails, handler errors, timeouts, memory, throttling, async events, provisioned
concurrency, updates under load, and the function URL."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests.integration.functions.conftest import Create, code_zip, payload_of, wait_active

from kennel._client import KennelClient

ECHO = """
import json, os, time
COUNT = 0
print("init ran")

def handler(event, context):
    global COUNT
    COUNT += 1
    print("event", json.dumps(event))
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    return {
        "event": event,
        "count": COUNT,
        "pid": os.getpid(),
        "context": str(context),
        "request_id": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis(),
        "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "version": context.function_version,
        "arn": context.invoked_function_arn,
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("AWS_", "LAMBDA_", "_HANDLER", "MY_", "TZ"))},
    }
"""

FAILING = """
def handler(event, context):
    return 1 / event.get("divisor", 0)
"""


def invoke(client: Any, name: str, event: Any = None, **kwargs: Any) -> dict[str, Any]:
    body = json.dumps(event if event is not None else {}).encode()
    return client.invoke(FunctionName=name, Payload=body, **kwargs)


def test_request_response_runs_the_handler_with_lambdas_context_and_environment(
    lambda_client: Any, create_function: Create, execution_role: str
) -> None:
    name = create_function(
        ECHO, MemorySize=256, Timeout=7, Environment={"Variables": {"MY_SETTING": "on"}}
    )
    response = invoke(lambda_client, name, {"hello": "world"})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    body = payload_of(response)
    assert body["event"] == {"hello": "world"}
    assert body["count"] == 1
    env = body["env"]
    assert env["MY_SETTING"] == "on"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_SESSION_TOKEN"]
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"].startswith("http://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == env["AWS_ENDPOINT_URL"]
    assert body["arn"].endswith(f":function:{name}")
    assert body["context"].startswith(f"LambdaContext([aws_request_id={body['request_id']},")
    assert 0 < body["remaining"] <= 7000
    # Warm: module-level code ran once, the same environment answers the next call.
    again = payload_of(invoke(lambda_client, name, {"n": 2}))
    assert (again["count"], again["pid"]) == (2, body["pid"])
    assert again["request_id"] != body["request_id"]


def test_the_execution_roles_credentials_are_the_functions_identity(
    server: RunningServer, lambda_client: Any, create_function: Create, execution_role: str
) -> None:
    source = """
import boto3
sts = boto3.client("sts")

def handler(event, context):
    return sts.get_caller_identity()["Arn"]
"""
    name = create_function(source, Environment={"Variables": {"AWS_ENDPOINT_URL_STS": server.url}})
    arn = payload_of(invoke(lambda_client, name))
    role_name = execution_role.rsplit("/", 1)[1]
    assert arn.endswith(f":assumed-role/{role_name}/{name}")


def test_tail_returns_the_last_4_kb_of_the_invocations_log(
    lambda_client: Any, create_function: Create
) -> None:
    name = create_function(ECHO)
    response = invoke(lambda_client, name, {"x": 1}, LogType="Tail")
    text = base64.b64decode(response["LogResult"]).decode()
    lines = text.splitlines()
    request_id = payload_of(response)["request_id"]
    assert "init ran" in text
    assert f"START RequestId: {request_id} Version: $LATEST" in lines
    assert 'event {"x": 1}' in lines
    assert f"END RequestId: {request_id}" in lines
    report = [line for line in lines if line.startswith("REPORT")][0]
    fields = dict(part.split(": ", 1) for part in report.split("\t")[1:])
    assert fields["Duration"].endswith(" ms") and fields["Billed Duration"].endswith(" ms")
    assert fields["Memory Size"] == "128 MB"
    assert "Max Memory Used" in fields and "Init Duration" in fields
    warm = invoke(lambda_client, name, {"x": 2}, LogType="Tail")
    assert "Init Duration" not in base64.b64decode(warm["LogResult"]).decode()
    noisy = create_function("def handler(event, context):\n    print('x' * 9000)\n")
    tail = base64.b64decode(invoke(lambda_client, noisy, LogType="Tail")["LogResult"])
    assert len(tail) <= 4096 and tail.rstrip().splitlines()[-1].startswith(b"REPORT")


def test_handler_error_is_200_with_function_error_unhandled(
    lambda_client: Any, create_function: Create
) -> None:
    name = create_function(FAILING)
    response = invoke(lambda_client, name)
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = payload_of(response)
    assert error["errorType"] == "ZeroDivisionError"
    assert error["errorMessage"] == "division by zero"
    assert error["requestId"]
    assert any("app.py" in line for line in error["stackTrace"])
    assert payload_of(invoke(lambda_client, name, {"divisor": 4})) == 0.25


def test_import_errors_are_aws_runtime_errors(lambda_client: Any, create_function: Create) -> None:
    missing = create_function("import not_a_module\n")
    error = payload_of(invoke(lambda_client, missing))
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app'" in error["errorMessage"]
    assert error["requestId"]
    wrong = create_function("def other(event, context):\n    return 1\n")
    error = payload_of(invoke(lambda_client, wrong))
    assert error["errorType"] == "Runtime.HandlerNotFound"


def test_timeout_ends_the_invocation_and_replaces_the_environment(
    lambda_client: Any, create_function: Create
) -> None:
    name = create_function(ECHO, Timeout=1)
    first = payload_of(invoke(lambda_client, name))
    began = time.monotonic()
    response = invoke(lambda_client, name, {"sleep": 30}, LogType="Tail")
    took = time.monotonic() - began
    assert 0.9 < took < 5, took
    assert response["FunctionError"] == "Unhandled"
    error = payload_of(response)
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "sleep" in base64.b64decode(response["LogResult"]).decode()
    after = payload_of(invoke(lambda_client, name))
    assert after["pid"] != first["pid"] and after["count"] == 1


def test_memory_over_the_limit_is_a_runtime_exit_error(
    lambda_client: Any, create_function: Create
) -> None:
    source = """
def handler(event, context):
    block = bytearray(event["mb"] * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)
"""
    name = create_function(source, MemorySize=128)
    assert payload_of(invoke(lambda_client, name, {"mb": 16})) == 16 * 2**20
    response = invoke(lambda_client, name, {"mb": 400})
    assert response["FunctionError"] == "Unhandled"
    error = payload_of(response)
    assert error["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in error["errorMessage"]
    assert payload_of(invoke(lambda_client, name, {"mb": 1})) == 2**20


def test_event_is_202_and_dry_run_204(lambda_client: Any, create_function: Create) -> None:
    name = create_function(ECHO)
    assert invoke(lambda_client, name, InvocationType="DryRun")["StatusCode"] == 204
    response = invoke(lambda_client, name, {"async": True}, InvocationType="Event")
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""


def _events(api: KennelClient, name: str) -> list[dict[str, Any]]:
    return list(api.get(f"/api/v1/functions/{name}/events")["events"])


def _wait_events(
    api: KennelClient, name: str, count: int, done: tuple[str, ...], timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = _events(api, name)
        if len(events) == count and all(e["status"] in done for e in events):
            return events
        time.sleep(0.2)
    raise AssertionError(f"events of {name} did not finish: {events}")


def test_a_failing_async_event_is_retried_twice_then_kept_as_failed(
    api: KennelClient, lambda_client: Any, create_function: Create
) -> None:
    name = create_function(FAILING)
    invoke(lambda_client, name, {"tag": "a"}, InvocationType="Event")
    (event,) = _wait_events(api, name, 1, ("failed",))
    assert event["attempts"] == 3
    assert event["last_error"]["errorType"] == "ZeroDivisionError"
    deadline = time.monotonic() + 10
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(runs) < 3:
        logs = api.get(f"/api/v1/functions/{name}/logs")["events"]
        runs = [e for e in logs if e["request_id"] == event["id"]]
        time.sleep(0.2)
    assert len(runs) == 3  # the first attempt and two retries, each with its own log


def test_throttling_a_burst_beyond_reserved_concurrency_refuses_exactly_the_excess(
    lambda_client: Any, create_function: Create, api: KennelClient
) -> None:
    name = create_function(ECHO)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    invoke(lambda_client, name)  # one warm environment; the burst needs one more

    def call(_: int) -> tuple[str, Any]:
        try:
            return "ok", payload_of(invoke(lambda_client, name, {"sleep": 1.5}))
        except ClientError as error:
            return "throttled", error.response

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(call, range(6)))
    throttled = [r for kind, r in results if kind == "throttled"]
    assert len(throttled) == 4, results
    for error in throttled:
        assert error["Error"]["Code"] == "TooManyRequestsException"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert error["ResponseMetadata"]["HTTPHeaders"]["retry-after"]
    # Async events beyond the reservation are queued, not lost: all of them run.
    for number in range(8):
        invoke(lambda_client, name, {"n": number, "sleep": 0.2}, InvocationType="Event")
    events = _wait_events(api, name, 8, ("succeeded",))
    assert sorted(e["status"] for e in events) == ["succeeded"] * 8
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as caught:
        invoke(lambda_client, name)
    assert caught.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_provisioned_environments_serve_a_burst_without_cold_starts(
    lambda_client: Any, create_function: Create
) -> None:
    name = create_function(ECHO)
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lambda_client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=3
    )
    deadline = time.monotonic() + 60
    config: dict[str, Any] = {}
    while time.monotonic() < deadline:
        config = lambda_client.get_provisioned_concurrency_config(
            FunctionName=name, Qualifier="live"
        )
        if config["Status"] == "READY":
            break
        time.sleep(0.2)
    assert config["Status"] == "READY" and config["AllocatedProvisionedConcurrentExecutions"] == 3

    def call(_: int) -> tuple[dict[str, Any], str]:
        response = invoke(lambda_client, name, {"sleep": 0.5}, Qualifier="live", LogType="Tail")
        return payload_of(response), base64.b64decode(response["LogResult"]).decode()

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(call, range(3)))
    assert all("Init Duration" not in log for _, log in results)
    assert {body["init"] for body, _ in results} == {"provisioned-concurrency"}
    assert len({body["pid"] for body, _ in results}) == 3
    assert {body["version"] for body, _ in results} == {version}
    # Beyond the provisioned 3, invocations spill over to on-demand environments.
    with ThreadPoolExecutor(4) as pool:
        spill = list(pool.map(call, range(4)))
    assert sorted(body["init"] for body, _ in spill).count("on-demand") == 1


def test_updating_code_does_not_drop_an_invocation_in_flight(
    lambda_client: Any, create_function: Create
) -> None:
    name = create_function(
        "import time\ndef handler(e, c):\n    time.sleep(e.get('s', 0))\n    return 'old'\n"
    )
    results: list[Any] = []
    slow = threading.Thread(
        target=lambda: results.append(payload_of(invoke(lambda_client, name, {"s": 2})))
    )
    slow.start()
    time.sleep(0.5)
    lambda_client.update_function_code(
        FunctionName=name, ZipFile=code_zip({"app.py": "def handler(e, c):\n    return 'new'\n"})
    )
    wait_active(lambda_client, name)
    assert payload_of(invoke(lambda_client, name)) == "new"
    slow.join(30)
    assert results == ["old"]


def test_bad_requests_get_lambdas_errors(lambda_client: Any, create_function: Create) -> None:
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        invoke(lambda_client, "no-such-function")
    name = create_function(ECHO)
    with pytest.raises(lambda_client.exceptions.InvalidRequestContentException):
        lambda_client.invoke(FunctionName=name, Payload=b"{not json")
    with pytest.raises(lambda_client.exceptions.RequestTooLargeException):
        lambda_client.invoke(FunctionName=name, Payload=b'"' + b"x" * (6 * 2**20) + b'"')
    with pytest.raises(lambda_client.exceptions.RequestTooLargeException):
        lambda_client.invoke(
            FunctionName=name, InvocationType="Event", Payload=b'"' + b"x" * 2**20 + b'"'
        )
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        invoke(lambda_client, name, Qualifier="99")


def test_function_url_round_trip_in_payload_format_2(
    server: RunningServer, lambda_client: Any, create_function: Create
) -> None:
    source = """
import json
def handler(event, context):
    if event["rawPath"] == "/plain":
        return {"echo": event["queryStringParameters"]}
    return {
        "statusCode": 201,
        "headers": {
            "Content-Type": "application/json",
            "X-Seen": event["requestContext"]["http"]["method"],
        },
        "body": json.dumps(event),
    }
"""
    name = create_function(source)
    url = lambda_client.create_function_url_config(
        FunctionName=name,
        AuthType="NONE",
        Cors={"AllowOrigins": ["https://example.test"], "AllowMethods": ["POST"], "MaxAge": 60},
    )["FunctionUrl"]
    assert url.rstrip("/").endswith(f"/fn/{name}")
    # AuthType NONE still needs the resource policy to allow anyone, as on AWS.
    assert httpx.post(f"{url.rstrip('/')}/p").status_code == 403
    lambda_client.add_permission(
        FunctionName=name,
        StatementId="public-url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    response = httpx.post(
        f"{url.rstrip('/')}/some/path?a=1&b=2",
        content=b'{"k": "v"}',
        headers={"Content-Type": "application/json", "Origin": "https://example.test"},
    )
    assert response.status_code == 201
    assert response.headers["x-seen"] == "POST"
    assert response.headers["access-control-allow-origin"] == "https://example.test"
    event = response.json()
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path" and event["rawQueryString"] == "a=1&b=2"
    assert event["queryStringParameters"] == {"a": "1", "b": "2"}
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False
    assert event["headers"]["content-type"] == "application/json"
    assert event["requestContext"]["http"]["path"] == "/some/path"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    plain = httpx.get(f"{url.rstrip('/')}/plain?q=z")
    assert plain.status_code == 200 and plain.json() == {"echo": {"q": "z"}}
    assert plain.headers["content-type"] == "application/json"
    binary = httpx.post(
        f"{url.rstrip('/')}/bin", content=b"\x00\xff", headers={"Content-Type": "image/png"}
    ).json()
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x00\xff"
    preflight = httpx.options(
        url,
        headers={"Origin": "https://example.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-max-age"] == "60"


def test_function_url_with_aws_iam_needs_a_signature(
    server: RunningServer, lambda_client: Any, create_function: Create
) -> None:
    name = create_function("def handler(e, c):\n    return {'ok': True}\n")
    url = lambda_client.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")[
        "FunctionUrl"
    ]
    assert httpx.get(url).status_code == 403
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="GET", url=url)
    SigV4Auth(server.session.get_credentials(), "lambda", "us-east-1").add_auth(request)
    response = httpx.get(url, headers=dict(request.headers))
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_logs_and_metrics_of_a_function(
    api: KennelClient, lambda_client: Any, create_function: Create
) -> None:
    name = create_function(ECHO)
    request_ids = [
        payload_of(invoke(lambda_client, name, {"i": i}))["request_id"] for i in range(3)
    ]
    deadline = time.monotonic() + 10
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = api.get(f"/api/v1/functions/{name}/logs")["events"]
        if len(events) >= 3:
            break
        time.sleep(0.2)
    assert [e["request_id"] for e in events] == request_ids
    # As on AWS, what the module printed while it was imported comes before START.
    assert events[0]["message"].startswith(f"init ran\nSTART RequestId: {request_ids[0]}")
    assert events[1]["message"].startswith(f"START RequestId: {request_ids[1]}")
    deadline = time.monotonic() + 10
    totals: dict[str, float] = {}
    while time.monotonic() < deadline:
        metrics = api.get(f"/api/v1/functions/{name}/metrics")["metrics"]
        totals = {k: sum(p["value"] for p in v) for k, v in metrics.items()}
        if totals.get("Invocations", 0) >= 3:
            break
        time.sleep(0.5)
    assert totals["Invocations"] == 3 and totals["Errors"] == 0
    assert totals["ColdStarts"] == 1
