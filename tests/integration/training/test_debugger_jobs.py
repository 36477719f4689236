"""Debugger rules and the profiler on real training jobs (real server, Ray, scripts).

The rules' own logic is unit-tested against runs built to trigger each one
(tests/unit/debugger); here the platform's part: the job's spec reaches the script's
hook, the instance samples the system, the server copies the data while the job runs,
evaluates the rules, shows their statuses, stops a job whose rule says so, keeps the data
in the artifact store and renders the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests._uploads import upload_sources
from tests.integration.training.test_training_jobs import wait_for

from kennel._client import KennelClient
from kennel._errors import KennelError

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="module")
def hooked_source(server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return upload_sources(server, tmp_path_factory.mktemp("hooked"), SCRIPTS / "hooked.py")


def statuses(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["rule_configuration_name"]: s for s in job["rule_evaluations"]}


def hooked_job(name: str, source: str, **hyperparameters: Any) -> dict[str, Any]:
    return {
        "name": name,
        "entry_point": "hooked.py",
        "source_uri": source,
        "hyperparameters": hyperparameters,
        "debugger": {
            "save_interval": 5,
            "rules": [
                {"rule": "exploding_tensor"},
                {"rule": "LossNotDecreasing"},
            ],
        },
        "profiler": {"interval_ms": 100, "rules": [{"rule": "IOBottleneck"}]},
    }


def test_a_healthy_script_ends_with_no_issues_and_its_data_kept(
    api: KennelClient, server: Any, hooked_source: str
) -> None:
    created = api.post("/api/v1/training-jobs", hooked_job("dbg-healthy", hooked_source))
    assert {s["status"] for s in created["rule_evaluations"]} == {"InProgress"}
    job = wait_for(api, "dbg-healthy")
    assert job["status"] == "Completed", job["failure_reason"]
    found = statuses(job)
    assert set(found) == {"ExplodingTensor", "LossNotDecreasing", "IOBottleneck"}
    for name, status in found.items():
        assert status["status"] == "NoIssuesFound", (name, status)
    # The data went to the artifact store beside the model, by host.
    store = server.home / "artifacts" / "training-jobs" / "dbg-healthy" / "output"
    saved = {p.name for p in (store / "debug-output" / "algo-1").iterdir()}
    assert {"losses.jsonl", "tensors.jsonl", "framework.jsonl", "system.jsonl"} <= saved
    page = api.request("GET", "/api/v1/training-jobs/dbg-healthy/report").text
    assert "dbg-healthy" in page and "IOBottleneck" in page


def test_a_rule_with_stop_training_stops_the_job(api: KennelClient, hooked_source: str) -> None:
    # The loader's sleep makes the whole run take 100 s or more, so the rule has long
    # enough to fire on a busy machine: a job that ends before its rule fires is
    # Completed, as on SageMaker.
    spec = hooked_job(
        "dbg-explode", hooked_source, lr=1e12, epochs=40, steps=50, **{"loader-sleep": 0.05}
    )
    spec["debugger"]["rules"][0]["actions"] = ["StopTraining"]
    api.post("/api/v1/training-jobs", spec)
    job = wait_for(api, "dbg-explode")
    assert job["status"] == "Stopped", job
    assert "ExplodingTensor" in job["status_message"] or "ExplodingTensor" in str(
        job["status_transitions"]
    )
    exploding = statuses(job)["ExplodingTensor"]
    assert exploding["status"] == "IssuesFound"
    assert exploding["status_details"]
    # It stopped well before its 20 epochs x 50 steps.
    assert job["billable_seconds"] < 60


def test_a_slow_data_loader_is_an_io_bottleneck(api: KennelClient, hooked_source: str) -> None:
    # 0.1 s a batch: the script sleeps most of the time even when a busy machine makes
    # its short bursts of work wait for a core (which counts as its CPU).
    spec = hooked_job("dbg-io", hooked_source, **{"loader-sleep": 0.1, "steps": 40})
    api.post("/api/v1/training-jobs", spec)
    job = wait_for(api, "dbg-io")
    assert job["status"] == "Completed", job["failure_reason"]
    io = statuses(job)["IOBottleneck"]
    assert io["status"] == "IssuesFound", io
    assert io["advice"]


def test_one_slow_instance_of_two_is_a_load_imbalance(
    api: KennelClient, hooked_source: str
) -> None:
    spec = hooked_job(
        "dbg-unbalanced", hooked_source, **{"loader-sleep": 0.03, "slow-rank": 1, "steps": 30}
    )
    spec.update(
        instance_count=2, profiler={"interval_ms": 100, "rules": [{"rule": "LoadBalancing"}]}
    )
    api.post("/api/v1/training-jobs", spec)
    job = wait_for(api, "dbg-unbalanced")
    assert job["status"] == "Completed", job["failure_reason"]
    balance = statuses(job)["LoadBalancing"]
    assert balance["status"] == "IssuesFound", balance
    assert "algo-2" in balance["status_details"]


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"debugger": {"rules": [{"rule": "no_such_rule"}]}}, "VanishingGradient"),
        ({"debugger": {"rules": [{"rule": "dead_relu"}]}}, "activations"),
        ({"debugger": {"rules": [{"rule": "IOBottleneck"}]}}, "profiler.rules"),
        ({"debugger": {"rules": [{"rule": "overfit", "parameters": {"nope": 1}}]}}, "nope"),
        ({"profiler": {"interval_ms": 123}}, "interval_ms"),
    ],
)
def test_bad_debugger_configuration_is_refused_before_the_job_exists(
    api: KennelClient, hooked_source: str, block: dict[str, Any], words: str
) -> None:
    spec = {"name": "dbg-bad", "entry_point": "hooked.py", "source_uri": hooked_source, **block}
    with pytest.raises(KennelError) as caught:
        api.post("/api/v1/training-jobs", spec)
    assert caught.value.status == 400
    assert words in str(caught.value)
    with pytest.raises(KennelError) as missing:
        api.get("/api/v1/training-jobs/dbg-bad")
    assert missing.value.status == 404
