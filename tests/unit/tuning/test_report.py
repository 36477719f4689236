"""The report page from a synthetic tuning job and study: no server, no training."""

from __future__ import annotations

import re
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from kennel.tuning import tuning_report_html
from kennel.tuning._report import objective_figure, parameter_importances

LR = FloatDistribution(0.001, 0.1, log=True)
BATCH = CategoricalDistribution([16, 32])


def trial(number: int, objective: float | None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "number": number,
        "training_job_name": f"t-{number + 1:03d}-abcd1234",
        "status": "Completed",
        "hyperparameters": {"lr": 0.01 * (number + 1), "batch-size": 16},
        "objective": objective,
        "objective_status": "Succeeded" if objective is not None else "Failed",
        "pruned": False,
        "failure_reason": None,
    }
    record.update(extra)
    return record


def job(trials: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(
        trials, key=lambda t: (t["objective_status"] != "Succeeded", t["objective"] or 0)
    )
    best = next((t for t in ranked if t["objective_status"] == "Succeeded"), None)
    return {
        "name": "t",
        "status": "Completed",
        "status_message": "All training jobs ran.",
        "failure_reason": None,
        "strategy": "Bayesian",
        "objective": {"metric_name": "validation:loss", "type": "Minimize"},
        "counters": {"completed": 3, "failed": 1, "pruned": 1},
        "best_training_job": best
        and {
            "training_job_name": best["training_job_name"],
            "hyperparameters": best["hyperparameters"],
            "objective": {"metric_name": "validation:loss", "type": "Minimize", "value": 0.2},
        },
        "trials": ranked,
    }


def study_with(values: list[tuple[float, int, float]]) -> optuna.Study:
    study = optuna.create_study(direction="minimize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                value=value,
                params={"lr": lr, "batch-size": batch},
                distributions={"lr": LR, "batch-size": BATCH},
            )
            for lr, batch, value in values
        ]
    )
    return study


SEARCH = [
    trial(0, 0.5),
    trial(1, 0.2),
    trial(2, None, status="Failed", failure_reason="AlgorithmError: <boom>"),
    trial(3, 3.0, status="Stopped", pruned=True, objective_status="Failed"),
    trial(4, 0.4),
]


def test_the_page_is_self_contained_with_all_three_parts() -> None:
    study = study_with([(0.01, 16, 0.5), (0.02, 32, 0.2), (0.05, 16, 0.4), (0.09, 32, 0.1)])
    page = tuning_report_html(job(SEARCH), study)
    assert page.startswith("<!DOCTYPE html>")
    # plotly.js inlined once (works offline), no script fetched from a CDN.
    assert page.count("Plotly.newPlot") == 2
    assert '<script src="https://cdn.plot.ly' not in page and len(page) > 1_000_000
    assert "Objective over trials" in page and "Parameter importance" in page
    assert "fANOVA" in page and "Parameter importance is missing" not in page
    # The table: best objective first, failed trial last, with its reason escaped.
    rows = re.findall(r"<td>(t-\d{3}-abcd1234)</td>", page)
    assert rows == ["t-002-abcd1234", "t-005-abcd1234", "t-001-abcd1234", "t-003-abcd1234",
                    "t-004-abcd1234"]  # fmt: skip
    assert 'class="best"' in page and "AlgorithmError: &lt;boom&gt;" in page
    assert "(early stopped)" in page


def test_objective_chart_marks_best_so_far_pruned_and_failed() -> None:
    figure = objective_figure(job(SEARCH))
    traces = {t.name: t for t in figure.data}
    assert list(traces["completed"].x) == [1, 2, 5]
    assert list(traces["best so far"].y) == [0.5, 0.2, 0.2]
    assert list(traces["early stopped (last value)"].x) == [4]
    failed_lines = [s for s in figure.layout.shapes if s.x0 == 3]
    assert len(failed_lines) == 1


def test_maximize_best_so_far_goes_up() -> None:
    body = job([trial(0, 0.5), trial(1, 0.2), trial(2, 0.9)])
    body["objective"]["type"] = "Maximize"
    assert list(objective_figure(body).data[-1].y) == [0.5, 0.5, 0.9]


def test_importance_says_why_it_is_missing() -> None:
    importances, why = parameter_importances(study_with([(0.01, 16, 0.5)]))
    assert importances == {} and "at least 2 completed trials" in why and "has 1" in why
    importances, why = parameter_importances(None)
    assert importances == {} and "study was not found" in why
    page = tuning_report_html(job([trial(0, 0.5)]), study_with([(0.01, 16, 0.5)]))
    assert "at least 2 completed trials" in page and page.count("Plotly.newPlot") == 1


def test_importance_follows_the_parameter_that_drives_the_objective() -> None:
    values = [(lr, batch, lr * 10) for lr in (0.002, 0.01, 0.03, 0.08) for batch in (16, 32)]
    importances, why = parameter_importances(study_with(values))
    assert why == ""
    assert set(importances) == {"lr", "batch-size"}
    assert importances["lr"] > importances["batch-size"]
    assert abs(sum(importances.values()) - 1) < 1e-6
