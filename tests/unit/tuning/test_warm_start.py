"""Warm start: parents checked, their completed trials seeded into a real Optuna study
(SQLite optuna.db in a temp home), with the controller against a stand-in training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from tests.unit.tuning.test_service import FakeTraining, make, wait

from kennel._errors import NotFoundError, ValidationError
from kennel._settings import Settings
from kennel.store import Database, Dataset
from kennel.tuning import TuningJobSpec, TuningService
from kennel.tuning._warm_start import check_parents, seed_trials


@pytest.fixture
def service(tmp_path: Path) -> TuningService:
    db = Database(f"sqlite:///{tmp_path / 'kennel.db'}")
    db.upgrade()
    with db.session() as session:
        session.add(Dataset(name="digits", status="Available", source="test"))
    settings = Settings(home=tmp_path, warm_trials=False)  # the fake trains cold
    return TuningService(db, settings, FakeTraining(), poll_seconds=0.01)  # type: ignore[arg-type]


def child(kind: str, parents: list[str], **extra: Any) -> TuningJobSpec:
    body: dict[str, Any] = {
        "name": "child",
        "warm_start": {"parent_tuning_jobs": parents, "type": kind},
        "max_training_jobs": 2,
        "max_parallel_training_jobs": 1,
    }
    body.update(extra)
    return make(0.02, **body)


def record(lr: Any, loss: float | None, **hyperparameters: Any) -> dict[str, Any]:
    return {
        "training_job_name": f"p-{lr}",
        "hyperparameters": {"lr": lr, **hyperparameters},
        "objective": loss,
        "objective_status": "Succeeded" if loss is not None else "Failed",
    }


PARENT_TRIALS = [record(0.05, 0.05), record("0.03", 0.03), record(0.5, 0.5), record(0.001, None)]


def test_identical_skips_trials_outside_the_new_ranges() -> None:
    seeding = seed_trials(child("IdenticalDataAndAlgorithm", ["p"]), PARENT_TRIALS)
    assert [t.params for t in seeding.trials] == [{"lr": 0.05}, {"lr": 0.03}]
    assert [t.value for t in seeding.trials] == [0.05, 0.03]
    assert seeding.trials[0].user_attrs == {"warm_start_from": "p-0.05"}
    assert seeding.skipped == 1  # lr 0.5 is outside 0.02..0.1; the failed trial is no evidence
    assert "2 parent trials seeded, 1 outside the new ranges skipped" in seeding.summary()


def test_transfer_learning_keeps_a_trial_without_its_out_of_range_values() -> None:
    spec = child(
        "TransferLearning",
        ["p"],
        parameter_ranges={
            "continuous": [{"name": "lr", "min_value": 0.02, "max_value": 0.1}],
            "categorical": [{"name": "batch-size", "values": [16, 32]}],
            "integer": [{"name": "epochs", "min_value": 1, "max_value": 5}],
        },
    )
    trials = [record(0.5, 0.5, **{"batch-size": "32", "epochs": 9}), record(0.04, 0.04)]
    seeding = seed_trials(spec, trials)
    # Never clamped into range: the out-of-range lr and epochs are left out, "32" is 32.
    assert [t.params for t in seeding.trials] == [{"batch-size": 32}, {"lr": 0.04}]
    assert seeding.skipped == 0


def test_reverse_logarithmic_ranges_are_seeded_as_one_minus_the_value() -> None:
    spec = child(
        "IdenticalDataAndAlgorithm",
        ["p"],
        parameter_ranges={
            "continuous": [
                {
                    "name": "momentum",
                    "min_value": 0.9,
                    "max_value": 0.999,
                    "scaling_type": "ReverseLogarithmic",
                }
            ]
        },
    )
    seeding = seed_trials(spec, [{**record(0, 0.1), "hyperparameters": {"momentum": 0.99}}])
    assert seeding.trials[0].params == {"1-momentum": pytest.approx(0.01)}


def parent_view(**changes: Any) -> dict[str, Any]:
    spec = make(0.02)
    view: dict[str, Any] = {
        "name": "p",
        "status": "Completed",
        "objective": spec.objective.model_dump(),
        "spec": spec.model_dump(mode="json"),
        "trials": [],
    }
    view.update(changes)
    return view


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "InProgress"}, "warm start needs parents that are Completed or Stopped"),
        ({"status": "Failed"}, "is Failed"),
        (
            {"objective": {"metric_name": "validation:acc", "type": "Maximize"}},
            "the same objective metric and type",
        ),
        ({"spec": {**make(0.02).model_dump(mode="json"), "dataset": "cats"}}, "differs in dataset"),
    ],
)
def test_parents_that_cannot_inform_the_search_are_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        check_parents(child("IdenticalDataAndAlgorithm", ["p"]), [parent_view(**changes)])
    if "spec" in changes:  # TransferLearning allows other data
        check_parents(child("TransferLearning", ["p"]), [parent_view(**changes)])


def test_spec_rules() -> None:
    with pytest.raises(ValueError, match="more than once"):
        child("TransferLearning", ["p", "p"])
    with pytest.raises(ValueError, match="from itself"):
        child("TransferLearning", ["child"])
    with pytest.raises(ValueError, match="at most 5"):
        child("TransferLearning", [f"p{i}" for i in range(6)])


def test_the_new_study_starts_with_the_parents_trials(service: TuningService) -> None:
    service.create(make(0.02, name="parent", max_training_jobs=4))
    parent = wait(service, "parent")
    assert parent["status"] == "Completed"
    service.create(child("IdenticalDataAndAlgorithm", ["parent"]))
    job = wait(service, "child")
    assert job["status"] == "Completed", job
    study = optuna.load_study(study_name="child", storage=service.storage())
    seeded = [t for t in study.trials if "warm_start_from" in t.user_attrs]
    assert {t.user_attrs["warm_start_from"] for t in seeded} == {
        t["training_job_name"] for t in parent["trials"]
    }
    # The parents' trials inform the search but are not the new job's trials.
    assert len(study.trials) == 4 + 2 and len(job["trials"]) == 2


def test_a_missing_parent_is_refused_before_anything_starts(service: TuningService) -> None:
    with pytest.raises(ValidationError, match="'nope' \\(warm_start\\) does not exist"):
        service.create(child("TransferLearning", ["nope"]))
    with pytest.raises(NotFoundError):
        service.describe("child")
