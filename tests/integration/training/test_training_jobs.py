"""Training jobs on a real server with a real Ray head: the SageMaker contract end to end."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from tests._uploads import upload_sources

from kennel._client import KennelClient
from kennel._errors import KennelError

SCRIPTS = Path(__file__).parent / "scripts"
TERMINAL = ("Completed", "Failed", "Stopped")


@pytest.fixture(scope="module")
def dataset(server: Any) -> str:
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": "train-digits", "demo": {"image_size": 16}})
    return "train-digits"


@pytest.fixture(scope="module")
def source_uri(server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return upload_sources(server, tmp_path_factory.mktemp("src"), SCRIPTS / "sagemaker_style.py")


def wait_for(api: KennelClient, name: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/api/v1/training-jobs/{name}")
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.5)
    raise AssertionError(f"{name} did not finish in {timeout} s")


def script_job(dataset: str, source_uri: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dataset": dataset,
        "entry_point": "sagemaker_style.py",
        "source_uri": source_uri,
        "metric_definitions": [
            {"name": "test:loss", "regex": r"Test set: Average loss: ([0-9\.]+)"}
        ],
    }
    spec.update(extra)
    return spec


def full_log(api: KennelClient, name: str, host: str = "algo-1") -> str:
    return str(api.get(f"/api/v1/training-jobs/{name}/logs", params={"host": host})["data"])


def test_sagemaker_script_runs_unchanged_on_two_instances(
    api: KennelClient, dataset: str, source_uri: str
) -> None:
    spec = script_job(
        dataset,
        source_uri,
        name="sm-two",
        instance_count=2,
        instance_type="ml.m5.xlarge",
        hyperparameters={"lr": 0.05, "batch-size": 16},
    )
    created = api.post("/api/v1/training-jobs", spec)
    assert created["status"] == "InProgress"
    job = wait_for(api, "sm-two")
    assert job["status"] == "Completed", job["failure_reason"]
    assert [t["status"] for t in job["status_transitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    first, second = full_log(api, "sm-two", "algo-1"), full_log(api, "sm-two", "algo-2")
    assert "hosts=['algo-1', 'algo-2'] current=algo-1" in first
    assert "current=algo-2" in second
    assert "hps={'lr': '0.05', 'batch-size': '16'}" in first
    assert "classes=10 lr=0.05 batch_size=16" in first
    assert job["placement"]["oversubscribed"] is True  # 8 vCPU wanted, 2 here

    series = api.get("/api/v1/training-jobs/sm-two/metrics")["metrics"]
    assert [p["value"] for p in series["test:loss"]] == [0.5, 0.25, 0.125]
    assert job["final_metrics"] == {"test:loss": 0.125}
    model = Path(job["model_artifact_uri"])
    with tarfile.open(model) as tar:
        assert tar.getnames() == ["model.pth"]
    assert job["billable_seconds"] >= 2 and job["cost_usd"] > 0


def test_three_xlarge_instances_share_two_cores(
    api: KennelClient, dataset: str, source_uri: str
) -> None:
    """The embedded default runs what does not fit, split, and says so."""
    spec = script_job(
        dataset, source_uri, name="sm-three", instance_count=3, instance_type="ml.m5.xlarge"
    )
    api.post("/api/v1/training-jobs", spec)
    job = wait_for(api, "sm-three")
    assert job["status"] == "Completed", job["failure_reason"]
    placement = job["placement"]
    assert placement["oversubscribed"] and placement["cpus_per_instance"] * 3 <= 2
    assert "3 x ml.m5.xlarge want 12 vCPU" in placement["note"]
    assert "current=algo-3" in full_log(api, "sm-three", "algo-3")


def test_crashing_script_fails_with_its_error(
    api: KennelClient, dataset: str, source_uri: str
) -> None:
    api.post(
        "/api/v1/training-jobs",
        script_job(dataset, source_uri, name="sm-crash", hyperparameters={"fail": "yes"}),
    )
    job = wait_for(api, "sm-crash")
    assert job["status"] == "Failed" and job["secondary_status"] == "Failed"
    assert (
        "ZeroDivisionError: the user's script divided by zero on purpose" in job["failure_reason"]
    )
    assert job["failure_reason"].startswith("AlgorithmError")


def test_stop_mid_run(api: KennelClient, dataset: str, source_uri: str) -> None:
    api.post(
        "/api/v1/training-jobs",
        script_job(dataset, source_uri, name="sm-stop", hyperparameters={"sleep": 60}),
    )
    deadline = time.monotonic() + 120
    while "sleeping step=" not in full_log(api, "sm-stop"):
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.3)
    stopping = api.post("/api/v1/training-jobs/sm-stop/stop", {})
    assert stopping["status"] == "Stopping"
    job = wait_for(api, "sm-stop", timeout=60)
    assert (job["status"], job["secondary_status"]) == ("Stopped", "Stopped")
    with pytest.raises(KennelError) as again:
        api.post("/api/v1/training-jobs/sm-stop/stop", {})
    assert again.value.status == 400


def test_max_runtime_stops_the_job(api: KennelClient, dataset: str, source_uri: str) -> None:
    api.post(
        "/api/v1/training-jobs",
        script_job(
            dataset,
            source_uri,
            name="sm-slow",
            max_runtime_seconds=4,
            hyperparameters={"sleep": 60},
        ),
    )
    job = wait_for(api, "sm-slow", timeout=90)
    assert (job["status"], job["secondary_status"]) == ("Stopped", "MaxRuntimeExceeded")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"instance_type": "ml.x9.huge"}, "Unknown instance type"),
        ({"dataset": "no-such-set"}, "does not exist"),
        ({"hyperparameters": {"lr": -1}}, "--lr"),
        ({"hyperparameters": {"arch": "resnet9000"}}, "--arch"),
        ({"hyperparameters": {"no-such-flag": 1}}, "no-such-flag"),
        ({"instance_count": 0}, "instance_count"),
        ({"metric_definitions": [{"name": "m", "regex": "no group"}]}, "group"),
        ({"name": "bad name"}, "not valid"),
        # a misspelt field is refused, not ignored (the job would run without it)
        ({"hyperparameter": {"lr": 0.1}}, "hyperparameter: Extra inputs are not permitted"),
    ],
)
def test_bad_requests_are_refused_before_anything_starts(
    api: KennelClient, dataset: str, change: dict[str, Any], expected: str
) -> None:
    spec: dict[str, Any] = {"name": "refused", "dataset": dataset}
    spec.update(change)
    with pytest.raises(KennelError) as caught:
        api.post("/api/v1/training-jobs", spec)
    assert caught.value.status == 400
    assert expected in caught.value.message
    names = [j["name"] for j in api.get("/api/v1/training-jobs")["training_jobs"]]
    assert "refused" not in names and "bad name" not in names


def test_names_are_unique(api: KennelClient, dataset: str, source_uri: str) -> None:
    api.post("/api/v1/training-jobs", script_job(dataset, source_uri, name="sm-once"))
    with pytest.raises(KennelError) as caught:
        api.post("/api/v1/training-jobs", script_job(dataset, source_uri, name="sm-once"))
    assert caught.value.status == 409
    wait_for(api, "sm-once")


def test_instance_type_catalog(api: KennelClient) -> None:
    types = {t["name"]: t for t in api.get("/api/v1/instance-types")["instance_types"]}
    assert types["ml.m5.xlarge"]["vcpus"] == 4 and types["ml.m5.xlarge"]["memory_gib"] == 16
    assert types["ml.p3.2xlarge"]["gpus"] == 1 and types["ml.g4dn.xlarge"]["gpu_model"] == "T4"
    assert all(t["price_per_hour"] > 0 for t in types.values())
