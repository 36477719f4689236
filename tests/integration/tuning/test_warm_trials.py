"""Tuning trials on warm slots (KENNEL_WARM_TRIALS=1), and the tuning job's global budget.

A server of its own: warm trials are opt-in, and the shared server runs them cold.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests._server import RunningServer, start_server, stop_server
from tests._uploads import upload_sources

from kennel._client import KennelClient

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / "scripts"
OBJECTIVE = {"name": "objective:loss", "regex": r"objective_loss=([0-9.]+)"}
FIRST_LINE = re.compile(r"first_line=([0-9.]+)")


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("kennel-warm"), KENNEL_WARM_TRIALS="1")
    yield running
    code = stop_server(running)
    assert code == 0, f"server exit code {code}:\n{running.log.read_text()[-4000:]}"
    assert zygotes() == [], "warm slots outlived the server"


@pytest.fixture(scope="module")
def wapi(warm_server: RunningServer) -> Iterator[KennelClient]:
    with warm_server.client() as client:
        client.post("/api/v1/datasets", {"name": "warm-digits", "demo": {"image_size": 16}})
        yield client


@pytest.fixture(scope="module")
def source_uri(warm_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    return upload_sources(
        warm_server, tmp_path_factory.mktemp("warm-src"), SCRIPTS / "warm_trial.py"
    )


def zygotes() -> list[str]:
    """Zygote processes on this machine (the test servers' only ones)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "kennel.training._zygote" in line]


def spec(name: str, source_uri: str, values: list[str], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "dataset": "warm-digits",
        "entry_point": "warm_trial.py",
        "source_uri": source_uri,
        "metric_definitions": [OBJECTIVE],
        "objective": {"metric_name": "objective:loss", "type": "Minimize"},
        "strategy": "Grid",
        "parameter_ranges": {"categorical": [{"name": "quality", "values": values}]},
        "max_training_jobs": len(values),
        "max_parallel_training_jobs": 2,
    }
    body.update(extra)
    return body


def watch(api: KennelClient, name: str, timeout: float = 180) -> tuple[dict[str, Any], int]:
    """Wait for the tuning job to end; also the most trials seen training at once."""
    most = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/api/v1/tuning-jobs/{name}")
        training = [
            api.get(f"/api/v1/training-jobs/{t['training_job_name']}")
            for t in job["trials"]
            if t["status"] == "InProgress"
        ]
        most = max(most, sum(1 for t in training if t["secondary_status"] == "Training"))
        if job["status"] not in ("InProgress", "Stopping"):
            return job, most
        time.sleep(0.2)
    raise AssertionError(f"{name} did not end in {timeout} s")


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_trials_run_side_by_side_on_warm_slots_and_start_fast(
    wapi: KennelClient, source_uri: str
) -> None:
    wapi.post("/api/v1/tuning-jobs", spec("warm-four", source_uri, ["a", "b", "c", "d"]))
    job, most = watch(wapi, "warm-four")
    assert job["status"] == "Completed", job
    assert job["counters"]["completed"] == 4
    assert most == 2, "two trials never trained at the same time"
    trials = sorted(job["trials"], key=lambda t: t["number"])
    latencies = []
    for trial in trials:
        name = trial["training_job_name"]
        training = wapi.get(f"/api/v1/training-jobs/{name}")
        assert training["status"] == "Completed"
        assert training["warm_slot"].startswith("warm-four-slot-")
        assert training["placement"]["cpus_per_instance"] == 1.0  # 2 x ml.m5.large on 2 cores
        log = wapi.get(f"/api/v1/training-jobs/{name}/logs", params={"host": "algo-1"})["data"]
        assert log.count("first_line=") == 1 and log.count("objective_loss=") == 4, log
        series = wapi.get(f"/api/v1/training-jobs/{name}/metrics")["metrics"]
        assert len(series["objective:loss"]) == 4
        assert training["final_metrics"]["objective:loss"] == trial["objective"]
        first_line = float(FIRST_LINE.findall(log)[0])
        assert seconds(training["started_at"]) <= first_line
        latencies.append(first_line - seconds(training["slot_freed_at"]))
    later = latencies[2:]  # the first two took slots that were free from the start
    print(f"\nwarm trial start latency (slot free -> first line): {later}")
    assert max(later) < 2.0, latencies
    assert zygotes() == [], "the tuning job ended but its warm slots still run"


def test_stopping_a_trial_stops_only_that_trial(wapi: KennelClient, source_uri: str) -> None:
    body = spec(
        "warm-stop",
        source_uri,
        ["a", "b", "c"],
        static_hyperparameters={"epochs": 60, "epoch-seconds": 0.5},
    )
    wapi.post("/api/v1/tuning-jobs", body)
    deadline = time.monotonic() + 120
    while True:
        job = wapi.get("/api/v1/tuning-jobs/warm-stop")
        names = [t["training_job_name"] for t in job["trials"]]
        states = [wapi.get(f"/api/v1/training-jobs/{n}")["secondary_status"] for n in names]
        if states.count("Training") == 2:
            break
        assert time.monotonic() < deadline, f"two trials never trained at once: {states}"
        time.sleep(0.2)
    stopped = wapi.post(f"/api/v1/training-jobs/{names[0]}/stop", {})
    assert stopped["status"] == "Stopping"
    deadline = time.monotonic() + 60
    while len(wapi.get("/api/v1/tuning-jobs/warm-stop")["trials"]) < 3:
        assert time.monotonic() < deadline, "the freed slot was not reused"
        time.sleep(0.2)
    assert wapi.get(f"/api/v1/training-jobs/{names[0]}")["status"] == "Stopped"
    assert wapi.get(f"/api/v1/training-jobs/{names[1]}")["status"] == "InProgress"
    third = wapi.get("/api/v1/tuning-jobs/warm-stop")["trials"]
    assert len(third) == 3
    wapi.post("/api/v1/tuning-jobs/warm-stop/stop", {})
    job, _ = watch(wapi, "warm-stop", timeout=90)
    assert job["status"] == "Stopped"
    assert job["counters"]["stopped"] == 3
    assert zygotes() == []


def test_the_runtime_budget_ends_the_job_cleanly(wapi: KennelClient, source_uri: str) -> None:
    body = spec(
        "warm-budget",
        source_uri,
        ["a", "b", "c", "d"],
        static_hyperparameters={"epochs": 200, "epoch-seconds": 0.5},
        max_tuning_runtime_seconds=15,
    )
    started = time.monotonic()
    wapi.post("/api/v1/tuning-jobs", body)
    job, _ = watch(wapi, "warm-budget", timeout=120)
    assert job["status"] == "Completed", job
    assert job["completion_reason"] == "MaxRuntimeExceeded"
    assert "Budget reached" in job["status_message"]
    assert job["resource_limits"]["max_tuning_runtime_seconds"] == 15
    assert time.monotonic() - started < 60
    assert len(job["trials"]) == 2 and job["counters"]["stopped"] == 2
    for trial in job["trials"]:
        assert wapi.get(f"/api/v1/training-jobs/{trial['training_job_name']}")["status"] == (
            "Stopped"
        )
    assert zygotes() == []
