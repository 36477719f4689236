"""Spawning environments from a real template and invoking handlers in them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from tests.unit.functions.runtime._runtime_support import (
    CREDENTIALS,
    GATEWAY,
    REGION,
    invoke_meta,
    make_spec,
    percentile,
    run,
    spawn_and_invoke,
    write_code,
)

from kennel.functions._envclient import spawn

COUNTER = """
count = 0

def handler(event, context):
    global count
    count += 1
    return {"count": count, "echo": event}
"""


def test_handler_result_and_module_state_per_environment(
    template: tuple[str, int], tmp_path: Path
) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": COUNTER}))

    async def scenario() -> tuple[list[object], list[object]]:
        first = await spawn(*template, spec, timeout=30)
        second = await spawn(*template, spec, timeout=30)
        a = [
            json.loads((await first.invoke(invoke_meta(spec), b'{"n": %d}' % i)).payload)
            for i in range(3)
        ]
        b = [json.loads((await second.invoke(invoke_meta(spec), b"[1, 2]")).payload)]
        assert first.pid != second.pid
        await first.close()
        await second.close()
        return a, b

    a, b = run(scenario())
    assert a == [{"count": i + 1, "echo": {"n": i}} for i in range(3)]
    assert b == [{"count": 1, "echo": [1, 2]}]


@pytest.mark.parametrize("uri_style", ["file", "path"])
def test_code_from_file_url_or_local_path(
    template: tuple[str, int], tmp_path: Path, uri_style: str
) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/app.py": "from pkg import helper\n\n"
        "def main(event, context):\n    return helper.twice(event)\n",
        "pkg/helper.py": "def twice(x):\n    return x * 2\n",
    }
    spec = make_spec(write_code(tmp_path, files), handler="pkg/app.main", uri_style=uri_style)
    _, result = run(spawn_and_invoke(template, spec, b"21"))
    assert (result.kind, result.payload, result.exit) == ("ok", b"42", False)


def test_return_values_are_marshalled_like_aws(template: tuple[str, int], tmp_path: Path) -> None:
    code = """
import decimal

def handler(event, context):
    kind = event["kind"]
    if kind == "none":
        return None
    if kind == "str":
        return "caf\\u00e9"
    if kind == "bytes":
        return b"raw-bytes"
    return {"d": decimal.Decimal("1.5"), "i": decimal.Decimal("3")}
"""
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))

    async def scenario() -> list[bytes]:
        client = await spawn(*template, spec, timeout=30)
        out = []
        for kind in ("none", "str", "bytes", "decimal"):
            result = await client.invoke(invoke_meta(spec), json.dumps({"kind": kind}).encode())
            assert result.kind == "ok"
            out.append(result.payload)
        await client.close()
        return out

    assert run(scenario()) == [b"null", b'"caf\\u00e9"', b"raw-bytes", b'{"d": 1.5, "i": 3}']


def test_empty_payload_is_an_empty_event(template: tuple[str, int], tmp_path: Path) -> None:
    code = "def handler(event, context):\n    return event\n"
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))
    _, result = run(spawn_and_invoke(template, spec, b""))
    assert result.payload == b"{}"


def test_two_environments_unpack_new_code_at_once(
    template: tuple[str, int], tmp_path: Path
) -> None:
    """Both win or share the race to unpack the same code; neither sees a half-made folder."""
    files = {"lambda_function.py": COUNTER, **{f"data/f{i}.txt": "x" * 1000 for i in range(200)}}
    spec = make_spec(write_code(tmp_path, files))

    async def scenario() -> list[bytes]:
        import asyncio

        results = await asyncio.gather(*(spawn_and_invoke(template, spec, b"1") for _ in range(4)))
        return [r.payload for _, r in results]

    assert run(scenario()) == [b'{"count": 1, "echo": 1}'] * 4


def test_bundled_copy_of_a_preloaded_package_wins(
    template: tuple[str, int], tmp_path: Path
) -> None:
    """The template imported jmespath (botocore needs it); a function's own copy is used."""
    files = {
        "jmespath/__init__.py": "VERSION = 'bundled'\n",
        "lambda_function.py": "import jmespath\n\n"
        "def handler(e, c):\n    return jmespath.VERSION\n",
    }
    spec = make_spec(write_code(tmp_path, files))
    _, result = run(spawn_and_invoke(template, spec))
    assert result.payload == b'"bundled"'


