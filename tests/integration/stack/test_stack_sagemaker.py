"""``kennel plan/up/down`` on a real server with the SageMaker-side kinds: a data set, a
two-trial tuning job, a two-instance training job from its best trial, a model and an
endpoint with scaling. Run as a user runs them: the CLI in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests._server import RunningServer

from kennel._client import KennelClient
from kennel._errors import NotFoundError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TINY = {"arch": "small-cnn", "epochs": 1, "image-size": 16}
LOCK_SECONDS = 6
"""The stack lock's lease in the tests that kill a run: the next run takes over soon."""


def kennel(
    server: RunningServer,
    *args: str,
    check: bool = True,
    timeout: float = 400,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "kennel", *args],
        env={**server.env, "COLUMNS": "250", **(env or {})},  # wide: reasons on one line
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kennel {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def as_json(server: RunningServer, *args: str) -> Any:
    return json.loads(kennel(server, *args, "--json").stdout)


def small_stack(prefix: str, epochs: int = 1) -> dict[str, Any]:
    data = f"{prefix}-digits"
    return {
        "name": prefix,
        "datasets": {data: {"demo": {"image_size": 16}}},
        "tuning_jobs": {
            "hpo": {
                "dataset": data,
                "objective": {"metric_name": "validation:loss", "type": "Minimize"},
                "parameter_ranges": {
                    "continuous": [
                        {
                            "name": "lr",
                            "min_value": 0.001,
                            "max_value": 0.1,
                            "scaling_type": "Logarithmic",
                        }
                    ],
                    "categorical": [{"name": "batch-size", "values": [16, 32]}],
                },
                "static_hyperparameters": TINY,
                "strategy": "Random",
                "random_seed": 3,
                "max_training_jobs": 2,
                "max_parallel_training_jobs": 2,
            }
        },
        "training_jobs": {
            "train": {
                "dataset": data,
                "hyperparameters_from": "hpo",
                "hyperparameters": {"epochs": epochs},
                "instance_count": 2,
            }
        },
        "models": {"classifier": {"training_job": "train"}},
        "endpoints": {
            f"{prefix}-ep": {
                "variants": [{"model": "classifier"}],
                "scaling": [
                    {
                        "min_capacity": 1,
                        "max_capacity": 3,
                        "policies": [
                            {
                                "name": "invocations",
                                "target_value": 100,
                                "scale_out_cooldown": 30,
                                "scale_in_cooldown": 30,
                            }
                        ],
                    }
                ],
            }
        },
        "outputs": {
            "endpoint": f"${{endpoints.{prefix}-ep.name}}",
            "arn": f"${{endpoints.{prefix}-ep.arn}}",
            "best": "${tuning_jobs.hpo.best_training_job}",
        },
    }


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def actions(steps: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(s["address"], s["physical"]): s["action"] for s in steps}


def scalable_targets(server: RunningServer, endpoint: str) -> list[dict[str, Any]]:
    aas = server.session.client(
        "application-autoscaling", endpoint_url=server.url, region_name="us-east-1"
    )
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    return [t for t in targets if t["ResourceId"].startswith(f"endpoint/{endpoint}/")]


@pytest.fixture
def cleanup(server: RunningServer) -> Iterator[list[Path]]:
    """Stack files to bring down after the test, whatever happened in it."""
    files: list[Path] = []
    yield files
    for file in files:
        kennel(server, "down", str(file), "--yes", check=False)


def test_up_again_plan_a_change_and_down(
    server: RunningServer, api: KennelClient, tmp_path: Path, cleanup: list[Path]
) -> None:
    prefix = f"stk-{uuid.uuid4().hex[:6]}"
    endpoint = f"{prefix}-ep"
    file = write(tmp_path / "stack.yaml", small_stack(prefix))
    cleanup.append(file)

    first = as_json(server, "up", str(file))
    resources = first["resources"]
    assert {s["action"] for s in first["steps"]} == {"create"}, first["steps"]
    assert first["outputs"]["endpoint"] == endpoint
    assert first["outputs"]["arn"].endswith(f":endpoint/{endpoint}")

    # Every resource, as the API has it.
    dataset = api.get(f"/api/v1/datasets/{prefix}-digits")
    assert dataset["status"] == "Available" and dataset["num_classes"] == 10
    tuning_name = resources["tuning_jobs.hpo"]["physical"]
    tuning = api.get(f"/api/v1/tuning-jobs/{tuning_name}")
    assert tuning["status"] == "Completed" and tuning["counters"]["completed"] == 2
    best = tuning["best_training_job"]
    assert first["outputs"]["best"] == best["training_job_name"]
    train_name = resources["training_jobs.train"]["physical"]
    assert train_name.startswith("train-")
    train = api.get(f"/api/v1/training-jobs/{train_name}")
    assert train["status"] == "Completed" and train["instance_count"] == 2
    for key in ("lr", "batch-size", "arch", "image-size"):
        assert train["hyperparameters"][key] == str(best["hyperparameters"][key])
    assert train["hyperparameters"]["epochs"] == "1"
    assert (
        resources["training_jobs.train"]["attributes"]["model_uri"] == train["model_artifact_uri"]
    )
    model_name = resources["models.classifier"]["physical"]
    model = api.get(f"/api/v1/models/{model_name}")
    assert model["source"].endswith(train_name)
    info = api.get(f"/api/v1/endpoints/{endpoint}")
    assert info["status"] == "InService"
    assert info["config_name"].startswith(f"{endpoint}-")
    config = api.get(f"/api/v1/endpoint-configs/{info['config_name']}")
    assert [v["model_name"] for v in config["variants"]] == [model_name]
    (target,) = scalable_targets(server, endpoint)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    scaling = api.get(f"/api/v1/endpoints/{endpoint}/scaling")
    assert "invocations" in json.dumps(scaling)
    described = as_json(server, "stack", "describe", prefix)
    assert described["status"] == "UpComplete"
    assert {r["address"] for r in described["resources"]} == set(resources)
    assert prefix in [s["name"] for s in as_json(server, "stack", "list")]

    # A second run: nothing to do.
    again = as_json(server, "up", str(file))
    assert {s["action"] for s in again["steps"]} == {"none"}, again["steps"]
    assert again["outputs"] == first["outputs"]
    planned = as_json(server, "plan", str(file))
    assert {s["action"] for s in planned["steps"]} == {"none"}

    # A changed training hyperparameter: a new job and model, the endpoint moves to them.
    changed = write(tmp_path / "changed.yaml", small_stack(prefix, epochs=2))
    steps = actions(as_json(server, "plan", str(changed))["steps"])
    by_address = {address: action for (address, _), action in steps.items()}
    assert steps[("training_jobs.train", train_name)] == "delete"
    assert steps[("models.classifier", model_name)] == "delete"
    new_jobs = [
        p for (a, p), act in steps.items() if a == "training_jobs.train" and p != train_name
    ]
    assert len(new_jobs) == 1 and steps[("training_jobs.train", new_jobs[0])] == "replace"
    assert by_address["tuning_jobs.hpo"] == "none"
    assert by_address[f"endpoints.{endpoint}"] == "update"
    human = kennel(server, "plan", str(changed)).stdout
    assert "replace" in human and "hyperparameters.epochs 1 -> 2" in human

    # Down: the endpoint, its configs, the model, the scaling and the data set go; the
    # jobs stay, not running.
    gone = as_json(server, "down", str(file))
    assert {s["address"] for s in gone["steps"]} == set(resources)
    with pytest.raises(NotFoundError):
        api.get(f"/api/v1/endpoints/{endpoint}")
    configs = api.get("/api/v1/endpoint-configs")["endpoint_configs"]
    assert not [c for c in configs if c["name"].startswith(endpoint)]
    with pytest.raises(NotFoundError):
        api.get(f"/api/v1/models/{model_name}")
    with pytest.raises(NotFoundError):
        api.get(f"/api/v1/datasets/{prefix}-digits")
    assert scalable_targets(server, endpoint) == []
    assert api.get(f"/api/v1/training-jobs/{train_name}")["status"] == "Completed"
    assert api.get(f"/api/v1/tuning-jobs/{tuning_name}")["status"] == "Completed"
    with pytest.raises(NotFoundError):
        api.get(f"/api/v1/stacks/{prefix}")


def test_an_up_killed_while_training_resumes_without_a_second_job(
    server: RunningServer, api: KennelClient, tmp_path: Path, cleanup: list[Path]
) -> None:
    """A second up while the first runs is refused (the stack's lock); once the first is
    SIGKILLed its lock expires, and the next up takes it over and resumes."""
    prefix = f"stk-{uuid.uuid4().hex[:6]}"
    data = f"{prefix}-digits"
    stack = {
        "name": prefix,
        "datasets": {data: {"demo": {"image_size": 16}}},
        "training_jobs": {
            "resume": {
                "dataset": data,
                "hyperparameters": {**TINY, "epochs": 30, "lr": 0.05},
                "instance_count": 2,
            }
        },
    }
    file = write(tmp_path / "stack.yaml", stack)
    cleanup.append(file)
    lease = {"KENNEL_STACK_LOCK_SECONDS": str(LOCK_SECONDS)}
    up = subprocess.Popen(
        [sys.executable, "-m", "kennel", "up", str(file)],
        env={**server.env, **lease},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        job = wait_for_training(api, "resume-", deadline=time.monotonic() + 300)
        second = kennel(server, "up", str(file), "--json", check=False, env=lease)
        lock = api.get(f"/api/v1/stacks/{prefix}")["lock"]
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait(30)
    assert job["status"] == "InProgress", job
    assert second.returncode == 1, second.stdout
    assert "ResourceInUse" in second.stderr and "being changed by another run" in second.stderr
    assert f"kennel stack describe {prefix}" in second.stderr
    assert (lock["operation"], lock["expired"]) == ("up", False)
    assert f"(pid {up.pid})" in lock["holder"]
    record = api.get(f"/api/v1/stacks/{prefix}")
    entry = next(r for r in record["resources"] if r["address"] == "training_jobs.resume")
    assert (entry["physical"], entry["status"]) == (job["name"], "Creating")

    wait_for_lock_to_expire(api, prefix, deadline=time.monotonic() + LOCK_SECONDS + 30)
    resumed = as_json(server, "up", str(file))
    assert any("Took over the lock" in w for w in resumed["warnings"]), resumed["warnings"]
    step = next(s for s in resumed["steps"] if s["address"] == "training_jobs.resume")
    assert step["physical"] == job["name"]
    assert step["action"] in ("wait", "none")  # "none": it finished before the second run
    assert api.get(f"/api/v1/training-jobs/{job['name']}")["status"] == "Completed"
    mine = [
        j
        for j in api.get("/api/v1/training-jobs")["training_jobs"]
        if j["name"].startswith("resume-")
    ]
    assert [j["name"] for j in mine] == [job["name"]]
    kennel(server, "down", str(file), "--yes")


def wait_for_lock_to_expire(api: KennelClient, stack: str, deadline: float) -> None:
    """Until the server says the killed run's lock expired (no renewal for its lease)."""
    while time.monotonic() < deadline:
        lock = api.get(f"/api/v1/stacks/{stack}")["lock"]
        if lock is None or lock["expired"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"the lock of stack {stack} did not expire")


def wait_for_training(api: KennelClient, prefix: str, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        jobs = api.get("/api/v1/training-jobs")["training_jobs"]
        found = [j for j in jobs if j["name"].startswith(prefix)]
        if (
            found
            and found[0]["status"] == "InProgress"
            and found[0]["secondary_status"] == ("Training")
        ):
            return dict(found[0])
        if found and found[0]["status"] != "InProgress":
            return dict(found[0])
        time.sleep(0.2)
    raise AssertionError(f"no training job {prefix}* started")


def test_sigterm_stops_up_cleanly_and_down_stops_the_running_job(
    server: RunningServer, api: KennelClient, tmp_path: Path, cleanup: list[Path]
) -> None:
    prefix = f"stk-{uuid.uuid4().hex[:6]}"
    data = f"{prefix}-digits"
    stack = {
        "name": prefix,
        "datasets": {data: {"demo": {"image_size": 16}}},
        "training_jobs": {
            "long": {"dataset": data, "hyperparameters": {**TINY, "epochs": 500, "lr": 0.05}}
        },
    }
    file = write(tmp_path / "stack.yaml", stack)
    cleanup.append(file)
    up = subprocess.Popen(
        [sys.executable, "-m", "kennel", "up", str(file)],
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job = wait_for_training(api, "long-", deadline=time.monotonic() + 300)
    finally:
        up.send_signal(signal.SIGTERM)
        _, err = up.communicate(timeout=30)
    assert up.returncode == 130, err
    assert "Interrupted" in err and "kennel up" in err
    assert api.get(f"/api/v1/stacks/{prefix}")["status"] == "UpInterrupted"
    assert api.get(f"/api/v1/training-jobs/{job['name']}")["status"] == "InProgress"

    gone = as_json(server, "down", str(file))
    assert [s["address"] for s in gone["steps"]] == ["training_jobs.long", f"datasets.{data}"]
    assert api.get(f"/api/v1/training-jobs/{job['name']}")["status"] == "Stopped"
    with pytest.raises(NotFoundError):
        api.get(f"/api/v1/datasets/{data}")
