"""The debugger rules on synthetic trials: what fires them, what does not, when they
cannot tell yet, and how their parameters are checked.

Trials are built from JSON lines exactly as the hook writes them (see ``_trial``).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from kennel.debugger import Trial
from kennel.debugger._spec import DebuggerConfig
from kennel.debugger.rules import Finding, Rule, rule_class, snake_case

DEBUGGER_RULES = (
    "LossNotDecreasing",
    "Overfit",
    "Overtraining",
    "VanishingGradient",
    "ExplodingTensor",
    "PoorWeightInitialization",
    "DeadRelu",
    "ClassImbalance",
)


def make_trial(
    train: Sequence[float] = (),
    evals: Iterable[tuple[int, float]] = (),
    tensors: Iterable[dict[str, Any]] = (),
) -> Trial:
    """``train[i]`` is step i's loss; ``evals`` are (step, mean eval loss)."""
    losses = [{"rank": 0, "step": s, "mode": "train", "loss": v} for s, v in enumerate(train)]
    losses += [{"rank": 0, "step": s, "mode": "eval", "loss": v, "count": 100} for s, v in evals]
    trial = Trial()
    trial.add("algo-1", "losses.jsonl", [json.dumps(r) for r in losses])
    trial.add("algo-1", "tensors.jsonl", [json.dumps({"rank": 0, **r}) for r in tensors])
    return trial


def stats(**values: float) -> dict[str, float]:
    """A weights/gradients stats dict: ordinary values unless given."""
    base = {
        "mean": 0.0,
        "std": 0.1,
        "min": -0.3,
        "max": 0.3,
        "norm": 1.0,
        "abs_mean": 0.01,
        "zero_frac": 0.0,
        "nonfinite": 0.0,
    }
    return base | values


def act(in_std: float = 1.0, dead_frac: float = 0.0) -> dict[str, float]:
    return {"in_mean": 0.0, "in_std": in_std, "out_zero_frac": 0.5, "dead_frac": dead_frac}


def check(name: str, trial: Trial, **parameters: Any) -> Finding:
    return rule_class(name)(parameters).evaluate(trial)


def noisy(values: Iterable[float], spread: float = 0.2, seed: int = 0) -> list[float]:
    """Each value times a random factor in [1 - spread, 1 + spread], as mini-batches vary."""
    rng = random.Random(seed)
    return [v * (1 + rng.uniform(-spread, spread)) for v in values]


# The contract -----------------------------------------------------------------------


@pytest.mark.parametrize("name", DEBUGGER_RULES)
def test_each_rule_is_a_debugger_rule_under_both_spellings(name: str) -> None:
    cls = rule_class(name)
    assert cls.name == name
    assert rule_class(snake_case(name)) is cls
    assert cls.kind == "debugger"
    assert cls.summary and "\n" not in cls.summary
    assert cls.advice
    assert set(cls.needs) <= {"losses", "weights", "gradients", "activations", "labels"}


def test_the_snake_case_spellings_are_the_sagemaker_sdk_ones() -> None:
    expected = {
        "loss_not_decreasing",
        "overfit",
        "overtraining",
        "vanishing_gradient",
        "exploding_tensor",
        "poor_weight_initialization",
        "dead_relu",
        "class_imbalance",
    }
    assert {snake_case(n) for n in DEBUGGER_RULES} == expected


@pytest.mark.parametrize("name", DEBUGGER_RULES)
def test_every_parameter_has_a_default_and_a_description(name: str) -> None:
    cls = rule_class(name)
    rule = cls()
    for field_name, field in cls.Params.model_fields.items():
        assert field.description, f"{name}.{field_name} is undocumented"
    json.dumps(rule.params.model_dump())  # shown in the job's rule statuses


@pytest.mark.parametrize("name", DEBUGGER_RULES)
def test_an_unknown_parameter_is_an_error(name: str) -> None:
    with pytest.raises(ValueError, match=rf"rule {name}: thresold: Extra inputs"):
        rule_class(name)({"thresold": 1})


@pytest.mark.parametrize("name", DEBUGGER_RULES)
def test_an_empty_trial_is_not_enough_data(name: str) -> None:
    finding = check(name, Trial())
    assert finding.issue is None
    assert finding.details