def test_code_digest_mismatch_is_a_setup_error(template: tuple[str, int], tmp_path: Path) -> None:
    path, _ = write_code(tmp_path, {"lambda_function.py": COUNTER})
    spec = make_spec((path, "0" * 64))

    async def scenario() -> dict[str, object] | None:
        client = await spawn(*template, spec, timeout=30)
        assert not client.alive
        return client.init_error

    error = run(scenario())
    assert error is not None
    assert error["errorType"] == "Kennel.SetupError"
    assert "expected " + "0" * 64 in str(error["errorMessage"])


def test_cold_start_and_warm_invoke_timings(template: tuple[str, int], tmp_path: Path) -> None:
    """Prints the cold-start and warm round-trip times; asserts only a sanity bound."""
    trivial = make_spec(
        write_code(tmp_path / "t", {"lambda_function.py": "def handler(e, c):\n    return e\n"})
    )
    boto = make_spec(
        write_code(
            tmp_path / "b",
            {
                "lambda_function.py": "import boto3\nclient = boto3.client('sagemaker-runtime')\n"
                "def handler(e, c):\n    return client.meta.endpoint_url\n"
            },
        )
    )

    async def cold(spec: dict[str, object], n: int) -> list[float]:
        import asyncio

        times = []
        for _ in range(n):
            started = time.perf_counter()
            client, result = await spawn_and_invoke(template, spec)
            times.append((time.perf_counter() - started) * 1000)
            assert result.kind == "ok", result
            await asyncio.sleep(0.01)  # let the closed environment exit before the next
        return times

    async def warm(spec: dict[str, object], n: int) -> list[float]:
        client = await spawn(*template, spec, timeout=30)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            result = await client.invoke(invoke_meta(spec), b'{"x": 1}')
            times.append((time.perf_counter() - started) * 1000)
            assert result.kind == "ok"
        await client.close()
        return times[10:]

    run(cold(trivial, 2))  # unpack both packages and write their bytecode first
    run(cold(boto, 2))
    trivial_ms, boto_ms, warm_ms = (
        run(cold(trivial, 10)),
        run(cold(boto, 10)),
        run(warm(trivial, 110)),
    )
    for label, values in (("trivial", trivial_ms), ("boto3", boto_ms), ("warm", warm_ms)):
        print(
            f"{label}: p50 {percentile(values, 0.5):.2f} ms  p99 {percentile(values, 0.99):.2f} ms"
        )
    assert percentile(trivial_ms, 0.5) < 2000
    assert percentile(boto_ms, 0.5) < 2000
    assert percentile(warm_ms, 0.5) < 500


def test_boto3_inside_uses_the_gateway_and_the_function_credentials(
    template: tuple[str, int], tmp_path: Path
) -> None:
    code = """
import boto3

def handler(event, context):
    session = boto3.session.Session()
    creds = session.get_credentials().get_frozen_credentials()
    return {
        "sagemaker_runtime": boto3.client("sagemaker-runtime").meta.endpoint_url,
        "lambda": boto3.client("lambda").meta.endpoint_url,
        "s3": boto3.client("s3").meta.endpoint_url,
        "region": boto3.client("sts").meta.region_name,
        "keys": [creds.access_key, creds.secret_key, creds.token],
        "profile": session.profile_name,
    }
"""
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))
    _, result = run(spawn_and_invoke(template, spec))
    assert result.kind == "ok", result.payload
    seen = json.loads(result.payload)
    assert seen["sagemaker_runtime"] == GATEWAY
    assert seen["lambda"] == GATEWAY
    assert seen["s3"] == GATEWAY  # AWS_ENDPOINT_URL; the host's AWS_ENDPOINT_URL_S3 is gone
    assert seen["region"] == REGION
    assert seen["keys"] == [
        CREDENTIALS["access_key_id"],
        CREDENTIALS["secret_access_key"],
        CREDENTIALS["session_token"],
    ]
    assert seen["profile"] == "default"


