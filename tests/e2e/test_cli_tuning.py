"""``kennel tune`` as a user types it, against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_tune_create_wait_describe_best_report_deploy(
    server: RunningServer, tmp_path: Path
) -> None:
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

    report = tmp_path / "report.html"
    described_again = kennel(env, "tune", "describe", "cli-tune", "--html", str(report))
    assert "Wrote the report" in described_again.stdout
    page = report.read_text()
    assert "Objective over trials" in page and best["training_job_name"] in page
    assert "Parameter importance" in page

    deployed = kennel(env, "tune", "deploy", "cli-tune", "--name", "cli-tune-ep", "--json")
    endpoint = json.loads(deployed.stdout)
    assert endpoint["status"] == "InService", endpoint
    assert endpoint["production_variants"][0]["model_name"] == best["training_job_name"]
    kennel(env, "endpoints", "delete", "cli-tune-ep")
    missing = kennel(env, "tune", "deploy", "no-such-tuning", "--name", "x", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr

    refused = kennel(env, "tune", "create", "--name", "x", check=False)
    assert refused.returncode == 1 and "--objective" in refused.stderr
