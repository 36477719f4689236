"""Helpers for the model server tests: real server processes and the model dirs they serve.

Servers run as ``kennel serve-model`` will run them, through ``run_model_server`` in a
subprocess of their own, and are spoken to with a real httpx client over 127.0.0.1.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

START_TIMEOUT = 90.0
"""Loading imports torch and torchvision: seconds on a quiet box, many more on a busy one."""

_RUN = """
import sys
from pathlib import Path
from kennel.endpoints._cli_support import run_model_server
port = int(sys.argv[2]) if sys.argv[2] else None
run_model_server(Path(sys.argv[1]), "127.0.0.1", port, 1)
"""

CUSTOM_HANDLER = '''
"""A user's own handler: not torch at all, to show the server needs none of it."""
import json
import time
from dataclasses import dataclass

from helper import GREETING  # a sibling module in code/: code/ must be importable


@dataclass
class Echo:
    prefix: str


def model_fn(model_dir):
    time.sleep(1.0)  # long enough for a test to see /ping answer 503 while loading
    with open(model_dir + "/prefix.txt", encoding="utf-8") as f:
        return Echo(prefix=f.read().strip())


def input_fn(body, content_type, context):
    if content_type == "application/x-slow":
        return ("slow", "")
    if content_type == "application/x-raise":
        return ("raise", "")
    if content_type != "text/plain":
        raise ValueError(f"content type {content_type} is not supported by this model")
    return ("echo", body.decode("utf-8"))


def predict_fn(data, model):
    kind, text = data
    if kind == "slow":
        time.sleep(3.0)
    if kind == "raise":
        raise ZeroDivisionError("the model divided by zero")
    return f"{GREETING} {model.prefix}{text}"


def output_fn(prediction, accept, context):
    if context.custom_attributes:
        header = "X-Amzn-SageMaker-Custom-Attributes"
        context.set_response_header(0, header, "seen=" + context.custom_attributes)
    return json.dumps({"echo": prediction, "accept": accept}), "application/vnd.echo+json"
'''


@dataclass
class ModelServer:
    """One running model server process and what its /ping said while it started."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    pings: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def explain(self) -> str:
        return f"--- server log\n{self.log.read_text(errors='replace')[-4000:]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    model: Path, log: Path, *, port: int | None = None, env: Mapping[str, str] = {}
) -> ModelServer:
    """Start serving ``model``; with ``port`` None the server must find it in ``env``."""
    bound = port if port is not None else int(env["SAGEMAKER_BIND_TO_PORT"])
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    environment.update(env, PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _RUN, str(model), "" if port is None else str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return ModelServer(process, bound, log)


def wait_ready(server: ModelServer, timeout: float = START_TIMEOUT) -> ModelServer:
    """Poll /ping until 200, recording every status seen; fail with the log otherwise."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(
                    f"model server exited with {server.process.returncode}\n{server.explain()}"
                )
            try:
                status = client.get("/ping").status_code
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            server.pings.append(status)
            if status == 200:
                return server
            time.sleep(0.05)
    stop_server(server)
    pytest.fail(f"model server not ready after {timeout} s\n{server.explain()}")


def stop_server(server: ModelServer) -> int:
    server.process.terminate()
    try:
        return server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return server.process.wait(timeout=15)


def npy(array: object) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_npy(body: bytes) -> np.ndarray[Any, Any]:
    array: np.ndarray[Any, Any] = np.load(io.BytesIO(body), allow_pickle=False)
    return array
