"""Helpers for the runtime tests: code zips, spawn specs, and waiting for processes to go.

Everything here is real: zips written to disk, a template process started by
``FunctionHost``, forks, TCP sockets on 127.0.0.1. Tests call the asyncio client through
``run`` (one short event loop per call), the way the gateway would from its own loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
import uuid
import zipfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from kennel.functions._envclient import EnvironmentClient, InvokeResult, spawn

T = TypeVar("T")
ACCOUNT = "123456789012"
REGION = "us-east-1"
GATEWAY = "http://127.0.0.1:8111"
CREDENTIALS = {
    "access_key_id": "ASIAFUNCTIONTEST0001",
    "secret_access_key": "function-secret-key",
    "session_token": "function-session-token",
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def write_code(folder: Path, files: dict[str, str], name: str = "code.zip") -> tuple[Path, str]:
    """A deployment package with ``files`` (path -> source); returns (zip path, sha256)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def make_spec(
    code: tuple[Path, str],
    *,
    name: str = "fn",
    handler: str = "lambda_function.handler",
    memory_mb: int = 128,
    timeout_s: int = 3,
    environment: dict[str, str] | None = None,
    uri_style: str = "file",
    initialization_type: str = "on-demand",
) -> dict[str, Any]:
    path, sha = code
    uri = f"file://{path}" if uri_style == "file" else str(path)
    return {
        "function_name": name,
        "version": "$LATEST",
        "invoked_function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "handler": handler,
        "runtime": "python3.11",
        "memory_mb": memory_mb,
        "timeout_s": timeout_s,
        "environment": environment or {},
        "code_uri": uri,
        "code_sha256": sha,
        "credentials": dict(CREDENTIALS),
        "region": REGION,
        "account_id": ACCOUNT,
        "log_group": f"/aws/lambda/{name}",
        "log_stream": f"2024/01/01/[$LATEST]{uuid.uuid4().hex}",
        "initialization_type": initialization_type,
        "gateway_url": GATEWAY,
        "runtime_api": GATEWAY.split("://", 1)[1],
    }


def invoke_meta(
    spec: dict[str, Any], request_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    timeout_ms = int(spec["timeout_s"]) * 1000
    return {
        "op": "invoke",
        "request_id": request_id or str(uuid.uuid4()),
        "invoked_function_arn": spec["invoked_function_arn"],
        "version": spec["version"],
        "timeout_ms": timeout_ms,
        "deadline_epoch_ms": int(time.time() * 1000) + timeout_ms,
        "client_context": None,
        **extra,
    }


async def spawn_and_invoke(
    template: tuple[str, int], spec: dict[str, Any], payload: bytes = b"{}", close: bool = True
) -> tuple[EnvironmentClient, InvokeResult]:
    client = await spawn(template[0], template[1], spec, timeout=30)
    assert client.init_error is None, client.init_error
    result = await client.invoke(invoke_meta(spec), payload)
    if close:
        await client.close()
    return client, result


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of ``pid`` (``Z`` for a zombie), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def wait_gone(pid: int, timeout: float = 5.0, *, zombie_ok: bool = False) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = process_state(pid)
        if state is None or (zombie_ok and state == "Z"):
            return True
        time.sleep(0.01)
    return False


def children_of(pid: int) -> dict[int, str]:
    """pid -> state of every process whose parent is ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
