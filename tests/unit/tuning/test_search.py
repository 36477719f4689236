"""The tuning rules without a server: spec validation, distributions, names, objective,
completion criteria and the failure limit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from pydantic import ValidationError

from kennel.tuning import TuningJobSpec, _search
from kennel.tuning._storage import storage_url


def spec(**changes: Any) -> TuningJobSpec:
    body: dict[str, Any] = {
        "name": "t1",
        "dataset": "digits",
        "objective": {"metric_name": "validation:loss", "type": "Minimize"},
        "parameter_ranges": {
            "continuous": [
                {"name": "lr", "min_value": 0.001, "max_value": 0.1, "scaling_type": "Logarithmic"}
            ],
            "categorical": [{"name": "batch-size", "values": [16, 32]}],
        },
        "max_training_jobs": 4,
        "max_parallel_training_jobs": 2,
    }
    body.update(changes)
    return TuningJobSpec.model_validate(body)


def ranges(**kinds: list[dict[str, Any]]) -> dict[str, Any]:
    return {"continuous": [], "integer": [], "categorical": [], **kinds}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"strategy": "Grid"}, "Grid strategy takes only categorical and integer"),
        (
            {
                "parameter_ranges": ranges(
                    continuous=[{"name": "lr", "min_value": 1, "max_value": 1}]
                )
            },
            "must be below",
        ),
        (
            {
                "parameter_ranges": ranges(
                    continuous=[
                        {
                            "name": "lr",
                            "min_value": 0,
                            "max_value": 1,
                            "scaling_type": "Logarithmic",
                        }
                    ]
                )
            },
            "Logarithmic scaling needs min_value > 0",
        ),
        (
            {
                "parameter_ranges": ranges(
                    continuous=[
                        {
                            "name": "m",
                            "min_value": 0.5,
                            "max_value": 1.5,
                            "scaling_type": "ReverseLogarithmic",
                        }
                    ]
                )
            },
            "max_value < 1",
        ),
        (
            {
                "parameter_ranges": ranges(
                    integer=[
                        {
                            "name": "e",
                            "min_value": 1,
                            "max_value": 5,
                            "scaling_type": "ReverseLogarithmic",
                        }
                    ]
                )
            },
            "continuous ranges only",
        ),
        (
            {
                "parameter_ranges": ranges(
                    continuous=[
                        {"name": "lr", "min_value": 0, "max_value": 1, "scaling_type": "Cubic"}
                    ]
                )
            },
            "scaling_type",
        ),
        ({"parameter_ranges": ranges()}, "parameter_ranges is empty"),
        ({"static_hyperparameters": {"lr": 0.1}}, "both static and tuned"),
        ({"max_parallel_training_jobs": 5}, "more than max_training_jobs"),
        ({"objective": {"metric_name": "nope", "type": "Minimize"}}, "has no metric definition"),
        ({"name": "x" * 33}, "at most 32"),
        ({"name": "bad_name"}, "letters, digits and hyphens"),
        ({"strategy": "Simulated annealing"}, "strategy"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**changes)
    assert expected in str(caught.value)


def test_grid_over_integer_and_categorical_is_accepted_and_sized() -> None:
    grid = spec(
        strategy="Grid",
        parameter_ranges=ranges(
            integer=[{"name": "epochs", "min_value": 1, "max_value": 3}],
            categorical=[{"name": "opt", "values": ["sgd", "adam"]}],
        ),
        max_training_jobs=10,
    )
    assert _search.grid_size(grid) == 6
    assert _search.trial_budget(grid) == 6
    assert isinstance(_search.sampler(grid), optuna.samplers.GridSampler)


def test_distributions_follow_the_scaling_types() -> None:
    s = spec(
        parameter_ranges=ranges(
            continuous=[
                {"name": "lr", "min_value": 0.001, "max_value": 0.1, "scaling_type": "Logarithmic"},
                {"name": "wd", "min_value": 0.0, "max_value": 0.1, "scaling_type": "Linear"},
                {"name": "drop", "min_value": 0.0, "max_value": 0.5},
                {
                    "name": "m",
                    "min_value": 0.9,
                    "max_value": 0.999,
                    "scaling_type": "ReverseLogarithmic",
                },
            ],
            integer=[
                {"name": "epochs", "min_value": 1, "max_value": 8},
                {"name": "width", "min_value": 8, "max_value": 256, "scaling_type": "Logarithmic"},
            ],
            categorical=[{"name": "batch-size", "values": [16, 32]}],
        )
    )
    d = _search.distributions(s)
    assert d["lr"] == FloatDistribution(0.001, 0.1, log=True)
    assert d["wd"] == FloatDistribution(0.0, 0.1)
    assert d["drop"] == FloatDistribution(0.0, 0.5)  # Auto is Linear
    assert d["1-m"] == FloatDistribution(1 - 0.999, 1 - 0.9, log=True)
    assert d["epochs"] == IntDistribution(1, 8)
    assert d["width"] == IntDistribution(8, 256, log=True)
    assert d["batch-size"] == CategoricalDistribution([16, 32])


def test_reverse_logarithmic_values_come_back_near_one_and_static_ones_merge() -> None:
    s = spec(
        parameter_ranges=ranges(
            continuous=[
                {
                    "name": "m",
                    "min_value": 0.9,
                    "max_value": 0.999,
                    "scaling_type": "ReverseLogarithmic",
                }
            ]
        ),
        static_hyperparameters={"epochs": 2, "arch": "small-cnn"},
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask(_search.distributions(s))
        hps = _search.hyperparameters_of(s, trial.params)
        assert 0.9 <= hps["m"] <= 0.999
        assert hps["epochs"] == 2 and hps["arch"] == "small-cnn"
        study.tell(trial, 0.0)


def test_samplers_and_pruners_by_strategy() -> None:
    assert isinstance(_search.sampler(spec()), optuna.samplers.TPESampler)
    assert isinstance(_search.sampler(spec(strategy="Random")), optuna.samplers.RandomSampler)
    assert isinstance(_search.pruner(spec()), optuna.pruners.NopPruner)
    assert isinstance(_search.pruner(spec(early_stopping="Auto")), optuna.pruners.MedianPruner)
    assert _search.direction(spec()) == "minimize"


def test_median_pruner_stops_a_hopeless_trial() -> None:
    s = spec(early_stopping="Auto")
    study = optuna.create_study(pruner=_search.pruner(s), direction="minimize")
    good = study.ask(_search.distributions(s))
    for step, value in enumerate([1.0, 0.8, 0.6]):
        good.report(value, step)
    study.tell(good, 0.6)
    bad = study.ask(_search.distributions(s))
    bad.report(50.0, 0)
    assert not bad.should_prune()  # the first epoch is never judged
    bad.report(40.0, 1)
    assert bad.should_prune()


def test_trial_names_are_sagemaker_style() -> None:
    name = _search.trial_name("my-tuning", 0)
    assert re.fullmatch(r"my-tuning-001-[0-9a-f]{8}", name)
    assert _search.trial_name("t", 41, token="deadbeef") == "t-042-deadbeef"
    assert len(_search.trial_name("x" * 32, 499)) <= 63


def test_the_objective_is_the_last_value_of_the_series() -> None:
    series = {"validation:loss": [{"value": 0.9}, {"value": 0.4}, {"value": 0.5}]}
    assert _search.objective_of(series, "validation:loss") == 0.5
    assert _search.objective_of(series, "validation:accuracy") is None
    assert _search.objective_of({"validation:loss": []}, "validation:loss") is None


def test_verdict_runs_until_the_budget_is_spent() -> None:
    s = spec()
    assert _search.verdict(s, [0.5], failed=0, launched=4, running=1).status == ""
    done = _search.verdict(s, [0.5, 0.4], failed=2, launched=4, running=0)
    assert done.status == "Completed"


def test_verdict_target_objective_and_not_improving() -> None:
    minimize = spec(target_objective_value=0.3)
    assert _search.verdict(minimize, [0.5], failed=0, launched=1, running=1).status == ""
    reached = _search.verdict(minimize, [0.5, 0.29], failed=0, launched=2, running=1)
    assert (reached.status, reached.reason) == (
        "Completed",
        "The objective reached the target 0.3.",
    )
    maximize = spec(
        objective={"metric_name": "validation:accuracy", "type": "Maximize"},
        target_objective_value=0.9,
    )
    assert _search.verdict(maximize, [0.91], failed=0, launched=1, running=0).status == "Completed"
    stale = spec(max_jobs_not_improving=2, max_training_jobs=10)
    assert _search.verdict(stale, [0.5, 0.6], failed=0, launched=3, running=1).status == ""
    over = _search.verdict(stale, [0.5, 0.6, 0.7], failed=0, launched=3, running=0)
    assert "did not improve in 2 jobs" in over.reason


def test_failure_limit_default_is_half_the_budget_and_overridable() -> None:
    assert spec().failure_limit == 2
    assert spec(max_training_jobs=1, max_parallel_training_jobs=1).failure_limit == 1
    assert spec(max_failed_training_jobs=0).failure_limit == 0
    s = spec()
    assert _search.verdict(s, [0.5], failed=2, launched=3, running=1).status == ""
    failed = _search.verdict(s, [0.5], failed=3, launched=4, running=0)
    assert failed.status == "Failed" and "more than the limit of 2" in failed.reason


def test_nothing_completed_is_a_failure_that_names_the_metric() -> None:
    v = _search.verdict(spec(), [], failed=1, launched=4, running=0)
    assert v.status == "Failed" and "validation:loss" in v.reason


def test_optuna_keeps_out_of_kennels_tables(tmp_path: Path) -> None:
    url, options = storage_url(f"sqlite:///{tmp_path / 'kennel.db'}")
    assert url == f"sqlite:///{tmp_path / 'optuna.db'}" and options
    pg, pg_options = storage_url("postgresql+psycopg://k:pw@db/kennel")
    assert pg.startswith("postgresql+psycopg://k:pw@db/kennel")
    assert pg_options["connect_args"]["options"] == "-csearch_path=optuna"


# Hyperband -------------------------------------------------------------------------------


def test_hyperband_uses_tpe_with_the_hyperband_pruner_and_reports_epochs() -> None:
    s = spec(strategy="Hyperband", hyperband={"min_resource": 2, "max_resource": 30})
    chosen = _search.pruner(s)
    assert isinstance(chosen, optuna.pruners.HyperbandPruner)
    assert chosen._min_resource == 2 and chosen._max_resource == 30
    assert isinstance(_search.sampler(s), optuna.samplers.TPESampler)
    assert _search.reports_intermediate(s)
    assert isinstance(_search.pruner(spec(strategy="Hyperband")), optuna.pruners.HyperbandPruner)
    assert not _search.reports_intermediate(spec())
    assert _search.reports_intermediate(spec(early_stopping="Auto"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "Hyperband", "early_stopping": "Auto"}, "early_stopping must be Off"),
        ({"hyperband": {"min_resource": 2}}, "go with the Hyperband strategy"),
        (
            {"strategy": "Hyperband", "hyperband": {"min_resource": 5, "max_resource": 5}},
            "must be above min_resource",
        ),
    ],
)
def test_hyperband_settings_are_checked(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**changes)


def test_hyperband_prunes_a_trial_far_behind_at_the_same_epoch() -> None:
    s = spec(strategy="Hyperband", hyperband={"min_resource": 1, "max_resource": 9})
    # A fixed study name: Hyperband assigns trials to brackets by hashing it.
    study = optuna.create_study(
        study_name="hb", sampler=_search.sampler(s), pruner=_search.pruner(s), direction="minimize"
    )
    dists = _search.distributions(s)
    for _ in range(6):
        good = study.ask(dists)
        for step in range(9):
            good.report(1.0 / (step + 1), step)
            # As the controller does: asking records the trial at each rung it reaches.
            assert not good.should_prune()
        study.tell(good, 1.0 / 9)
    pruned = 0
    for _ in range(6):
        bad = study.ask(dists)
        for step in range(9):
            bad.report(50.0, step)
            if bad.should_prune():
                pruned += 1
                study.tell(bad, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(bad, 50.0)
    assert pruned >= 1
