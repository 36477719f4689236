"""Tuning jobs on a real server: every trial is a real training job on Ray."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests._uploads import upload_sources

from kennel._client import KennelClient
from kennel._errors import KennelError

SCRIPTS = Path(__file__).parent / "scripts"
OBJECTIVE = {"name": "objective:loss", "regex": r"objective_loss=([0-9.]+)"}


@pytest.fixture(scope="module")
def dataset(server: Any) -> str:
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": "tune-digits", "demo": {"image_size": 16}})
    return "tune-digits"


@pytest.fixture(scope="module")
def source_uri(server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return upload_sources(
        server, tmp_path_factory.mktemp("tune-src"), SCRIPTS / "tuning_objective.py"
    )


def wait_for(api: KennelClient, name: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/api/v1/tuning-jobs/{name}")
        if job["status"] not in ("InProgress", "Stopping"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"{name} did not finish in {timeout} s")


def script_tuning(name: str, dataset: str, source_uri: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "dataset": dataset,
        "entry_point": "tuning_objective.py",
        "source_uri": source_uri,
        "metric_definitions": [OBJECTIVE],
        "objective": {"metric_name": "objective:loss", "type": "Minimize"},
        "strategy": "Grid",
        "random_seed": 1,
    }
    spec.update(extra)
    return spec


def test_builtin_trainer_search_completes_with_the_best_job(
    api: KennelClient, dataset: str
) -> None:
    spec = {
        "name": "tune-lr-bs",
        "dataset": dataset,
        "objective": {"metric_name": "validation:loss", "type": "Minimize"},
        "parameter_ranges": {
            "continuous": [
                {"name": "lr", "min_value": 0.001, "max_value": 0.1, "scaling_type": "Logarithmic"}
            ],
            "categorical": [{"name": "batch-size", "values": [16, 32]}],
        },
        "static_hyperparameters": {"arch": "small-cnn", "epochs": 1, "image-size": 16},
        "strategy": "Random",
        "random_seed": 7,
        "max_training_jobs": 4,
        "max_parallel_training_jobs": 2,
    }
    created = api.post("/api/v1/tuning-jobs", spec)
    assert created["status"] == "InProgress"
    job = wait_for(api, "tune-lr-bs")
    assert job["status"] == "Completed", job
    assert job["counters"]["completed"] == 4
    assert job["counters"]["in_progress"] == 0  # an ended job has nothing running
    trials = job["trials"]
    names = [t["training_job_name"] for t in trials]
    assert all(n.startswith("tune-lr-bs-00") for n in names) and len(set(names)) == 4
    losses = [t["objective"] for t in trials]
    assert losses == sorted(losses)
    best = job["best_training_job"]
    assert best["training_job_name"] == names[0]
    assert best["objective"] == {
        "metric_name": "validation:loss",
        "type": "Minimize",
        "value": losses[0],
    }
    # The objective is the last validation:loss sample of the best job's own series.
    series = api.get(f"/api/v1/training-jobs/{names[0]}/metrics")["metrics"]
    assert series["validation:loss"][-1]["value"] == losses[0]
    training = api.get(f"/api/v1/training-jobs/{names[0]}")
    assert training["hyperparameters"]["arch"] == "small-cnn"
    assert 0.001 <= float(training["hyperparameters"]["lr"]) <= 0.1
    assert training["hyperparameters"]["batch-size"] in ("16", "32")
    listed = api.get("/api/v1/tuning-jobs/tune-lr-bs/training-jobs")["training_jobs"]
    assert [t["training_job_name"] for t in listed] == names
    assert "tune-lr-bs" in [j["name"] for j in api.get("/api/v1/tuning-jobs")["tuning_jobs"]]


def test_a_failing_trial_does_not_sink_the_job(
    api: KennelClient, dataset: str, source_uri: str
) -> None:
    spec = script_tuning(
        "tune-fail",
        dataset,
        source_uri,
        parameter_ranges={"categorical": [{"name": "fail", "values": ["no", "yes"]}]},
        max_training_jobs=2,
        max_parallel_training_jobs=2,
    )
    api.post("/api/v1/tuning-jobs", spec)
    job = wait_for(api, "tune-fail")
    assert job["status"] == "Completed", job
    assert (job["counters"]["completed"], job["counters"]["failed"]) == (1, 1)
    good, bad = job["trials"]
    assert good["hyperparameters"]["fail"] == "no" and good["objective_status"] == "Succeeded"
    assert bad["status"] == "Failed" and "fails on purpose" in bad["failure_reason"]
    assert job["best_training_job"]["training_job_name"] == good["training_job_name"]


@pytest.mark.slow
def test_early_stopping_prunes_a_hopeless_trial(
    api: KennelClient, dataset: str, source_uri: str
) -> None:
    spec = script_tuning(
        "tune-prune",
        dataset,
        source_uri,
        parameter_ranges={"categorical": [{"name": "quality", "values": ["good", "hopeless"]}]},
        static_hyperparameters={"epochs": 30},
        early_stopping="Auto",
        max_training_jobs=2,
        max_parallel_training_jobs=1,
    )
    started = time.monotonic()
    api.post("/api/v1/tuning-jobs", spec)
    job = wait_for(api, "tune-prune")
    assert job["status"] == "Completed", job
    assert job["counters"]["pruned"] == 1
    hopeless = next(t for t in job["trials"] if t["hyperparameters"]["quality"] == "hopeless")
    assert hopeless["pruned"] and hopeless["status"] == "Stopped"
    # 30 hopeless epochs take 60 s; early stopping ends it after a few.
    assert time.monotonic() - started < 50
    training = api.get(f"/api/v1/training-jobs/{hopeless['training_job_name']}")
    assert training["status"] == "Stopped"


def test_stop_stops_the_running_trials(api: KennelClient, dataset: str, source_uri: str) -> None:
    spec = script_tuning(
        "tune-stop",
        dataset,
        source_uri,
        parameter_ranges={"categorical": [{"name": "quality", "values": ["a", "b", "c", "d"]}]},
        static_hyperparameters={"epochs": 100, "epoch-seconds": 1},
        max_training_jobs=4,
        max_parallel_training_jobs=2,
    )
    api.post("/api/v1/tuning-jobs", spec)
    deadline = time.monotonic() + 120
    while True:
        job = api.get("/api/v1/tuning-jobs/tune-stop")
        series = [
            api.get(f"/api/v1/training-jobs/{t['training_job_name']}/metrics")["metrics"]
            for t in job["trials"]
        ]
        if len(job["trials"]) == 2 and any(s.get("objective:loss") for s in series):
            break
        assert time.monotonic() < deadline, "no trial started training"
        time.sleep(0.5)
    stopping = api.post("/api/v1/tuning-jobs/tune-stop/stop", {})
    assert stopping["status"] == "Stopping"
    job = wait_for(api, "tune-stop", timeout=90)
    assert job["status"] == "Stopped"
    assert len(job["trials"]) == 2 and job["counters"]["stopped"] == 2
    assert job["counters"]["in_progress"] == 0
    for trial in job["trials"]:
        training = api.get(f"/api/v1/training-jobs/{trial['training_job_name']}")
        assert training["status"] == "Stopped"
    with pytest.raises(KennelError) as again:
        api.post("/api/v1/tuning-jobs/tune-stop/stop", {})
    assert again.value.status == 400


@pytest.mark.parametrize(
    ("change", "status", "expected"),
    [
        ({"strategy": "Grid"}, 400, "Grid strategy takes only categorical"),
        ({"dataset": "no-such-set"}, 400, "does not exist"),
        ({"instance_type": "ml.x9.huge"}, 400, "Unknown instance type"),
        (
            {"max_paralel_training_jobs": 2},
            400,
            "max_paralel_training_jobs: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_tuning_jobs_are_refused(
    api: KennelClient, dataset: str, change: dict[str, Any], status: int, expected: str
) -> None:
    spec: dict[str, Any] = {
        "name": "tune-refused",
        "dataset": dataset,
        "objective": {"metric_name": "validation:loss", "type": "Minimize"},
        "parameter_ranges": {"continuous": [{"name": "lr", "min_value": 0.01, "max_value": 0.1}]},
    }
    spec.update(change)
    with pytest.raises(KennelError) as caught:
        api.post("/api/v1/tuning-jobs", spec)
    assert caught.value.status == status
    assert expected in caught.value.message
    with pytest.raises(KennelError) as missing:
        api.get("/api/v1/tuning-jobs/tune-refused")
    assert missing.value.status == 404


@pytest.mark.slow
def test_hyperband_warm_started_from_a_parent_and_its_report(
    api: KennelClient, dataset: str, source_uri: str
) -> None:
    ranges = {"integer": [{"name": "epochs", "min_value": 2, "max_value": 3}]}
    api.post(
        "/api/v1/tuning-jobs",
        script_tuning("tune-parent", dataset, source_uri, parameter_ranges=ranges),
    )
    assert wait_for(api, "tune-parent")["status"] == "Completed"
    wrong = script_tuning(
        "tune-child",
        dataset,
        source_uri,
        parameter_ranges=ranges,
        strategy="Hyperband",
        objective={"metric_name": "objective:loss", "type": "Maximize"},
        warm_start={"parent_tuning_jobs": ["tune-parent"], "type": "IdenticalDataAndAlgorithm"},
    )
    with pytest.raises(KennelError) as refused:
        api.post("/api/v1/tuning-jobs", wrong)
    assert refused.value.status == 400 and "same objective" in refused.value.message
    child = {**wrong, "objective": {"metric_name": "objective:loss", "type": "Minimize"}}
    child.update(max_training_jobs=2, max_parallel_training_jobs=1)
    created = api.post("/api/v1/tuning-jobs", child)
    assert created["strategy"] == "Hyperband"
    job = wait_for(api, "tune-child")
    assert job["status"] == "Completed", job
    assert job["counters"]["completed"] + job["counters"]["pruned"] == 2
    # The report's importances use the study, which holds the parent's 2 trials too.
    page = api.request("GET", "/api/v1/tuning-jobs/tune-child/report")
    assert page.headers["content-type"].startswith("text/html")
    assert "Objective over trials" in page.text and "tune-child-001-" in page.text
    assert "Parameter importance is missing" not in page.text