def test_sagemaker_string_values_are_accepted() -> None:
    """SageMaker passes every rule parameter as a string."""
    rule: Rule = rule_class("vanishing_gradient")({"threshold": "0.001"})
    assert rule.params.model_dump()["threshold"] == 0.001
    rule = rule_class("LossNotDecreasing")(
        {"num_steps": "20", "diff_percent": "1.5", "mode": "EVAL", "start_step": "100"}
    )
    assert rule.params.model_dump() == {
        "mode": "eval",
        "num_steps": 20,
        "diff_percent": 1.5,
        "start_step": 100,
    }
    assert rule_class("exploding_tensor")({"only_nan": "True"}).params.model_dump()["only_nan"]
    dead = rule_class("DeadRelu")({"threshold_layer": "50.0", "patience": "1"})
    assert dead.params.model_dump() == {"threshold_layer": 50.0, "patience": 1}


@pytest.mark.parametrize(
    ("name", "parameters", "problem"),
    [
        ("LossNotDecreasing", {"num_steps": 0}, "num_steps"),
        ("LossNotDecreasing", {"mode": "test"}, "mode"),
        ("LossNotDecreasing", {"diff_percent": "a lot"}, "diff_percent"),
        ("Overfit", {"patience": -1}, "patience"),
        ("Overtraining", {"delta": -0.1}, "delta"),
        ("VanishingGradient", {"threshold": 0}, "threshold"),
        ("ExplodingTensor", {"only_nan": "maybe"}, "only_nan"),
        ("PoorWeightInitialization", {"threshold": 0.5}, "threshold"),
        ("DeadRelu", {"threshold_layer": 150}, "threshold_layer"),
        ("ClassImbalance", {"threshold_misprediction": 1.5}, "threshold_misprediction"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_parameter(
    name: str, parameters: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=rf"rule {name}: {problem}: "):
        rule_class(name)(parameters)


@pytest.mark.parametrize(
    ("rule", "collection"),
    [
        ("dead_relu", "activations"),
        ("poor_weight_initialization", "activations"),
        ("vanishing_gradient", "gradients"),
        ("class_imbalance", "labels"),
    ],
)
def test_a_job_without_the_collection_a_rule_reads_is_refused(rule: str, collection: str) -> None:
    with pytest.raises(ValueError, match=collection):
        DebuggerConfig.model_validate({"collections": ["losses"], "rules": [{"rule": rule}]})
    DebuggerConfig.model_validate(
        {"collections": ["losses", collection], "rules": [{"rule": rule}]}
    )


def test_exploding_tensor_reads_whatever_was_saved() -> None:
    DebuggerConfig.model_validate(
        {"collections": ["losses"], "rules": [{"rule": "ExplodingTensor"}]}
    )


# LossNotDecreasing --------------------------------------------------------------------


def test_a_falling_loss_is_quiet_despite_batch_noise() -> None:
    trial = make_trial(noisy(2 / (1 + s / 20) for s in range(400)))
    finding = check("LossNotDecreasing", trial)
    assert finding.issue is False, finding
    assert "7 window(s) of 50 steps" in finding.details


def test_a_flat_loss_is_not_decreasing() -> None:
    trial = make_trial(noisy([0.69] * 150))
    finding = check("LossNotDecreasing", trial)
    assert finding.issue is True
    assert "mean train loss over steps 50-99" in finding.details
    assert "over steps 0-49" in finding.details


def test_a_plateau_after_learning_is_found_where_it_starts() -> None:
    trial = make_trial([1 / (1 + s / 10) for s in range(200)] + [1 / 21] * 200)
    finding = check("LossNotDecreasing", trial)
    assert finding.issue is True
    assert "steps 250-299" in finding.details


def test_a_rising_loss_is_not_decreasing() -> None:
    finding = check("LossNotDecreasing", make_trial([0.5 + s / 100 for s in range(100)]))
    assert finding.issue is True
    assert "+" in finding.details


def test_a_nan_loss_is_not_decreasing() -> None:
    finding = check("LossNotDecreasing", make_trial([1.0] * 50 + [math.nan] * 50))
    assert finding.issue is True
    assert "nan" in finding.details


def test_loss_not_decreasing_needs_two_windows() -> None:
    finding = check("LossNotDecreasing", make_trial([1.0] * 99))
    assert finding.issue is None
    assert "100 values" in finding.details
    assert check("LossNotDecreasing", make_trial([1.0] * 20), num_steps=10).issue is True


def test_diff_percent_is_the_fall_asked_of_each_window() -> None:
    # 1% lower per window of 50 steps.
    trial = make_trial([0.99 ** (s // 50) for s in range(300)])
    assert check("LossNotDecreasing", trial).issue is False
    finding = check("LossNotDecreasing", trial, diff_percent=2)
    assert finding.issue is True
    assert "-1.00%" in finding.details and "at least 2%" in finding.details


def test_start_step_skips_a_warm_up() -> None:
    trial = make_trial([1.0] * 100 + [1 / (1 + s / 10) for s in range(200)])
    assert check("LossNotDecreasing", trial).issue is True
    assert check("LossNotDecreasing", trial, start_step=100).issue is False


def test_loss_not_decreasing_in_eval_mode_compares_evaluations() -> None:
    falling = make_trial(evals=[(100 * i, 1 / (1 + i)) for i in range(8)])
    assert check("LossNotDecreasing", falling, mode="eval").issue is False
    flat = make_trial(evals=[(100 * i, 0.3) for i in range(4)])
    finding = check("LossNotDecreasing", flat, mode="EVAL")
    assert finding.issue is True
    assert "2 evaluations" in finding.details
    assert check("LossNotDecreasing", flat, mode="train").issue is None


# Overfit ------------------------------------------------------------------------------


def epochs(train: Sequence[float], evals: Sequence[float], steps: int = 20) -> Trial:
    """An epoch of ``steps`` train steps at each train loss, then an evaluation."""
    losses = [loss for loss in train for _ in range(steps)]
    return make_trial(losses, [(steps * (i + 1), v) for i, v in enumerate(evals)])


def test_an_eval_loss_close_to_the_train_loss_is_not_overfitting() -> None:
    finding = check("Overfit", epochs([1.0, 0.6, 0.4, 0.3], [0.7, 0.5, 0.38, 0.33]))
    assert finding.issue is False
    assert "4 evaluation(s)" in finding.details


def test_an_eval_loss_pulling_away_is_overfitting() -> None:
    trial = epochs([1.0, 0.5, 0.2, 0.1, 0.05], [0.8, 0.6, 0.7, 0.9, 1.2])
    finding = check("Overfit", trial)
    assert finding.issue is True
    assert "2 evaluation(s) in a row" in finding.details
    assert "step 80: eval 0.9 vs train 0.1 (ratio 8)" in finding.details


def test_one_bad_evaluation_is_not_overfitting() -> None:
    trial = epochs([1.0, 0.5, 0.4, 0.3], [0.8, 1.5, 0.4, 0.3])
    assert check("Overfit", trial).issue is False
    assert check("Overfit", trial, patience=1).issue is True


def test_a_large_ratio_between_tiny_losses_is_not_overfitting() -> None:
    trial = epochs([0.1, 0.01, 0.003, 0.002], [0.05, 0.02, 0.03, 0.03])
    assert check("Overfit", trial).issue is False
    assert check("Overfit", trial, min_difference=0.01).issue is True


def test_overfit_ratio_threshold() -> None:
    trial = epochs([1.0, 1.0, 1.0], [1.3, 1.3, 1.3])
    assert check("Overfit", trial).issue is False
    assert check("Overfit", trial, ratio_threshold=0.2, min_difference=0.1).issue is True


def test_overfit_start_step_ignores_early_evaluations() -> None:
    trial = epochs([0.2, 0.2, 0.2, 0.2], [1.0, 1.0, 0.2, 0.2])
    assert check("Overfit", trial).issue is True
    assert check("Overfit", trial, start_step=50).issue is False


def test_overfit_needs_an_evaluation_after_training() -> None:
    assert check("Overfit", make_trial([1.0] * 50)).issue is None
    # An evaluation before any training step has nothing to compare with.
    assert check("Overfit", make_trial(evals=[(0, 0.7)])).issue is None


# Overtraining --------------------------------------------------------------------------


def test_an_improving_validation_loss_is_not_overtraining() -> None:
    trial = make_trial(evals=[(10 * i, 1 - 0.05 * i) for i in range(15)])
    finding = check("Overtraining", trial)
    assert finding.issue is False, finding


def test_a_validation_loss_that_stopped_improving_is_overtraining() -> None:
    evals = [0.9, 0.6, 0.45, 0.4] + [0.4 + 0.01 * i for i in range(10)]
    finding = check("Overtraining", make_trial(evals=[(10 * i, v) for i, v in enumerate(evals)]))
    assert finding.issue is True
    assert "eval loss has not improved by 0.01" in finding.details
    assert "(0.4 at step 30) for 10 evaluations (until step 130" in finding.details


def test_overtraining_delta_is_absolute() -> None:
    evals = [(10 * i, 0.5 - 0.0005 * i) for i in range(12)]  # 0.0005 better each time
    assert check("Overtraining", make_trial(evals=evals)).issue is True
    assert check("Overtraining", make_trial(evals=evals), delta=0.0001).issue is False
    # Small steps add up: 0.004 each, so the best is beaten by 0.01 every third time.
    slow = [(10 * i, 0.5 - 0.004 * i) for i in range(30)]
    assert check("Overtraining", make_trial(evals=slow)).issue is False


def test_a_training_loss_that_stopped_improving_is_overtraining() -> None:
    trial = make_trial(noisy([1 / (1 + s / 10) for s in range(100)] + [0.09] * 300, 0.05))
    finding = check("Overtraining", trial)
    assert finding.issue is True
    assert "mean train loss (windows of 50 steps)" in finding.details
    assert check("Overtraining", trial, patience_train=7).issue is False


def test_overtraining_needs_more_evaluations_than_its_patience() -> None:
    finding = check("Overtraining", make_trial([0.5] * 100, [(50, 0.5), (100, 0.5)]))
    assert finding.issue is None
    assert "2 evaluation(s) (patience 10)" in finding.details


# VanishingGradient ----------------------------------------------------------------------


def gradients(step: int, **abs_means: float) -> dict[str, Any]:
    return {
        "step": step,
        "mode": "train",
        "gradients": {name.replace("_", "."): stats(abs_mean=v) for name, v in abs_means.items()},
    }


def test_ordinary_gradients_are_not_vanishing() -> None:
    trial = make_trial(tensors=[gradients(s, fc1_weight=1e-3, fc2_weight=1e-2) for s in (0, 10)])
    finding = check("VanishingGradient", trial)
    assert finding.issue is False
    assert "2 save(s)" in finding.details and "fc1.weight at step 0" in finding.details


def test_a_layer_with_a_vanishing_gradient_is_named() -> None:
    trial = make_trial(
        tensors=[
            gradients(0, fc1_weight=1e-4, fc2_weight=1e-2),
            gradients(10, fc1_weight=3e-9, fc1_bias=1e-8, fc2_weight=1e-2),
        ]
    )
    finding = check("VanishingGradient", trial)
    assert finding.issue is True
    assert finding.details.startswith("At step 10 the gradients of 2 of 3 parameter(s)")
    assert "fc1.weight 3e-09, fc1.bias 1e-08" in finding.details
    assert "the largest: fc2.weight 0.01" in finding.details


def test_vanishing_gradient_threshold_and_start_step() -> None:
    trial = make_trial(
        tensors=[gradients(0, a=1e-5, b=1.0), gradients(10, a=1e-3, b=1.0)],
    )
    assert check("VanishingGradient", trial).issue is False
    assert check("VanishingGradient", trial, threshold="1e-4").issue is True
    assert check("VanishingGradient", trial, threshold=1e-4, start_step=5).issue is False


def test_every_gradient_tiny_is_a_batch_already_fit_not_a_vanishing_one() -> None:
    trial = make_trial(tensors=[gradients(50, a=1e-9, b=3e-8, c=1e-6)])
    finding = check("VanishingGradient", trial)
    assert finding.issue is False
    assert "1 save(s) skipped" in finding.details


# ExplodingTensor -----------------------------------------------------------------------


def weights(
    step: int, by_name: dict[str, dict[str, float]], collection: str = "weights"
) -> dict[str, Any]:
    return {"step": step, "mode": "train", collection: by_name}


def test_finite_losses_and_tensors_are_not_exploding() -> None:
    trial = make_trial([1.0, 0.9], [(2, 0.8)], [weights(0, {"w": stats()}), gradients(0, w=0.1)])
    finding = check("ExplodingTensor", trial)
    assert finding.issue is False
    assert "3 loss value(s) and 2 tensor save(s)" in finding.details


def test_a_nan_loss_explodes() -> None:
    finding = check("ExplodingTensor", make_trial([1.0, 50.0, math.nan, math.nan]))
    assert finding.issue is True
    assert finding.details == "At step 2: the train loss was nan."


def test_an_infinite_eval_loss_explodes() -> None:
    finding = check("ExplodingTensor", make_trial([1.0], [(1, math.inf)]))
    assert finding.issue is True
    assert "the eval loss was inf" in finding.details


def test_non_finite_weights_explode_at_the_first_step_they_appear() -> None:
    inf = stats(max=math.inf, mean=math.inf, nonfinite=3)
    nan = stats(min=math.nan, max=math.nan, nonfinite=10)
    trial = make_trial(
        [1.0] * 30,
        tensors=[
            weights(0, {"fc1": stats()}),
            weights(10, {"fc1": inf, "fc2": stats()}),
            weights(20, {"fc1": nan}, "gradients"),
        ],
    )
    finding = check("ExplodingTensor", trial)
    assert finding.issue is True
    assert finding.details == "At step 10: 1 of 2 weights (fc1: 3 non-finite)."


def test_a_huge_finite_gradient_explodes_unless_only_nan() -> None:
    trial = make_trial(tensors=[weights(5, {"fc": stats(max=3e25)}, "gradients")])
    finding = check("ExplodingTensor", trial)
    assert finding.issue is True
    assert "fc: min -0.3, max 3e+25" in finding.details
    assert check("ExplodingTensor", trial, threshold=1e30).issue is False
    assert check("ExplodingTensor", trial, only_nan=True).issue is False


def test_only_nan_lets_infinities_through() -> None:
    inf = make_trial([1.0, math.inf], tensors=[weights(0, {"w": stats(max=math.inf, nonfinite=1)})])
    assert check("ExplodingTensor", inf, only_nan=True).issue is False
    nan = make_trial(tensors=[weights(0, {"w": stats(min=math.nan, max=math.nan, nonfinite=1)})])
    assert check("ExplodingTensor", nan, only_nan=True).issue is True


def test_a_malformed_statistic_is_not_an_explosion() -> None:
    trial = make_trial(tensors=[weights(0, {"w": {"mean": 0.0}})])
    assert check("ExplodingTensor", trial).issue is False


# PoorWeightInitialization ---------------------------------------------------------------


def activations(step: int, **by_layer: dict[str, float]) -> dict[str, Any]:
    return {"step": step, "mode": "train", "activations": by_layer}


def test_commensurate_activation_inputs_are_a_good_initialisation() -> None:
    trial = make_trial(tensors=[activations(0, relu1=act(1.2), relu2=act(0.8), relu3=act(0.5))])
    finding = check("PoorWeightInitialization", trial)
    assert finding.issue is False
    assert "within a ratio of 2.4" in finding.details


def test_a_layer_scaled_far_down_is_a_poor_initialisation() -> None:
    trial = make_trial(tensors=[activations(0, relu1=act(1.0), relu2=act(1e-4), relu3=act(0.5))])
    finding = check("PoorWeightInitialization", trial)
    assert finding.issue is True
    assert "from 0.0001 (relu2) to 1 (relu1): a ratio of 1e+04, above 10" in finding.details


def test_an_activation_with_constant_input_is_a_poor_initialisation() -> None:
    trial = make_trial(tensors=[activations(0, a=act(1.0), b=act(0.0))])
    assert check("PoorWeightInitialization", trial).issue is True


def test_poor_weight_initialization_looks_at_the_first_saves_only() -> None:
    good = [activations(s, a=act(1.0), b=act(0.5)) for s in range(0, 100, 10)]
    trial = make_trial(tensors=[*good, activations(100, a=act(1.0), b=act(1e-3))])
    assert check("PoorWeightInitialization", trial).issue is False
    assert check("PoorWeightInitialization", trial, steps=11).issue is True


def test_all_zero_weights_are_a_poor_initialisation_but_zero_biases_are_not() -> None:
    zeros = stats(std=0.0, min=0.0, max=0.0, abs_mean=0.0, zero_frac=1.0)
    trial = make_trial(
        tensors=[weights(0, {"fc1.weight": stats(), "fc1.bias": zeros, "fc2.weight": zeros})]
    )
    finding = check("PoorWeightInitialization", trial)
    assert finding.issue is True
    assert finding.details == "At step 0 these weights were all zeros: fc2.weight."
    assert check("PoorWeightInitialization", trial, check_zero_weights=False).issue is None


def test_a_single_activation_layer_has_nothing_to_compare() -> None:
    finding = check("PoorWeightInitialization", make_trial(tensors=[activations(0, a=act())]))
    assert finding.issue is False
    assert "Fewer than two activation layers" in finding.details


# DeadRelu ----------------------------------------------------------------------------------


def test_live_relus_are_not_dead() -> None:
    trial = make_trial(tensors=[activations(s, r1=act(dead_frac=0.1)) for s in range(0, 50, 10)])
    finding = check("DeadRelu", trial)
    assert finding.issue is False
    assert "the most: r1 10% at step 0" in finding.details


def test_a_layer_dead_for_three_saves_is_dead() -> None:
    saves = [
        activations(0, r1=act(dead_frac=0.1), r2=act(dead_frac=0.6)),
        activations(10, r1=act(dead_frac=0.1), r2=act(dead_frac=0.9)),
        activations(20, r1=act(dead_frac=0.2), r2=act(dead_frac=1.0)),
    ]
    finding = check("DeadRelu", make_trial(tensors=saves))
    assert finding.issue is True
    assert "3 save(s) in a row in r2 (100% dead at step 20, since step 0)" in finding.details


def test_a_layer_that_recovers_is_not_dead() -> None:
    dead = [0.9, 0.9, 0.1, 0.9, 0.9, 0.1]
    trial = make_trial(
        tensors=[activations(10 * i, r=act(dead_frac=d)) for i, d in enumerate(dead)]
    )
    assert check("DeadRelu", trial).issue is False
    assert check("DeadRelu", trial, patience=2).issue is True


def test_dead_relu_threshold_layer_is_a_percentage() -> None:
    trial = make_trial(tensors=[activations(10 * i, r=act(dead_frac=0.3)) for i in range(3)])
    assert check("DeadRelu", trial).issue is False
    assert check("DeadRelu", trial, threshold_layer="25").issue is True


def test_dead_relu_needs_patience_saves() -> None:
    trial = make_trial(tensors=[activations(0, r=act(dead_frac=1.0))])
    finding = check("DeadRelu", trial)
    assert finding.issue is None
    assert "1 save(s) with activations; 3 in a row" in finding.details


# ClassImbalance ----------------------------------------------------------------------------


def labels(step: int, count: list[int], correct: list[int]) -> dict[str, Any]:
    return {"step": step, "mode": "train", "labels": {"count": count, "correct": correct}}


def test_balanced_well_predicted_classes_are_fine() -> None:
    trial = make_trial(tensors=[labels(10, [300, 280, 320], [250, 260, 300])])
    finding = check("ClassImbalance", trial)
    assert finding.issue is False
    assert "3 class(es) over 900 labels by step 10" in finding.details


def test_a_thirty_times_rarer_class_is_imbalanced() -> None:
    trial = make_trial(tensors=[labels(20, [600, 20, 550], [590, 0, 540])])
    finding = check("ClassImbalance", trial)
    assert finding.issue is True
    assert "class 0 had 600 samples and class 1 20: 30x, above 10x" in finding.details
    # Class 1 is also always mispredicted, judged once it has min_class_samples.
    assert check("ClassImbalance", trial, threshold_imbalance=40).issue is False
    loose = {"threshold_imbalance": 40, "min_class_samples": 20}
    finding = check("ClassImbalance", trial, **loose)
    assert finding.issue is True
    assert "class 1: 100% of 20" in finding.details


def test_a_mostly_mispredicted_class_is_found() -> None:
    trial = make_trial(tensors=[labels(40, [300, 300, 100], [290, 150, 10])])
    finding = check("ClassImbalance", trial)
    assert finding.issue is True
    assert "predicted wrong: class 2: 90% of 100" in finding.details
    assert check("ClassImbalance", trial, threshold_misprediction=0.95).issue is False


def test_class_imbalance_reads_the_latest_counts() -> None:
    early = labels(0, [32, 0], [10, 0])
    late = labels(100, [1600, 1600], [1500, 1550])
    assert check("ClassImbalance", make_trial(tensors=[late, early])).issue is False


def test_classes_never_seen_are_left_out() -> None:
    trial = make_trial(tensors=[labels(10, [300, 0, 300, 0], [280, 0, 290, 0])])
    assert check("ClassImbalance", trial).issue is False


def test_class_imbalance_waits_for_enough_labels() -> None:
    trial = make_trial(tensors=[labels(3, [90, 6], [90, 0])])
    finding = check("ClassImbalance", trial)
    assert finding.issue is None
    assert "96 label(s) seen by step 3; the rule judges from 500" in finding.details
    assert check("ClassImbalance", trial, samples=50).issue is True
