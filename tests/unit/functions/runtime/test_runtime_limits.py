"""Timeouts and the memory limit end the environment, with AWS's messages."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tests.unit.functions.runtime._runtime_support import (
    invoke_meta,
    make_spec,
    run,
    wait_gone,
    write_code,
)

from kennel.functions._envclient import spawn


def _run_once(template: tuple[str, int], spec: dict[str, Any], payload: bytes = b"{}") -> Any:
    async def scenario() -> Any:
        client = await spawn(*template, spec, timeout=30)
        assert client.init_error is None, client.init_error
        meta = invoke_meta(spec)
        started = time.perf_counter()
        result = await client.invoke(meta, payload)
        elapsed = time.perf_counter() - started
        return client, result, elapsed, meta["request_id"]

    return run(scenario())


SLEEPER = """
import time

def handler(event, context):
    print("going to sleep")
    if event.get("busy"):
        while True:
            pass
    time.sleep(10)
"""


def _check_timeout(client: Any, result: Any, elapsed: float, request_id: str) -> None:
    assert result.kind == "timeout"
    assert result.exit and not client.alive
    assert 0.95 < elapsed < 2.5, elapsed
    error = json.loads(result.payload)
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {request_id} Task timed out after 1\.00 "
        "seconds",
        error["errorMessage"],
    )
    lines = result.log.splitlines()
    assert lines[0:2] == [f"START RequestId: {request_id} Version: $LATEST", "going to sleep"]
    assert lines[2] == error["errorMessage"]
    assert lines[3] == f"END RequestId: {request_id}"
    assert lines[4].startswith(f"REPORT RequestId: {request_id}\tDuration: 1000.00 ms\t")
    assert lines[4].endswith("\tStatus: timeout")
    assert len(lines) == 5
    assert result.duration_ms == 1000.0
    assert wait_gone(client.pid)


def test_sleeping_handler_times_out(template: tuple[str, int], tmp_path: Path) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": SLEEPER}), timeout_s=1)
    _check_timeout(*_run_once(template, spec))


def test_busy_handler_times_out(template: tuple[str, int], tmp_path: Path) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": SLEEPER}), timeout_s=1)
    _check_timeout(*_run_once(template, spec, b'{"busy": true}'))


MEMORY = """
def handler(event, context):
    size = event["mb"] * 2**20
    block = bytearray(size)
    for i in range(0, size, 4096):
        block[i] = 1
    return len(block) // 2**20
"""


def test_over_the_memory_limit_ends_the_environment(
    template: tuple[str, int], tmp_path: Path
) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": MEMORY}), memory_mb=128)
    client, result, elapsed, request_id = _run_once(template, spec, b'{"mb": 300}')
    assert result.kind == "memory"
    assert result.exit and not client.alive
    error = json.loads(result.payload)
    assert error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }
    assert result.max_memory_mb > 128
    assert f"RequestId: {request_id} Error: Runtime exited with error: signal: killed\n" in (
        result.log
    )
    assert result.log.rstrip("\n").endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert wait_gone(client.pid)


def test_one_huge_allocation_is_refused(template: tuple[str, int], tmp_path: Path) -> None:
    """A single allocation far beyond the limit fails before the sampling watchdog could look."""
    code = "def handler(e, c):\n    return len(b'x' * (64 * 2**30))\n"
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}), memory_mb=128)
    client, result, _, _ = _run_once(template, spec)
    assert (result.kind, result.exit) == ("memory", True)
    assert wait_gone(client.pid)


def test_under_the_memory_limit_works(template: tuple[str, int], tmp_path: Path) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": MEMORY}), memory_mb=256)

    async def scenario() -> list[Any]:
        client = await spawn(*template, spec, timeout=30)
        results = [
            await client.invoke(invoke_meta(spec), json.dumps({"mb": mb}).encode())
            for mb in (1, 100, 1)
        ]
        await client.close()
        return results

    small, big, small_again = run(scenario())
    assert [r.kind for r in (small, big, small_again)] == ["ok"] * 3
    assert big.payload == b"100"
    assert 20 < small.max_memory_mb < 128
    assert small.max_memory_mb + 90 <= big.max_memory_mb < 256
    # the peak is per invocation: it was reset after the big one
    assert small_again.max_memory_mb < big.max_memory_mb - 50
    assert f"Max Memory Used: {big.max_memory_mb} MB" in big.log
