"""What a tuning job request may say (SageMaker's HyperParameterTuningJob, snake_case).

Validated where it enters, so a search space Optuna cannot sample, or a Grid over a
continuous range, is refused before any training job starts.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from kennel._spec import Spec
from kennel.training import BUILTIN_TRAINER, MetricDefinition

MAX_NAME_LENGTH = 32
"""SageMaker's limit for tuning job names: ``-NNN-xxxxxxxx`` (13 characters) must still fit
in a training job name."""

HyperparameterValue = str | int | float | bool
ScalingType = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]


class ContinuousRange(Spec):
    name: str = Field(min_length=1, max_length=256)
    min_value: float
    max_value: float
    scaling_type: ScalingType = "Auto"

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if self.min_value >= self.max_value:
            raise ValueError(
                f"range {self.name!r}: min_value {self.min_value} must be below "
                f"max_value {self.max_value}"
            )
        if self.scaling_type == "Logarithmic" and self.min_value <= 0:
            raise ValueError(
                f"range {self.name!r}: Logarithmic scaling needs min_value > 0 "
                f"(got {self.min_value}); use Linear for ranges that include 0"
            )
        if self.scaling_type == "ReverseLogarithmic" and not (
            self.min_value >= 0 and self.max_value < 1
        ):
            raise ValueError(
                f"range {self.name!r}: ReverseLogarithmic scaling needs 0 <= min_value and "
                "max_value < 1 (it is meant for values close to 1, such as momentum)"
            )
        return self


class IntegerRange(Spec):
    name: str = Field(min_length=1, max_length=256)
    min_value: int
    max_value: int
    scaling_type: ScalingType = "Auto"

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if self.min_value >= self.max_value:
            raise ValueError(
                f"range {self.name!r}: min_value {self.min_value} must be below "
                f"max_value {self.max_value}"
            )
        if self.scaling_type == "Logarithmic" and self.min_value <= 0:
            raise ValueError(
                f"range {self.name!r}: Logarithmic scaling needs min_value > 0 "
                f"(got {self.min_value})"
            )
        if self.scaling_type == "ReverseLogarithmic":
            raise ValueError(
                f"range {self.name!r}: ReverseLogarithmic scaling is for continuous ranges "
                "only (as in SageMaker); use Linear or Logarithmic"
            )
        return self


class CategoricalRange(Spec):
    name: str = Field(min_length=1, max_length=256)
    values: list[HyperparameterValue] = Field(min_length=1, max_length=30)

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: list[HyperparameterValue]) -> list[HyperparameterValue]:
        if len({str(v) for v in values}) != len(values):
            raise ValueError(f"categorical values {values} repeat a value")
        return values


class ParameterRanges(Spec):
    continuous: list[ContinuousRange] = Field(default_factory=list)
    integer: list[IntegerRange] = Field(default_factory=list)
    categorical: list[CategoricalRange] = Field(default_factory=list)

    def names(self) -> list[str]:
        return (
            [r.name for r in self.continuous]
            + [r.name for r in self.integer]
            + [r.name for r in self.categorical]
        )


class Objective(Spec):
    metric_name: str = Field(min_length=1, max_length=255)
    type: Literal["Maximize", "Minimize"]


class HyperbandConfig(Spec):
    """SageMaker's HyperbandStrategyConfig: the epochs (steps) a trial gets at least and at
    most. Without ``max_resource`` Optuna takes the first finished trial's epoch count."""

    min_resource: int = Field(default=1, ge=1)
    max_resource: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_resource is not None and self.max_resource <= self.min_resource:
            raise ValueError(
                f"hyperband max_resource ({self.max_resource}) must be above "
                f"min_resource ({self.min_resource})"
            )
        return self


class WarmStart(Spec):
    """SageMaker's WarmStartConfig: earlier tuning jobs whose completed trials seed the search.

    ``IdenticalDataAndAlgorithm`` means same data, script and static hyperparameters (only
    the ranges may narrow or move); ``TransferLearning`` allows a changed data set, script,
    static hyperparameters and ranges.
    """

    parent_tuning_jobs: list[str] = Field(min_length=1, max_length=5)
    type: Literal["IdenticalDataAndAlgorithm", "TransferLearning"]

    @field_validator("parent_tuning_jobs")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError(f"parent_tuning_jobs {names} name a tuning job more than once")
        return names


