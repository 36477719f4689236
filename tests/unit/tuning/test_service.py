"""The controller against a stand-in TrainingService (same public methods), no Ray."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from kennel._errors import ConflictError, ValidationError
from kennel._settings import Settings
from kennel.store import Database, Dataset
from kennel.training import TrainingJobSpec
from kennel.tuning import TuningJobSpec, TuningService


class FakeTraining:
    """Jobs end at once: lr < 0.01 fails, the rest complete with loss = lr."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def create(self, spec: TrainingJobSpec) -> dict[str, Any]:
        assert spec.name
        lr = float(spec.hyperparameters["lr"])
        status = "Failed" if lr < 0.01 else "Completed"
        self.jobs[spec.name] = {
            "name": spec.name,
            "status": status,
            "status_message": "",
            "failure_reason": "AlgorithmError: lr too small" if status == "Failed" else None,
            "ended_at": None,
            "series": {"validation:loss": [{"value": 1.0}, {"value": lr}]},
        }
        return self.jobs[spec.name]

    def describe(self, name: str) -> dict[str, Any]:
        return self.jobs[name]

    def metrics(self, name: str) -> dict[str, list[dict[str, Any]]]:
        series: dict[str, list[dict[str, Any]]] = self.jobs[name]["series"]
        return series

    def stop(self, name: str) -> dict[str, Any]:
        raise ValidationError("already ended")


@pytest.fixture
def service(tmp_path: Path) -> TuningService:
    db = Database(f"sqlite:///{tmp_path / 'kennel.db'}")
    db.upgrade()
    with db.session() as session:
        session.add(Dataset(name="digits", status="Available", source="test"))
    # The fake trains on the cold path; warm slots are tested on a real server.
    settings = Settings(home=tmp_path, warm_trials=False)
    return TuningService(db, settings, FakeTraining(), poll_seconds=0.01)  # type: ignore[arg-type]


def wait(service: TuningService, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = service.describe(name)
        if job["status"] not in ("InProgress", "Stopping"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"{name} did not end")


def make(lr_min: float, **extra: Any) -> TuningJobSpec:
    return TuningJobSpec.model_validate(
        {
            "name": "t",
            "dataset": "digits",
            "objective": {"metric_name": "validation:loss", "type": "Minimize"},
            "parameter_ranges": {
                "continuous": [{"name": "lr", "min_value": lr_min, "max_value": 0.1}]
            },
            "strategy": "Random",
            "random_seed": 1,
            "max_training_jobs": 6,
            "max_parallel_training_jobs": 2,
            **extra,
        }
    )


def test_completes_with_the_best_trial_first(service: TuningService, tmp_path: Path) -> None:
    service.create(make(0.02))
    job = wait(service, "t")
    assert job["status"] == "Completed", job
    assert job["counters"]["completed"] == 6
    values = [t["objective"] for t in job["trials"]]
    assert values == sorted(values)
    best = job["best_training_job"]
    assert best["training_job_name"] == job["trials"][0]["training_job_name"]
    assert best["objective"]["value"] == values[0]
    # Optuna's tables are in their own file, kennel's alembic_version is untouched.
    assert (tmp_path / "optuna.db").exists()
    assert "studies" not in inspect(service.db.engine).get_table_names()
    assert service.db.revision() == service.db.head_revision()
    with pytest.raises(ConflictError):
        service.create(make(0.02))


def test_failures_within_the_limit_do_not_sink_the_job(service: TuningService) -> None:
    service.create(make(0.001, max_failed_training_jobs=6))
    job = wait(service, "t")
    assert job["status"] == "Completed"
    assert job["counters"]["failed"] >= 1
    failed = [t for t in job["trials"] if t["status"] == "Failed"]
    assert failed and failed[0]["failure_reason"].startswith("AlgorithmError")
    assert job["trials"][-1]["objective_status"] in ("Failed", "Succeeded")


def test_failures_over_the_limit_fail_the_job(service: TuningService) -> None:
    service.create(make(0.001, max_failed_training_jobs=0))
    job = wait(service, "t")
    assert job["status"] == "Failed"
    assert "more than the limit of 0" in job["failure_reason"]


def test_recover_marks_lost_tuning_jobs_failed(service: TuningService) -> None:
    service.create(make(0.02, max_training_jobs=1, max_parallel_training_jobs=1))
    wait(service, "t")
    with service.db.session() as session:
        from kennel.store import TuningJob

        row = session.get(TuningJob, "t")
        assert row is not None
        row.status = "InProgress"
    assert service.recover() == ["t"]
    assert "server stopped" in service.describe("t")["failure_reason"]


def test_grid_covers_the_grid_once_and_ends(service: TuningService) -> None:
    spec = TuningJobSpec.model_validate(
        {
            "name": "g",
            "dataset": "digits",
            "objective": {"metric_name": "validation:loss", "type": "Minimize"},
            "parameter_ranges": {"categorical": [{"name": "lr", "values": [0.05, 0.02, 0.03]}]},
            "strategy": "Grid",
            "max_training_jobs": 10,
            "max_parallel_training_jobs": 2,
        }
    )
    service.create(spec)
    job = wait(service, "g")
    assert job["status"] == "Completed", job
    assert sorted(t["hyperparameters"]["lr"] for t in job["trials"]) == [0.02, 0.03, 0.05]
    assert job["best_training_job"]["hyperparameters"] == {"lr": 0.02}
