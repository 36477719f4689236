"""Failures in the function's code, reported with AWS's error JSON and error types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.functions.runtime._runtime_support import (
    invoke_meta,
    make_spec,
    run,
    spawn_and_invoke,
    wait_gone,
    write_code,
)

from kennel.functions._envclient import spawn

NBSP = "\u00a0"


def test_handler_exception_is_an_error_result(template: tuple[str, int], tmp_path: Path) -> None:
    code = """
def helper(x):
    return 1 / x

def handler(event, context):
    return helper(event["x"])
"""
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))

    async def scenario() -> tuple[Any, Any, str]:
        client = await spawn(*template, spec, timeout=30)
        meta = invoke_meta(spec)
        failed = await client.invoke(meta, b'{"x": 0}')
        assert failed.kind == "error" and not failed.exit and client.alive
        ok = await client.invoke(invoke_meta(spec), b'{"x": 4}')  # the environment lives on
        await client.close()
        return failed, ok, meta["request_id"]

    failed, ok, request_id = run(scenario())
    assert ok.payload == b"0.25"
    error = json.loads(failed.payload)
    assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert error["errorMessage"] == "division by zero"
    assert error["errorType"] == "ZeroDivisionError"
    assert error["requestId"] == request_id
    trace = error["stackTrace"]
    assert all(isinstance(line, str) for line in trace)
    assert len(trace) == 2  # the runtime's own frames are trimmed, as AWS trims bootstrap.py
    assert trace[0].startswith('  File "') and "line 6, in handler\n" in trace[0]
    assert trace[0].endswith('    return helper(event["x"])\n')
    assert "in helper\n    return 1 / x\n" in trace[1]
    lines = failed.log.splitlines()
    at = lines.index("[ERROR] ZeroDivisionError: division by zero")
    assert lines[at + 1] == "Traceback (most recent call last):"
    assert lines[at + 2].startswith(NBSP * 2 + 'File "') and lines[at + 2].endswith("in handler")
    assert lines[at + 3] == NBSP * 4 + 'return helper(event["x"])'
    assert lines[-2] == f"END RequestId: {request_id}"


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"lambda_function.py": "import not_installed_anywhere\n"},
            "lambda_function.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'lambda_function': No module named 'not_installed_anywhere'",
        ),
        (
            {"other.py": "x = 1\n"},
            "lambda_function.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'lambda_function': No module named 'lambda_function'",
        ),
        (
            {"lambda_function.py": "def main(e, c):\n    return 1\n"},
            "lambda_function.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'lambda_function'",
        ),
        (
            {"lambda_function.py": "x = 1\n"},
            "nodots",
            "Runtime.MalformedHandlerName",
            "Bad handler 'nodots': not enough values to unpack (expected 2, got 1)",
        ),
        (
            {"lambda_function.py": "def handler(e, c)\n    return 1\n"},
            "lambda_function.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'lambda_function': expected ':' (lambda_function.py, line 1)",
        ),
        (
            {"lambda_function.py": "raise ValueError('bad config')\n"},
            "lambda_function.handler",
            "ValueError",
            "bad config",
        ),
    ],
)
def test_init_errors(
    template: tuple[str, int],
    tmp_path: Path,
    files: dict[str, str],
    handler: str,
    error_type: str,
    message: str,
) -> None:
    files = {"print_first.py": "", **files}
    spec = make_spec(write_code(tmp_path, files), handler=handler)

    async def scenario() -> Any:
        client = await spawn(*template, spec, timeout=30)
        assert not client.alive
        return client

    client = run(scenario())
    assert client.init_error is not None
    assert client.init_error["errorType"] == error_type
    assert client.init_error["errorMessage"] == message
    assert client.init_error["requestId"] == ""
    assert isinstance(client.init_error["stackTrace"], list)
    assert client.init_duration_ms is not None
    assert f"[ERROR] {error_type}: {message}" in client.init_log
    assert wait_gone(client.pid)
    if error_type == "ValueError":
        assert any("lambda_function.py" in line for line in client.init_error["stackTrace"])


def test_non_serialisable_result_is_a_marshal_error(
    template: tuple[str, int], tmp_path: Path
) -> None:
    code = "def handler(e, c):\n    return {'s': {1, 2}}\n"
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))
    _, result = run(spawn_and_invoke(template, spec))
    assert (result.kind, result.exit) == ("error", False)
    error = json.loads(result.payload)
    assert error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"] == (
        "Unable to marshal response: Object of type set is not JSON serializable"
    )
    assert error["stackTrace"] == []
    assert "[ERROR] Runtime.MarshalError: Unable to marshal response" in result.log


def test_bad_client_context_is_reported(template: tuple[str, int], tmp_path: Path) -> None:
    code = "def handler(e, c):\n    return 1\n"
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))

    async def scenario() -> Any:
        client = await spawn(*template, spec, timeout=30)
        result = await client.invoke(invoke_meta(spec, client_context="!!not base64!!"), b"{}")
        await client.close()
        return result

    result = run(scenario())
    assert result.kind == "error"
    assert json.loads(result.payload)["errorType"] == "Runtime.LambdaContextUnmarshalError"


def test_sys_exit_ends_the_environment(template: tuple[str, int], tmp_path: Path) -> None:
    code = "import sys\n\ndef handler(e, c):\n    sys.exit(3)\n"
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))
    client, result = run(spawn_and_invoke(template, spec, close=False))
    assert (result.kind, result.exit, client.alive) == ("error", True, False)
    error = json.loads(result.payload)
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    assert wait_gone(client.pid)
