"""The built-in trainer as a platform job: 1 and 2 instances, the model it leaves, waiting."""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from tests._server import RunningServer

from kennel._client import KennelClient

SMALL = {"arch": "small-cnn", "epochs": 2, "image-size": 32, "lr": 0.05, "batch-size": 32}


@pytest.fixture(scope="module")
def digits(server: RunningServer) -> str:
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": "builtin-digits", "demo": {"image_size": 32}})
    return "builtin-digits"


def wait_for(api: KennelClient, name: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/api/v1/training-jobs/{name}")
        if job["status"] not in ("InProgress", "Stopping"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"{name} did not finish")


def load_handler(model_dir: Path) -> Any:
    spec = importlib.util.spec_from_file_location(
        "job_inference", model_dir / "code" / "inference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the handler look their module up
    spec.loader.exec_module(module)
    return module


def test_one_instance_job_leaves_a_model_that_predicts(
    api: KennelClient, digits: str, server: RunningServer, tmp_path: Path
) -> None:
    api.post(
        "/api/v1/training-jobs", {"name": "builtin-1", "dataset": digits, "hyperparameters": SMALL}
    )
    job = wait_for(api, "builtin-1")
    assert job["status"] == "Completed", job["failure_reason"]
    metrics = api.get("/api/v1/training-jobs/builtin-1/metrics")["metrics"]
    assert len(metrics["validation:accuracy"]) == 2  # one sample per epoch
    assert "test:accuracy" in job["final_metrics"]

    with tarfile.open(job["model_artifact_uri"]) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "model", filter="data")
    assert {"model.pth", "classes.json", "code/inference.py"} <= set(names)
    handler = load_handler(tmp_path / "model")
    model = handler.model_fn(str(tmp_path / "model"))
    image = next((server.home / "artifacts" / "datasets" / digits / "test").rglob("*.jpg"))
    data = handler.input_fn(image.read_bytes(), "image/jpeg")
    scores = json.loads(handler.output_fn(handler.predict_fn(data, model), "application/json"))
    assert len(scores) == 1 and len(scores[0]) == 10
    assert json.loads((tmp_path / "model" / "classes.json").read_text())[0] == "001.zero"


def test_two_instance_ddp_job_ends_with_identical_weights(
    api: KennelClient, digits: str, tmp_path: Path
) -> None:
    digest = tmp_path / "digest-{rank}.txt"
    api.post(
        "/api/v1/training-jobs",
        {
            "name": "builtin-2",
            "dataset": digits,
            "hyperparameters": SMALL,
            "instance_count": 2,
            "instance_type": "ml.m5.large",
            "environment": {"KENNEL_TRAINER_WEIGHTS_DIGEST_FILE": str(digest)},
        },
    )
    job = wait_for(api, "builtin-2")
    assert job["status"] == "Completed", job["failure_reason"]
    rank0 = (tmp_path / "digest-0.txt").read_text()
    rank1 = (tmp_path / "digest-1.txt").read_text()
    assert rank0 == rank1 and len(rank0.strip()) == 64
    log = api.get("/api/v1/training-jobs/builtin-2/logs", params={"host": "algo-1"})["data"]
    assert "world_size=2" in log


def test_a_job_waits_until_its_instances_fit(api: KennelClient, digits: str) -> None:
    """ml.m5.large wants this machine's 2 CPUs: a second one waits for the first."""
    sleeper = {
        "name": "hog",
        "dataset": digits,
        "instance_type": "ml.m5.large",
        "entry_point": "kennel.trainer",
        "hyperparameters": {**SMALL, "epochs": 30},
    }
    api.post("/api/v1/training-jobs", sleeper)
    # The hog must hold its CPUs before the waiter asks, or the two race for them.
    placed_by = time.monotonic() + 60
    while not api.get("/api/v1/training-jobs/hog")["placement"]:
        assert time.monotonic() < placed_by, "the first job never got its instances"
        time.sleep(0.2)
    api.post(
        "/api/v1/training-jobs",
        {
            "name": "waiter",
            "dataset": digits,
            "instance_type": "ml.m5.large",
            "hyperparameters": SMALL,
        },
    )
    deadline = time.monotonic() + 60
    while True:
        waiter = api.get("/api/v1/training-jobs/waiter")
        if "Waiting for 1 x ml.m5.large" in waiter["status_message"]:
            break
        assert waiter["secondary_status"] == "Starting", waiter
        assert time.monotonic() < deadline, waiter
        time.sleep(0.3)
    api.post("/api/v1/training-jobs/hog/stop", {})
    assert wait_for(api, "hog")["status"] == "Stopped"
    assert wait_for(api, "waiter")["status"] == "Completed"
