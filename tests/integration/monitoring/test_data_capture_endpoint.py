"""Data capture on a real endpoint: boto3 invocations land in the artifact store as
SageMaker capture records, sampled at the config's percentage."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests._server import RunningServer
from tests._uploads import small_cnn_archive, upload_model
from tests.integration.endpoints.conftest import Models, runtime_client, unique

from kennel._client import KennelClient
from kennel.endpoints._capture import read_capture_file

pytestmark = pytest.mark.timeout(400)

BREEDS = [f"{i:03d}.Breed_{i}" for i in range(1, 134)]
REQUESTS = 100


@pytest.fixture(scope="module")
def breed_model(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 133-class image model (small CNN, random weights, 32 px): loads in a blink."""
    archive = small_cnn_archive(tmp_path_factory.mktemp("capture-model"), BREEDS)
    with server.client() as api:
        name = unique("capture-breeds")
        upload_model(api, archive, name)
        yield name


def images(count: int) -> list[tuple[bytes, str]]:
    """Distinct small photos, alternately PNG and JPEG."""
    rng = np.random.default_rng(11)
    out = []
    for number in range(count):
        pixels = rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)
        kind = ("PNG", "image/png") if number % 2 == 0 else ("JPEG", "image/jpeg")
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=kind[0])
        out.append((buffer.getvalue(), kind[1]))
    return out


def capture_records(server: RunningServer, endpoint: str) -> list[dict[str, Any]]:
    root = server.home / "artifacts" / "monitoring" / endpoint / "capture"
    found: list[dict[str, Any]] = []
    for file in sorted(root.rglob("*.jsonl")) if root.exists() else []:
        found += read_capture_file(file.read_text())
    return found


def deploy(api: KennelClient, made: Models, model: str, percentage: int) -> str:
    config = unique("capture-cfg")
    capture = {"sampling_percentage": percentage, "capture_options": ["Input", "Output"]}
    body = {"name": config, "variants": [{"model_name": model}], "data_capture": capture}
    described = api.post("/api/v1/endpoint-configs", body)
    assert described["data_capture"] == {
        "enable_capture": True,
        "sampling_percentage": percentage,
        "capture_options": ["Input", "Output"],
        "max_payload_bytes": 1048576,
    }
    endpoint = made.endpoint(config)
    assert api.get(f"/api/v1/endpoints/{endpoint}")["data_capture"] == described["data_capture"]
    return endpoint


def invoke_all(server: RunningServer, endpoint: str) -> tuple[dict[str, str], list[bytes]]:
    """Send the images; returns inference id -> capture event id (captured ones only)."""
    runtime = runtime_client(server, retries=2)
    sent = images(REQUESTS)
    captured: dict[str, str] = {}
    for number, (body, content_type) in enumerate(sent):
        inference_id = f"inf-{number:03d}"
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint,
            Body=body,
            ContentType=content_type,
            Accept="application/json",
            InferenceId=inference_id,
        )
        answer["Body"].read()
        event_id = answer["ResponseMetadata"]["HTTPHeaders"].get("x-kennel-capture-event-id")
        if event_id:
            captured[inference_id] = event_id
    return captured, [body for body, _ in sent]


def wait_records(server: RunningServer, endpoint: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    found = capture_records(server, endpoint)
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        found = capture_records(server, endpoint)
    time.sleep(1.5)  # one more flush period: nothing beyond the captured ones appears
    return capture_records(server, endpoint)


def check_records(
    records: list[dict[str, Any]], captured: dict[str, str], bodies: list[bytes], endpoint: str
) -> None:
    assert sorted(r["eventMetadata"]["inferenceId"] for r in records) == sorted(captured)
    for record in records:
        meta = record["eventMetadata"]
        assert meta["eventId"] == captured[meta["inferenceId"]]
        assert (meta["variant"], meta["endpoint"], record["eventVersion"]) == (
            "AllTraffic",
            endpoint,
            "0",
        )
        assert meta["inferenceTime"].endswith("Z")
        number = int(meta["inferenceId"].split("-")[1])
        sent = record["captureData"]["endpointInput"]
        assert sent["observedContentType"] == ("image/png" if number % 2 == 0 else "image/jpeg")
        assert (sent["mode"], sent["encoding"]) == ("INPUT", "BASE64")
        payload = base64.b64decode(sent["data"])
        assert payload == bodies[number]
        assert Image.open(io.BytesIO(payload)).format == ("PNG" if number % 2 == 0 else "JPEG")
        answer = record["captureData"]["endpointOutput"]
        assert (answer["mode"], answer["encoding"]) == ("OUTPUT", "JSON")
        assert answer["observedContentType"].startswith("application/json")
        assert json.loads(answer["data"])


def test_capture_at_50_percent_records_about_half_with_their_payloads(
    server: RunningServer, api: KennelClient, breed_model: str, tmp_path: Path
) -> None:
    made = Models(api, tmp_path)
    try:
        endpoint = deploy(api, made, breed_model, 50)
        captured, bodies = invoke_all(server, endpoint)
        # Binomial(100, 0.5): sd 5, so 4 sd either side fails by chance ~1 in 16 000.
        assert 30 <= len(captured) <= 70, len(captured)
        records = wait_records(server, endpoint, len(captured))
        check_records(records, captured, bodies, endpoint)
    finally:
        made.cleanup()


def test_capture_at_100_percent_records_every_request(
    server: RunningServer, api: KennelClient, breed_model: str, tmp_path: Path
) -> None:
    made = Models(api, tmp_path)
    try:
        endpoint = deploy(api, made, breed_model, 100)
        captured, bodies = invoke_all(server, endpoint)
        assert len(captured) == REQUESTS
        records = wait_records(server, endpoint, REQUESTS)
        check_records(records, captured, bodies, endpoint)
        root = server.home / "artifacts" / "monitoring" / endpoint / "capture" / "AllTraffic"
        hours = {p.parent for p in root.rglob("*.jsonl")}
        assert hours
        for folder in hours:  # .../capture/AllTraffic/YYYY/MM/DD/HH
            assert [len(part) for part in folder.parts[-4:]] == [4, 2, 2, 2]
    finally:
        made.cleanup()


def test_an_endpoint_without_capture_writes_nothing(
    server: RunningServer, api: KennelClient, breed_model: str, tmp_path: Path
) -> None:
    made = Models(api, tmp_path)
    endpoint = made.endpoint(made.config({"model_name": breed_model}))
    try:
        assert api.get(f"/api/v1/endpoints/{endpoint}")["data_capture"] is None
        runtime = runtime_client(server)
        body, content_type = images(1)[0]
        answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type)
        assert "x-kennel-capture-event-id" not in answer["ResponseMetadata"]["HTTPHeaders"]
        time.sleep(1.5)
        assert capture_records(server, endpoint) == []
    finally:
        made.cleanup()
