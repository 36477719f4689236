"""Warm start (SageMaker's WarmStartConfig): a new tuning job built on earlier ones.

The parents are checked where the request enters (they exist, they ended, they optimized
the same objective the same way), then their completed trials are added to the new
Optuna study as COMPLETE trials, so the sampler models them before its first ask. The
parents' trials are not re-run and do not count against the new job's budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from kennel._errors import NotFoundError, ValidationError
from kennel.tuning._search import REVERSE_PREFIX, distributions, reverse_names
from kennel.tuning._spec import TuningJobSpec

FINISHED = ("Completed", "Stopped")
"""SageMaker warm-starts from parents that are Completed or Stopped (not Failed, not running)."""
SAME_TEMPLATE = ("dataset", "entry_point", "source_uri", "static_hyperparameters")
"""What IdenticalDataAndAlgorithm promises is unchanged; TransferLearning may change it."""


def warm_start_trials(spec: TuningJobSpec, describe: Callable[[str], dict[str, Any]]) -> Seeding:
    """The seed trials for ``spec``'s study (none without warm_start), after checking the
    parents. ``describe`` is the tuning service's: a parent as ``kennel tune describe``
    shows it."""
    if spec.warm_start is None:
        return Seeding([], 0)
    parents = []
    for name in spec.warm_start.parent_tuning_jobs:
        try:
            parents.append(describe(name))
        except NotFoundError:
            raise ValidationError(
                f"Parent tuning job {name!r} (warm_start) does not exist.",
                hint="See the names with: kennel tune list",
            ) from None
    check_parents(spec, parents)
    return seed_trials(spec, [trial for parent in parents for trial in parent["trials"]])


def check_parents(spec: TuningJobSpec, parents: Sequence[dict[str, Any]]) -> None:
    """Refuse parents whose trials cannot inform this search."""
    assert spec.warm_start is not None
    for parent in parents:
        name = parent["name"]
        if parent["status"] not in FINISHED:
            raise ValidationError(
                f"Parent tuning job {name!r} is {parent['status']}; warm start needs parents "
                "that are Completed or Stopped.",
                hint=f"Wait for it (kennel tune describe {name}) or stop it (kennel tune stop "
                f"{name}), or leave it out of parent_tuning_jobs.",
            )
        if parent["objective"] != spec.objective.model_dump():
            raise ValidationError(
                f"Parent tuning job {name!r} optimizes {_objective_text(parent['objective'])}, "
                f"this one {_objective_text(spec.objective.model_dump())}; warm start needs "
                "the same objective metric and type.",
            )
        if spec.warm_start.type == "IdenticalDataAndAlgorithm":
            changed = [
                key for key in SAME_TEMPLATE if parent["spec"].get(key) != getattr(spec, key)
            ]
            if changed:
                raise ValidationError(
                    f"Parent tuning job {name!r} differs in {', '.join(changed)}, which "
                    "IdenticalDataAndAlgorithm keeps the same.",
                    hint="Use warm_start type TransferLearning to build on a job with other "
                    "data, script or static hyperparameters.",
                )


def _objective_text(objective: dict[str, Any]) -> str:
    return f"{objective['type']} {objective['metric_name']}"


@dataclass(frozen=True)
class Seeding:
    """Parent trials turned into trials of the new study, and how many could not be."""

    trials: list[optuna.trial.FrozenTrial]
    skipped: int

    def summary(self) -> str:
        """For the new job's status message: a user who expected a head start sees it."""
        if not self.trials and not self.skipped:
            return ""
        text = f" (warm start: {len(self.trials)} parent trials seeded"
        if self.skipped:
            text += f", {self.skipped} outside the new ranges skipped"
        return text + ")"


def seed_trials(
    spec: TuningJobSpec,
    parent_trials: Sequence[dict[str, Any]],
) -> Seeding:
    """The parents' completed trials (kennel trial records: ``hyperparameters`` and
    ``objective``) as COMPLETE Optuna trials over this spec's distributions.

    A parent value is mapped onto each new distribution by hyperparameter name (static or
    tuned in the parent alike, since both are in its ``hyperparameters``); a
    ReverseLogarithmic range takes ``1 - value``. A value that the new range does not hold
    (outside the bounds, a category no longer offered, or a hyperparameter the parent did
    not have):

    - IdenticalDataAndAlgorithm: the whole parent trial is skipped. Its objective was
      measured at a point the new search cannot reach, so it says nothing exact about it.
    - TransferLearning: only that parameter is left out of the seeded trial; the trial
      still informs the others (TPE models each parameter from the trials that have it).
      Values are never clamped into range: that would invent an observation at a point
      no training job ran. A trial with no parameter left is skipped.
    """
    wanted = distributions(spec)
    identical = spec.warm_start is not None and spec.warm_start.type == "IdenticalDataAndAlgorithm"
    seeded: list[optuna.trial.FrozenTrial] = []
    skipped = 0
    for record in parent_trials:
        value = record.get("objective")
        if record.get("objective_status") != "Succeeded" or value is None:
            continue
        params: dict[str, Any] = {}
        kept: dict[str, BaseDistribution] = {}
        for key, dist in wanted.items():
            found = _internal_value(spec, key, dist, record.get("hyperparameters") or {})
            if found is _MISSING:
                continue
            params[key], kept[key] = found, dist
        if not params or (identical and len(params) != len(wanted)):
            skipped += 1
            continue
        seeded.append(
            optuna.trial.create_trial(
                value=float(value),
                params=params,
                distributions=kept,
                user_attrs={"warm_start_from": record.get("training_job_name", "")},
            )
        )
    return Seeding(seeded, skipped)


_MISSING: Any = object()


def _internal_value(
    spec: TuningJobSpec, key: str, dist: BaseDistribution, hyperparameters: dict[str, Any]
) -> Any:
    """The parent's value of distribution ``key`` as the new study holds it, or _MISSING."""
    reverse = key.startswith(REVERSE_PREFIX) and key[len(REVERSE_PREFIX) :] in reverse_names(spec)
    name = key[len(REVERSE_PREFIX) :] if reverse else key
    if name not in hyperparameters:
        return _MISSING
    raw = hyperparameters[name]
    if isinstance(dist, CategoricalDistribution):
        # Hyperparameters travel as text to the script, so "32" and 32 are one choice.
        return next((c for c in dist.choices if str(c) == str(raw)), _MISSING)
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return _MISSING
    if reverse:
        number = 1 - number
    if isinstance(dist, IntDistribution):
        if not number.is_integer():
            return _MISSING
        whole = int(number)
        return whole if dist.low <= whole <= dist.high else _MISSING
    assert isinstance(dist, FloatDistribution)
    return number if dist.low <= number <= dist.high else _MISSING
