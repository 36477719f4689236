"""Endpoint test fixtures: small custom models (no torch), endpoints made and removed."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tests._server import RunningServer

from kennel._client import KennelClient
from kennel._errors import NotFoundError

# A model whose handler functions are plain Python: it loads in a blink, echoes what it
# was asked, says which process answered, and can be told to sleep or to fail.
ECHO_HANDLER = """
import json, os, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "version.txt")) as f:
        version = f.read().strip()
    if version == "broken":
        raise RuntimeError("this model is broken on purpose")
    return {"version": version}

def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type}")
    return json.loads(body)

def predict_fn(data, model):
    if model["version"] == "failing" or data.get("fail"):
        raise RuntimeError("asked to fail")
    if data.get("sleep"):
        time.sleep(float(data["sleep"]))
    return {"version": model["version"], "pid": os.getpid(), "echo": data.get("echo")}

def output_fn(prediction, accept, context=None):
    if context is not None:
        attrs = context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes")
        if attrs:
            context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "seen=" + attrs)
    return json.dumps(prediction)
"""


def echo_archive(path: Path, version: str) -> Path:
    """A model.tar.gz: version.txt plus code/inference.py (ECHO_HANDLER)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (("version.txt", version), ("code/inference.py", ECHO_HANDLER)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_status(
    api: KennelClient, name: str, wanted: tuple[str, ...], timeout: float = 180.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        info = api.get(f"/api/v1/endpoints/{name}")
        if info["status"] in wanted:
            return info
        time.sleep(0.2)
    raise AssertionError(f"endpoint {name} stayed {info.get('status')}: {info}")


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def runtime_client(server: RunningServer, *, retries: int = 0) -> Any:
    """Plain boto3 sagemaker-runtime, as a user's code has it (retries off unless asked)."""
    return server.session.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}),
    )


class Models:
    """Creates echo models, configs and endpoints; deletes the endpoints afterwards."""

    def __init__(self, api: KennelClient, tmp: Path) -> None:
        self.api = api
        self.tmp = tmp
        self.endpoints: list[str] = []

    def model(self, version: str) -> str:
        name = unique(f"m-{version}")
        archive = echo_archive(self.tmp / f"{name}.tar.gz", version)
        uri = self.api.request("PUT", "/api/v1/uploads/model.tar.gz", upload=archive).json()["uri"]
        self.api.post("/api/v1/models", {"name": name, "artifact_uri": uri})
        return name

    def config(self, *variants: dict[str, Any]) -> str:
        name = unique("cfg")
        self.api.post("/api/v1/endpoint-configs", {"name": name, "variants": list(variants)})
        return name

    def endpoint(self, config: str, *, wait: bool = True) -> str:
        name = unique("ep")
        self.api.post("/api/v1/endpoints", {"name": name, "config_name": config})
        self.endpoints.append(name)
        if wait:
            info = wait_status(self.api, name, ("InService", "Failed"))
            # The reason first: pytest cuts a long dict before it.
            assert info["status"] == "InService", f"{info.get('failure_reason')} in {info}"
        return name

    def simple(self, version: str = "v1", count: int = 1) -> str:
        model = self.model(version)
        return self.endpoint(self.config({"model_name": model, "initial_instance_count": count}))

    def cleanup(self) -> None:
        for name in self.endpoints:
            try:
                wait_status(self.api, name, ("InService", "Failed"), timeout=120)
                self.api.delete(f"/api/v1/endpoints/{name}")
            except NotFoundError:
                continue
        for name in self.endpoints:
            wait_for(lambda n=name: _gone(self.api, n), 60, f"endpoint {name} deleted")


def _gone(api: KennelClient, name: str) -> bool:
    try:
        api.get(f"/api/v1/endpoints/{name}")
    except NotFoundError:
        return True
    return False


@pytest.fixture
def models(api: KennelClient, tmp_path: Path) -> Iterator[Models]:
    made = Models(api, tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
def runtime(server: RunningServer) -> Any:
    return runtime_client(server)


@pytest.fixture
def boto_session(server: RunningServer) -> boto3.Session:
    return server.session
