"""``kennel tune`` as a user types it, against a real server."""

from __future__ import annotations

import json

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel

pytestmark = pytest.mark.e2e


def test_tune_create_wait_describe_best(server: RunningServer) -> None:
    env = server.env
    kennel(env, "datasets", "make-demo", "cli-tune-digits", "--image-size", "16")
    created = kennel(
        env,
        "tune", "create", "--name", "cli-tune", "--dataset", "cli-tune-digits",
        "--objective", "validation:loss", "--minimize",
        "--continuous", "lr=0.001:0.1:log", "--categorical", "batch-size=16,32",
        "--static", "arch=small-cnn", "--static", "epochs=1", "--static", "image-size=16",
        "--strategy", "Random", "--max-jobs", "2", "--max-parallel", "1", "--wait",
    )  # fmt: skip
    assert "Completed" in created.stdout and "cli-tune-001-" in created.stdout

    described = json.loads(kennel(env, "tune", "describe", "cli-tune", "--json").stdout)
    assert described["status"] == "Completed" and described["counters"]["completed"] == 2
    best = json.loads(kennel(env, "tune", "best", "cli-tune", "--json").stdout)
    assert best["training_job_name"] == described["trials"][0]["training_job_name"]
    assert best["objective"]["metric_name"] == "validation:loss"
    human = kennel(env, "tune", "best", "cli-tune").stdout
    assert best["training_job_name"] in human and "validation:loss =" in human
    assert "cli-tune" in kennel(env, "tune", "list").stdout
    jobs = json.loads(kennel(env, "jobs", "list", "--json").stdout)
    assert {best["training_job_name"]} <= {j["name"] for j in jobs}

    refused = kennel(env, "tune", "create", "--name", "x", check=False)
    assert refused.returncode == 1 and "--objective" in refused.stderr