class TuningJobSpec(Spec):
    """The body of ``POST /api/v1/tuning-jobs``: a search over training job hyperparameters."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    parameter_ranges: ParameterRanges
    static_hyperparameters: dict[str, HyperparameterValue] = Field(default_factory=dict)
    objective: Objective
    metric_definitions: list[MetricDefinition] = Field(default_factory=list)
    strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"] = "Bayesian"
    hyperband: HyperbandConfig | None = None
    """Only with the Hyperband strategy (SageMaker's StrategyConfig.HyperbandStrategyConfig)."""
    warm_start: WarmStart | None = None
    random_seed: int | None = None
    max_training_jobs: int = Field(default=10, ge=1, le=500)
    max_parallel_training_jobs: int = Field(default=1, ge=1, le=100)
    max_failed_training_jobs: int | None = Field(default=None, ge=0)
    """Failed trials tolerated before the tuning job fails (kennel's own knob). Default:
    half the budget (see ``failure_limit``)."""
    early_stopping: Literal["Off", "Auto"] = "Off"
    target_objective_value: float | None = None
    max_jobs_not_improving: int | None = Field(default=None, ge=1)
    # The training job template (as TrainingJobSpec has it).
    entry_point: str = BUILTIN_TRAINER
    source_uri: str | None = None
    dataset: str | None = None
    channels: dict[str, str] = Field(default_factory=dict)
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=16)
    max_runtime_seconds: int = Field(default=86_400, ge=1, le=28 * 86_400)
    environment: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", value):
            raise ValueError(
                f"tuning job name {value!r} must be letters, digits and hyphens, starting "
                "and ending with a letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        names = self.parameter_ranges.names()
        if not names:
            raise ValueError("parameter_ranges is empty: give at least one range to search")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"parameter ranges {repeated} are given more than once")
        both = sorted(set(names) & set(self.static_hyperparameters))
        if both:
            raise ValueError(
                f"hyperparameters {both} are both static and tuned; drop them from one side"
            )
        if self.strategy == "Grid" and self.parameter_ranges.continuous:
            raise ValueError(
                "the Grid strategy takes only categorical and integer ranges; "
                f"{[r.name for r in self.parameter_ranges.continuous]} are continuous "
                "(make them categorical with the values to try, or use Bayesian or Random)"
            )
        if self.strategy == "Hyperband" and self.early_stopping != "Off":
            raise ValueError(
                "the Hyperband strategy stops unpromising training jobs itself; "
                f"early_stopping must be Off with it (got {self.early_stopping!r})"
            )
        if self.hyperband is not None and self.strategy != "Hyperband":
            raise ValueError(
                f"hyperband settings go with the Hyperband strategy (this job is {self.strategy}); "
                "drop them or set strategy: Hyperband"
            )
        if self.warm_start is not None and self.strategy == "Grid":
            raise ValueError(
                "warm_start does not go with the Grid strategy: a grid runs every point whatever "
                "earlier jobs found; use Bayesian (or Hyperband) to build on parent jobs"
            )
        if self.warm_start is not None and self.name in self.warm_start.parent_tuning_jobs:
            raise ValueError(f"tuning job {self.name!r} cannot warm start from itself")
        if self.max_parallel_training_jobs > self.max_training_jobs:
            raise ValueError(
                f"max_parallel_training_jobs ({self.max_parallel_training_jobs}) is more than "
                f"max_training_jobs ({self.max_training_jobs})"
            )
        return self

    @property
    def failure_limit(self) -> int:
        """How many failed trials the tuning job survives.

        Half the budget by default: a few values that crash the script (a batch too big
        for memory) must not end a search, but when half the trials fail the script or the
        search space is broken, and running the rest would only waste the budget.
        """
        if self.max_failed_training_jobs is not None:
            return self.max_failed_training_jobs
        return max(1, self.max_training_jobs // 2)

    def resolved_metric_definitions(self) -> list[dict[str, str]]:
        """The objective's regex comes from here (the built-in trainer's by default)."""
        from kennel.training._spec import BUILTIN_METRICS

        if self.metric_definitions:
            return [m.model_dump() for m in self.metric_definitions]
        if self.entry_point == BUILTIN_TRAINER:
            return list(BUILTIN_METRICS)
        return []

    @model_validator(mode="after")
    def _objective_is_defined(self) -> Self:
        defined = [m["name"] for m in self.resolved_metric_definitions()]
        if self.objective.metric_name not in defined:
            raise ValueError(
                f"objective metric {self.objective.metric_name!r} has no metric definition "
                f"(defined: {defined or 'none'}); add one to metric_definitions with a regex "
                "that captures its value from the log"
            )
        return self

    # The tuning job's global budget. ``max_runtime_seconds`` above is each trial's limit
    # (SageMaker's StoppingCondition), so the whole job's wall clock (SageMaker's
    # ResourceLimits.MaxRuntimeInSeconds) takes a name of its own.
    max_tuning_runtime_seconds: int | None = Field(default=None, ge=1, le=30 * 86_400)
    """Wall clock for the whole tuning job: when it is up no trial starts, the running ones
    are stopped, and the job ends Completed (completion_reason MaxRuntimeExceeded)."""
    max_instance_hours: float | None = Field(default=None, gt=0, le=1_000_000)
    """Instance-hours all trials may use together (trial runtime x instance count), kennel's
    own limit; reaching it ends the job like the runtime budget (MaxInstanceHoursExceeded)."""
