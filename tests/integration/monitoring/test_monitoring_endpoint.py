"""Model monitoring end to end: a built-in model trained through the API gets a baseline;
its endpoint captures every request; a window of test-split digits passes, inverted digits
are flagged (embeddings, image statistics) and raise the schedule's alarm; labels joined
on the inference ids give the accuracy of the captured predictions; the report is served
and the CLI shows the latest execution.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from PIL import Image, ImageOps
from tests._server import RunningServer
from tests.integration.api.test_metrics_scrape import scrape, value

from kennel._client import KennelClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SMALL = {"arch": "small-cnn", "epochs": 2, "image-size": 32, "lr": 0.05, "batch-size": 32}
PER_CLASS = 6  # 60 requests over the 10 digit classes


def _wait(what: str, check: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="module")
def monitored(server: RunningServer) -> Iterator[dict[str, Any]]:
    """A trained small-cnn (baseline computed on creation) behind a 100 %-capture endpoint."""
    suffix = uuid.uuid4().hex[:6]
    dataset, job, model = f"mon-digits-{suffix}", f"mon-job-{suffix}", f"mon-model-{suffix}"
    config, endpoint = f"mon-cfg-{suffix}", f"mon-ep-{suffix}"
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": dataset, "demo": {"image_size": 32}})
        _wait(
            "the data set",
            lambda: api.get(f"/api/v1/datasets/{dataset}")["status"] not in ("Creating",),
            120,
        )
        api.post(
            "/api/v1/training-jobs", {"name": job, "dataset": dataset, "hyperparameters": SMALL}
        )
        done = _wait(
            "the training job",
            lambda: (
                (j := api.get(f"/api/v1/training-jobs/{job}"))["status"]
                not in ("InProgress", "Stopping")
                and j
            ),
            300,
        )
        assert done["status"] == "Completed", done["failure_reason"]
        created = api.post("/api/v1/models", {"name": model, "training_job": job})
        assert created["details"]["baseline"]["status"] == "InProgress"
        state = _wait(
            "the baseline",
            lambda: (
                (b := api.get(f"/api/v1/models/{model}")["details"]["baseline"])["status"]
                != "InProgress"
                and b
            ),
            300,
        )
        assert state["status"] == "Completed", state
        api.post(
            "/api/v1/endpoint-configs",
            {
                "name": config,
                "variants": [{"model_name": model}],
                "data_capture": {"sampling_percentage": 100},
            },
        )
        api.post("/api/v1/endpoints", {"name": endpoint, "config_name": config})
        info = _wait(
            "the endpoint",
            lambda: (
                (e := api.get(f"/api/v1/endpoints/{endpoint}"))["status"] in ("InService", "Failed")
                and e
            ),
            300,
        )
        assert info["status"] == "InService", info
        yield {"endpoint": endpoint, "dataset": dataset, "model": model}
        api.delete(f"/api/v1/endpoints/{endpoint}")


def _test_images(server: RunningServer, dataset: str) -> list[tuple[str, bytes]]:
    root = server.home / "artifacts" / "datasets" / dataset
    test = next(p for p in [root / "test", *root.glob("*/test")] if p.is_dir())
    picked: list[tuple[str, bytes]] = []
    for folder in sorted(p for p in test.iterdir() if p.is_dir()):
        files = sorted(f for f in folder.iterdir() if f.is_file())[:PER_CLASS]
        picked.extend((folder.name, f.read_bytes()) for f in files)
    return picked


def _inverted(data: bytes) -> bytes:
    image = ImageOps.invert(Image.open(io.BytesIO(data)).convert("RGB"))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _captured(server: RunningServer, endpoint: str) -> int:
    folder = server.home / "artifacts" / "monitoring" / endpoint / "capture"
    return sum(len(f.read_text().splitlines()) for f in folder.rglob("*.jsonl"))


def _invoke_all(
    server: RunningServer, endpoint: str, images: list[tuple[str, bytes]], prefix: str
) -> dict[str, tuple[str, int]]:
    """Invoke with an inference id per image; returns id -> (true class, predicted index)."""
    runtime = server.session.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 3, "mode": "standard"}),
    )
    answers: dict[str, tuple[str, int]] = {}
    for number, (label, data) in enumerate(images):
        inference_id = f"{prefix}-{number}"
        content_type = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        response = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType=content_type, Body=data, InferenceId=inference_id
        )
        scores = json.loads(response["Body"].read())[0]
        answers[inference_id] = (label, max(range(len(scores)), key=scores.__getitem__))
    return answers


def test_monitoring_flags_drift_and_reports_live_accuracy(
    server: RunningServer, api: KennelClient, monitored: dict[str, Any], tmp_path: Path
) -> None:
    endpoint = monitored["endpoint"]
    base = f"/api/v1/endpoints/{endpoint}"
    schedule = api.request("PUT", f"{base}/monitoring-schedule", json_body={}).json()
    assert schedule["interval_seconds"] == 3600
    assert schedule["alarm"]["state"] == "INSUFFICIENT_DATA"
    listed = api.get("/api/v1/monitoring-schedules", params={"endpoint": endpoint})
    assert listed["schedules"] == [schedule]

    images = _test_images(server, monitored["dataset"])
    assert len(images) == 10 * PER_CLASS
    answers = _invoke_all(server, endpoint, images, "clean")
    _wait("the clean captures", lambda: _captured(server, endpoint) >= len(images), 30)
    clean = api.post(f"{base}/monitoring/run", {})
    assert clean["status"] == "Completed", clean
    assert clean["counts"]["images"] == len(images)
    assert clean["result"]["violations"] == []
    assert api.get(f"{base}/monitoring-schedule")["alarm"]["state"] == "OK"

    inverted = [(label, _inverted(data)) for label, data in images]
    _invoke_all(server, endpoint, inverted, "inverted")
    _wait("the inverted captures", lambda: _captured(server, endpoint) >= 2 * len(images), 30)
    drifted = api.post(f"{base}/monitoring/run", {})
    assert drifted["status"] == "CompletedWithViolations", drifted
    assert drifted["window_start"] == clean["window_end"]
    assert drifted["counts"]["images"] == len(images)
    assert {"embedding_drift", "image_statistics"} <= set(drifted["result"]["violations"])
    assert api.get(f"{base}/monitoring-schedule")["alarm"]["state"] == "ALARM"
    # Prometheus sees the same: the alarm, and the drifted run's p-value.
    samples = scrape(api)
    assert value(samples, "kennel_monitoring_alarm", endpoint=endpoint, state="ALARM") == 1
    assert value(samples, "kennel_monitoring_alarm", endpoint=endpoint, state="OK") == 0
    p_value = value(
        samples, "kennel_monitoring_metric", endpoint=endpoint, metric="embedding_p_value"
    )
    assert p_value == drifted["metrics"]["embedding_p_value"] < 0.01

    classes = json.loads(
        (
            server.home / "artifacts" / "models" / monitored["model"] / "baseline" / "baseline.json"
        ).read_text()
    )["classes"]
    lines = [json.dumps({"inference_id": i, "label": label}) for i, (label, _) in answers.items()]
    lines.append('{"inference_id": "never-captured"')  # broken JSON: rejected with its line
    labels = api.request(
        "POST",
        f"{base}/labels",
        data="\n".join(lines).encode(),
        headers={"Content-Type": "application/jsonl"},
    ).json()
    assert (labels["accepted"], labels["rejected"]) == (len(answers), 1)
    expected = sum(classes[p] == label for label, p in answers.values()) / len(answers)
    labelled = api.post(
        f"{base}/monitoring/run",
        {"start": clean["window_start"], "end": clean["window_end"]},
    )
    quality = labelled["result"]["quality"]
    assert quality["n"] == len(answers)
    assert quality["accuracy"] == pytest.approx(expected)
    assert labelled["metrics"]["accuracy"] == pytest.approx(expected)

    report = api.request("GET", f"{base}/monitoring/executions/{labelled['id']}/report")
    assert report.headers["content-type"].startswith("text/html")
    page = report.text
    for section in ("Drift over time", "data:image/"):
        assert section in page
    assert "accuracy" in page.lower()

    listed = api.get(f"{base}/monitoring/executions")["executions"]
    assert [e["id"] for e in listed[:3]] == [labelled["id"], drifted["id"], clean["id"]]

    latest = json.loads(_cli(server, "monitor", endpoint, "--json"))
    assert latest["execution"]["id"] == labelled["id"]
    assert latest["schedule"]["alarm"]["state"] in ("OK", "ALARM")
    assert "embedding_drift" in _cli(server, "monitor", endpoint)
    _cli(server, "monitor-report", endpoint, "-o", str(tmp_path / "report.html"))
    assert "Drift over time" in (tmp_path / "report.html").read_text()
    changed = json.loads(_cli(server, "monitoring-schedule", endpoint, "--every", "600", "--json"))
    assert changed["interval_seconds"] == 600
    listed = json.loads(_cli(server, "monitoring-schedules", "--json"))["schedules"]
    assert [s["interval_seconds"] for s in listed if s["endpoint"] == endpoint] == [600]
    assert endpoint in _cli(server, "monitoring-schedules")
    _cli(server, "monitoring-schedule", endpoint, "--delete")
    assert api.get("/api/v1/monitoring-schedules", params={"endpoint": endpoint}) == {
        "schedules": []
    }
    assert api.get(f"{base}/monitoring/executions")["executions"]  # executions stay


def _cli(server: RunningServer, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kennel", "endpoints", *args],
        env={**server.env, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
