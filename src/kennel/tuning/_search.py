"""The search itself, as pure functions over the spec: Optuna distributions, sampler,
pruner, trial names, the objective from a metric series and the completion criteria.

Kept apart from the controller so each rule is tested without a server or a cluster.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from kennel.tuning._spec import HyperbandConfig, HyperparameterValue, TuningJobSpec

REVERSE_PREFIX = "1-"
"""A ReverseLogarithmic range ``x`` is searched as ``1 - x`` on a log scale (so values close
to 1, like momentum 0.99 vs 0.999, get as much attention as 0.9 vs 0.99); Optuna's study
records it under ``1-<name>``."""


def distributions(spec: TuningJobSpec) -> dict[str, BaseDistribution]:
    """One Optuna distribution per range. Auto scaling is Linear: SageMaker leaves the choice
    to the service, and Linear is what it falls back to without prior evidence."""
    found: dict[str, BaseDistribution] = {}
    for c in spec.parameter_ranges.continuous:
        if c.scaling_type == "ReverseLogarithmic":
            found[REVERSE_PREFIX + c.name] = FloatDistribution(
                1 - c.max_value, 1 - c.min_value, log=True
            )
        else:
            found[c.name] = FloatDistribution(
                c.min_value, c.max_value, log=c.scaling_type == "Logarithmic"
            )
    for i in spec.parameter_ranges.integer:
        found[i.name] = IntDistribution(
            i.min_value, i.max_value, log=i.scaling_type == "Logarithmic"
        )
    for cat in spec.parameter_ranges.categorical:
        found[cat.name] = CategoricalDistribution(list(cat.values))
    return found


def hyperparameters_of(spec: TuningJobSpec, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters for its training job: the static ones, then the sampled."""
    values: dict[str, HyperparameterValue] = dict(spec.static_hyperparameters)
    for key, value in params.items():
        if key.startswith(REVERSE_PREFIX) and key[len(REVERSE_PREFIX) :] in reverse_names(spec):
            values[key[len(REVERSE_PREFIX) :]] = _tidy(1 - float(value))
        elif isinstance(value, float):
            values[key] = _tidy(value)
        else:
            values[key] = value
    return values


def reverse_names(spec: TuningJobSpec) -> set[str]:
    return {
        c.name for c in spec.parameter_ranges.continuous if c.scaling_type == "ReverseLogarithmic"
    }


def _tidy(value: float) -> float:
    """12 significant digits: what a log line shows, without float noise like 0.1000000002."""
    return float(f"{value:.12g}")


def grid_size(spec: TuningJobSpec) -> int:
    size = 1
    for i in spec.parameter_ranges.integer:
        size *= i.max_value - i.min_value + 1
    for c in spec.parameter_ranges.categorical:
        size *= len(c.values)
    return size


def trial_budget(spec: TuningJobSpec) -> int:
    """How many training jobs the tuning job runs at most (a Grid stops when it is covered)."""
    if spec.strategy == "Grid":
        return min(spec.max_training_jobs, grid_size(spec))
    return spec.max_training_jobs


class _BudgetedGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, minus its ``study.stop()`` once the grid is covered.

    That call is only allowed inside ``study.optimize``; kennel drives the study with
    ask/tell, and its controller already stops at the grid size (``trial_budget``).
    """

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def sampler(spec: TuningJobSpec) -> optuna.samplers.BaseSampler:
    if spec.strategy == "Random":
        return optuna.samplers.RandomSampler(seed=spec.random_seed)
    if spec.strategy == "Grid":
        space: dict[str, Sequence[Any]] = {
            i.name: list(range(i.min_value, i.max_value + 1)) for i in spec.parameter_ranges.integer
        }
        space.update({c.name: list(c.values) for c in spec.parameter_ranges.categorical})
        return _BudgetedGridSampler(space, seed=spec.random_seed)
    # Bayesian and Hyperband: TPE (Optuna's recommended partner of HyperbandPruner).
    # Few trials is the norm here: start modelling after 2 random ones, not Optuna's 10.
    startup = max(2, min(10, spec.max_training_jobs // 3))
    return optuna.samplers.TPESampler(seed=spec.random_seed, n_startup_trials=startup)


def pruner(spec: TuningJobSpec) -> optuna.pruners.BasePruner:
    """Auto early stopping: SageMaker's rule is the median one (a job worse than the median
    of earlier jobs at the same epoch stops). One finished trial is enough to compare with,
    and the first epoch is never judged.

    Hyperband has early stopping built in (successive halving over brackets of epochs), so
    it brings its own pruner; its spec refuses ``early_stopping: Auto`` on top."""
    if spec.strategy == "Hyperband":
        config = spec.hyperband or HyperbandConfig()
        return optuna.pruners.HyperbandPruner(
            min_resource=config.min_resource,
            max_resource=config.max_resource if config.max_resource is not None else "auto",
        )
    if spec.early_stopping == "Auto":
        return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def reports_intermediate(spec: TuningJobSpec) -> bool:
    """Whether the controller feeds each epoch's objective to Optuna while a trial runs:
    the pruner needs it for Auto early stopping and for Hyperband."""
    return spec.early_stopping == "Auto" or spec.strategy == "Hyperband"


def direction(spec: TuningJobSpec) -> Literal["maximize", "minimize"]:
    return "maximize" if spec.objective.type == "Maximize" else "minimize"


def trial_name(tuning_job: str, number: int, token: str | None = None) -> str:
    """SageMaker's trial job name: ``<tuning-job-name>-<NNN>-<8 hex>``, NNN from 001."""
    return f"{tuning_job}-{number + 1:03d}-{token or secrets.token_hex(4)}"


def objective_of(series: dict[str, list[dict[str, Any]]], metric: str) -> float | None:
    """The final objective: the metric's last value in the job's series (SageMaker's rule)."""
    points = series.get(metric) or []
    return float(points[-1]["value"]) if points else None


def better(a: float, b: float | None, maximize: bool) -> bool:
    if b is None:
        return True
    return a > b if maximize else a < b


@dataclass(frozen=True)
class Verdict:
    status: str
    """``Completed`` or ``Failed``, or ``""`` to go on."""
    reason: str = ""


def verdict(
    spec: TuningJobSpec,
    objectives: Sequence[float],
    *,
    failed: int,
    launched: int,
    running: int,
) -> Verdict:
    """Whether the tuning job is over, given the completed trials' objectives in the order
    they finished, the failed count, and how many trials were launched or still run."""
    if failed > spec.failure_limit:
        return Verdict(
            "Failed",
            f"{failed} training jobs failed, more than the limit of {spec.failure_limit} "
            "(max_failed_training_jobs). See the trials' failure reasons: kennel tune "
            f"describe {spec.name}",
        )
    maximize = spec.objective.type == "Maximize"
    best: float | None = None
    since_best = 0
    for value in objectives:
        if better(value, best, maximize):
            best, since_best = value, 0
        else:
            since_best += 1
    target = spec.target_objective_value
    if best is not None and target is not None and (best >= target if maximize else best <= target):
        return Verdict("Completed", f"The objective reached the target {target:g}.")
    limit = spec.max_jobs_not_improving
    if limit is not None and since_best >= limit:
        return Verdict("Completed", f"The best objective did not improve in {limit} jobs.")
    if launched >= trial_budget(spec) and running == 0:
        if not objectives:
            return Verdict(
                "Failed",
                "No training job reported the objective metric "
                f"{spec.objective.metric_name!r}; check its regex against the jobs' logs.",
            )
        return Verdict("Completed", "All training jobs ran.")
    return Verdict("")