def test_invocation_log_has_aws_lines_and_output(template: tuple[str, int], tmp_path: Path) -> None:
    code = """
import logging
import sys

print("init says hi")
logger = logging.getLogger()
logger.setLevel(logging.INFO)

def handler(event, context):
    print("printed", event["n"])
    sys.stderr.write("to stderr\\n")
    sys.stdout.buffer.write(b"raw bytes\\n")
    logger.info("info line %s", event["n"])
    logging.getLogger("child").debug("not shown")
    return event["n"]
"""
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}), memory_mb=256)

    async def scenario() -> tuple[list[str], list[str]]:
        client = await spawn(*template, spec, timeout=30)
        ids, logs = [], []
        for n in range(2):
            meta = invoke_meta(spec)
            result = await client.invoke(meta, json.dumps({"n": n}).encode())
            assert result.kind == "ok"
            ids.append(meta["request_id"])
            logs.append(result.log)
            if n == 0:
                assert result.init_duration_ms is not None and result.init_duration_ms > 0
            else:
                assert result.init_duration_ms is None
        await client.close()
        return ids, logs

    ids, logs = run(scenario())
    first, second = (log.splitlines() for log in logs)
    assert first[0] == "init says hi"
    assert first[1] == f"START RequestId: {ids[0]} Version: $LATEST"
    assert first[2:5] == ["printed 0", "to stderr", "raw bytes"]
    assert re.fullmatch(
        rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{ids[0]}\tinfo line 0", first[5]
    )
    assert first[6] == f"END RequestId: {ids[0]}"
    report = (
        rf"REPORT RequestId: {ids[0]}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 256 MB\tMax Memory Used: \d+ MB"
    )
    assert re.fullmatch(report + r"\tInit Duration: \d+\.\d\d ms", first[7])
    assert len(first) == 8
    assert second[0] == f"START RequestId: {ids[1]} Version: $LATEST"
    assert re.fullmatch(report.replace(ids[0], ids[1]), second[-1])
    assert "Init Duration" not in logs[1]
    assert logs[0].endswith("\n") and logs[1].endswith("\n")


def test_billed_duration_is_the_duration_rounded_up(
    template: tuple[str, int], tmp_path: Path
) -> None:
    code = "import time\n\ndef handler(e, c):\n    time.sleep(0.0123)\n"
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))
    _, result = run(spawn_and_invoke(template, spec))
    match = re.search(r"Duration: (\d+\.\d\d) ms\tBilled Duration: (\d+) ms", result.log)
    assert match is not None
    assert int(match[2]) == result.billed_ms
    assert result.billed_ms >= result.duration_ms >= 12.3
    assert result.billed_ms - result.duration_ms < 1


def test_provisioned_environment_reports_no_init_duration(
    template: tuple[str, int], tmp_path: Path
) -> None:
    code = (
        "import os\n\ndef handler(e, c):\n    return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n"
    )
    spec = make_spec(
        write_code(tmp_path, {"lambda_function.py": code}),
        initialization_type="provisioned-concurrency",
    )
    client, result = run(spawn_and_invoke(template, spec))
    assert result.payload == b'"provisioned-concurrency"'
    assert client.init_duration_ms is not None  # measured, just not billed or reported
    assert result.init_duration_ms is None
    assert "Init Duration" not in result.log
