"""``kennel functions`` as a user types it, against the session's real server.

Names carry a random suffix: the server is shared by the whole test session. Where a test
only needs to wait for the server (an async event to fail, metrics to be flushed) it polls
through a client rather than the CLI: each CLI run costs a second of start-up.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel
from tests.integration.functions.conftest import make_role, no_retries, payload_of, unique

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

APP = """\
import os
from lib.words import shout

def handler(event, context):
    print("hello from", context.function_name, event)
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"greeting": shout(os.environ.get("GREETING", "hi")), "event": event}
"""
WORDS = "def shout(text):\n    return text.upper()\n"


def _env(server: RunningServer) -> dict[str, str]:
    # Wide enough that rich never folds an ARN in the human output we assert on.
    return {**server.env, "COLUMNS": "250"}


def _json(env: dict[str, str], *args: str) -> Any:
    return json.loads(kennel(env, *args, "--json").stdout)


def _code(folder: Path, app: str = APP) -> Path:
    (folder / "lib").mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(app)
    (folder / "lib" / "__init__.py").write_text("")
    (folder / "lib" / "words.py").write_text(WORDS)
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"not shipped")
    return folder


@pytest.fixture(scope="module")
def lambda_client(server: RunningServer) -> Any:
    return server.session.client(
        "lambda", endpoint_url=server.url, region_name="us-east-1", config=no_retries()
    )


@pytest.fixture(scope="module")
def role(server: RunningServer) -> str:
    iam = server.session.client(
        "iam", endpoint_url=server.url, region_name="us-east-1", config=no_retries()
    )
    return make_role(iam, unique("cli-fn-role"))


@pytest.fixture
def function_name(lambda_client: Any) -> Iterator[Callable[[], str]]:
    """A fresh function name per call; whatever the test leaves is deleted afterwards."""
    names: list[str] = []

    def make() -> str:
        names.append(unique("cli-fn"))
        return names[-1]

    yield make
    for name in names:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)


def _until(probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not true within {timeout} s: {probe}")


def test_create_describe_invoke_update_and_errors(
    server: RunningServer,
    role: str,
    tmp_path: Path,
    function_name: Callable[[], str],
    lambda_client: Any,
) -> None:
    env = _env(server)
    name = function_name()
    code = _code(tmp_path / "code")
    created = kennel(
        env, "functions", "create", name, "--code", str(code), "--handler", "app.handler",
        "--role", role, "--memory", "256", "--env", "GREETING=woof", "--description", "cli test",
    )  # fmt: skip
    assert f"Created function {name} (python3.11, app.handler, 256 MB, 3 s" in created.stdout
    assert f"function:{name}" in created.stdout

    human = kennel(env, "functions", "describe", name).stdout
    assert "256 MB" in human and "GREETING=woof" in human and "cli test" in human
    assert "none published" in human and "none (uses the account's unreserved pool)" in human
    described = _json(env, "functions", "describe", name)
    config = described["Configuration"]
    assert config["Handler"] == "app.handler" and config["MemorySize"] == 256
    assert config["Environment"] == {"Variables": {"GREETING": "woof"}}
    assert [v["Version"] for v in described["Versions"]] == ["$LATEST"]
    assert described["ReservedConcurrentExecutions"] is None
    assert described["Aliases"] == [] and described["FunctionUrlConfigs"] == []

    invoked = kennel(env, "functions", "invoke", name, "--payload", '{"dog": "rex"}', "--log")
    assert json.loads(invoked.stdout) == {"greeting": "WOOF", "event": {"dog": "rex"}}
    assert "START RequestId:" in invoked.stderr and "REPORT RequestId:" in invoked.stderr
    assert f"hello from {name} {{'dog': 'rex'}}" in invoked.stderr

    failed = kennel(env, "functions", "invoke", name, "--payload", '{"fail": 1}', check=False)
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert lines[0] == (
        f"Error (FunctionUnhandled): The function {name} (version $LATEST) failed: "
        "ValueError: asked to fail"
    )
    assert lines[1].strip().startswith("hint:") and "Traceback" not in failed.stderr
    assert json.loads(failed.stdout)["errorType"] == "ValueError"

    (code / "app.py").write_text("def handler(event, context):\n    return 'v2'\n")
    updated = kennel(env, "functions", "update-code", name, "--code", str(code), "--publish")
    assert "published version 1" in updated.stdout
    config = _json(env, "functions", "update-config", name, "--timeout", "5", "--env", "EXTRA=1")
    assert config["Timeout"] == 5
    assert config["Environment"]["Variables"] == {"GREETING": "woof", "EXTRA": "1"}
    assert payload_of(lambda_client.invoke(FunctionName=name, Qualifier="1")) == "v2"

    kennel(env, "functions", "delete", name)
    missing = kennel(env, "functions", "describe", name, check=False)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    first, hint = missing.stderr.strip().splitlines()
    assert first.startswith("Error (ResourceNotFoundException): Function not found:")
    assert "hint:" in hint and "kennel functions list" in hint


@pytest.mark.slow
def test_versions_aliases_concurrency_provisioned_url_and_policy(
    server: RunningServer,
    role: str,
    tmp_path: Path,
    function_name: Callable[[], str],
    lambda_client: Any,
) -> None:
    env = _env(server)
    name = function_name()
    code = _code(tmp_path / "code", "def handler(event, context):\n    return 'one'\n")
    kennel(
        env, "functions", "create", name, "--code", str(code), "--handler", "app.handler",
        "--role", role, "--publish",
    )  # fmt: skip
    (code / "app.py").write_text("def handler(event, context):\n    return 'two'\n")
    kennel(env, "functions", "update-code", name, "--code", str(code))
    assert _json(env, "functions", "publish", name, "--description", "second")["Version"] == "2"
    alias = _json(env, "functions", "alias", "create", name, "live", "--version", "1")
    assert alias["FunctionVersion"] == "1" and alias["AliasArn"].endswith(f"{name}:live")
    assert payload_of(lambda_client.invoke(FunctionName=name, Qualifier="live")) == "one"
    kennel(env, "functions", "alias", "update", name, "live", "--version", "2")
    versions = kennel(env, "functions", "versions", name).stdout
    row = next(line for line in versions.splitlines() if "second" in line)
    assert "live" in row

    assert (
        "reserved concurrency 3"
        in kennel(env, "functions", "concurrency", name, "--reserved", "3").stdout
    )

    provisioned = kennel(
        env, "functions", "provisioned", "put", name, "--qualifier", "live", "--count", "1",
        "--wait", "--json",
    )  # fmt: skip
    ready = json.loads(provisioned.stdout)
    assert ready["Status"] == "READY", ready
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 1

    url = _json(
        env, "functions", "url", "create", name, "--auth-type", "NONE",
        "--cors-origin", "https://dogs.example",
    )  # fmt: skip
    assert url["AuthType"] == "NONE" and url["Cors"]["AllowOrigins"] == ["https://dogs.example"]
    assert httpx.post(url["FunctionUrl"], json={}).status_code == 403  # not public yet
    kennel(
        env, "functions", "add-permission", name, "--principal", "*",
        "--action", "lambda:InvokeFunctionUrl", "--function-url-auth-type", "NONE",
    )  # fmt: skip
    public = httpx.post(url["FunctionUrl"], json={})
    assert public.status_code == 200 and public.json() == "two"
    [statement] = _json(env, "functions", "policy", name)["Statement"]
    assert statement["Principal"] == "*" and statement["Action"] == "lambda:InvokeFunctionUrl"

    described = kennel(env, "functions", "describe", name).stdout
    assert "live: 1/1 READY" in described and url["FunctionUrl"] in described
    assert "2 published: 1, 2" in described and "live -> 2" in described
    assert "3 (at most 3 at once" in described

    kennel(env, "functions", "remove-permission", name, "--statement-id", statement["Sid"])
    assert httpx.post(url["FunctionUrl"], json={}).status_code == 403
    kennel(env, "functions", "concurrency", name, "--delete")


def test_logs_follow_events_and_metrics(
    server: RunningServer,
    role: str,
    tmp_path: Path,
    function_name: Callable[[], str],
    lambda_client: Any,
) -> None:
    env = _env(server)
    name = function_name()
    code = _code(tmp_path / "code")
    kennel(
        env, "functions", "create", name, "--code", str(code), "--handler", "app.handler",
        "--role", role,
    )  # fmt: skip
    lambda_client.invoke(FunctionName=name, Payload=b'{"first": 1}')

    out = tmp_path / "follow.out"
    with out.open("w") as sink:
        follower = subprocess.Popen(
            [sys.executable, "-m", "kennel", "functions", "logs", name, "-f", "--since", "5m"]
            + ["--max-seconds", "60"],
            env=env,
            stdout=sink,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            _until(lambda: "{'first': 1}" in out.read_text())
            lambda_client.invoke(FunctionName=name, Payload=b'{"second": 2}')
            _until(lambda: "{'second': 2}" in out.read_text())
            follower.send_signal(signal.SIGINT)  # Ctrl-C ends following quietly
            _, errors = follower.communicate(timeout=30)
        finally:
            follower.kill()
    assert follower.returncode == 0 and "Traceback" not in errors, errors
    followed = out.read_text()
    assert followed.index("{'first': 1}") < followed.index("{'second': 2}")
    assert followed.count("START RequestId:") == 2

    latest = kennel(env, "functions", "logs", name, "--limit", "1").stdout
    assert "{'second': 2}" in latest and "{'first': 1}" not in latest

    queued = kennel(env, "functions", "invoke", name, "--async", "--payload", '{"fail": 1}')
    assert "Queued an asynchronous invocation" in queued.stdout
    with server.client() as api:
        _until(
            lambda: api.get(f"/api/v1/functions/{name}/events", params={"status": "failed"})[
                "events"
            ]
        )
        _until(
            lambda: (
                "Invocations"
                in api.get(f"/api/v1/functions/{name}/metrics", params={"since_seconds": 300})[
                    "metrics"
                ]
            )
        )
    [event] = _json(env, "functions", "events", name, "--status", "failed")
    assert event["attempts"] == 3 and event["last_error"]["errorType"] == "ValueError"
    table = kennel(env, "functions", "events", name, "--status", "failed").stdout
    assert "failed" in table and "ValueError: asked to fail" in table

    metrics = kennel(env, "functions", "metrics", name, "--since", "5m").stdout
    row = next(line for line in metrics.splitlines() if "Invocations" in line)
    assert 2 <= int(row.split("│")[2]) <= 5, metrics  # 2 sync, 3 attempts of the async one
