"""``HyperparameterTuner`` and its parameter ranges (SageMaker's ``sagemaker.tuner``).

A tuner turns an estimator's training job into the template of a tuning job: the
estimator's ``training_job_spec(inputs)`` (the body of ``POST /api/v1/training-jobs``)
gives the trials' code, data, instances and static hyperparameters; the tuner adds the
search (ranges, objective, strategy, budget) and posts the whole as
``POST /api/v1/tuning-jobs`` (kennel's ``TuningJobSpec``). Its trials are ordinary
training jobs, so ``best_estimator()`` attaches to one and ``deploy()`` serves it.

SageMaker's arguments that kennel cannot honour are refused by name (ValidationError),
never dropped: ``tags``, ``estimator_name`` (several estimators), ``autotune``,
``hyperparameters_to_keep_static``, ``complete_on_convergence``, and a training job
setting that the tuning job's trials cannot carry (``output_path``, Debugger, a
non-default profiler).
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from kennel._client import path_segment
from kennel._errors import UnexpectedStatusError, ValidationError
from kennel.sdk._predictor import (
    Deserializer,
    Predictor,
    Serializer,
    deploy_training_job,
)
from kennel.sdk._session import Session

if TYPE_CHECKING:
    import pandas

__all__ = [
    "CategoricalParameter",
    "ContinuousParameter",
    "HyperbandStrategyConfig",
    "HyperparameterTuner",
    "HyperparameterTuningJobAnalytics",
    "IntegerParameter",
    "ParameterRange",
    "StrategyConfig",
    "TuningJobCompletionCriteriaConfig",
    "WarmStartConfig",
    "WarmStartTypes",
]

TUNING_JOBS = "/api/v1/tuning-jobs"
TUNING_JOB_NAME_MAX_LENGTH = 32
"""SageMaker's limit: a trial's name adds ``-NNN-xxxxxxxx`` and must stay within 63."""
STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
OBJECTIVE_TYPES = ("Maximize", "Minimize")
EARLY_STOPPING_TYPES = ("Off", "Auto")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
MAX_TRAINING_JOBS = 500
"""kennel's most trials per tuning job; a Grid without ``max_jobs`` runs its whole grid
(the server stops at the grid's size)."""
ACTIVE = ("InProgress", "Stopping")
POLL_SECONDS = 1.0
PANDAS_EXTRA = "kennel[sdk]"
"""The extra that installs pandas, for ``analytics().dataframe()``."""
_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")

TEMPLATE_FIELDS = (
    "entry_point",
    "source_uri",
    "dataset",
    "channels",
    "instance_type",
    "instance_count",
    "max_runtime_seconds",
    "environment",
)
"""Training job fields a tuning job's trials take as they are."""
SPEC_FIELDS = {
    "max_training_jobs": "max_jobs",
    "max_parallel_training_jobs": "max_parallel_jobs",
    "max_tuning_runtime_seconds": "max_runtime_in_seconds",
    "early_stopping": "early_stopping_type",
    "parameter_ranges": "hyperparameter_ranges",
    "objective.metric_name": "objective_metric_name",
    "objective.type": "objective_type",
    "warm_start": "warm_start_config",
    "hyperband": "strategy_config",
    "target_objective_value": "target_objective_metric_value",
    "max_jobs_not_improving": "max_number_training_jobs_not_improving",
}
"""TuningJobSpec's fields as the tuner's arguments, to name them in the server's errors."""


# Parameter ranges -----------------------------------------------------------------------


class ParameterRange:
    """Base of the hyperparameter ranges a tuner searches (SageMaker's ``ParameterRange``)."""

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` lies in this range.

        Args:
            value: A hyperparameter value.

        Returns:
            True when the range holds it.
        """
        raise NotImplementedError

    def as_tuning_range(self, name: str) -> dict[str, Any]:
        """The range as SageMaker's API has it (``Name``, ``MinValue``, ...; values as text).

        Args:
            name: The hyperparameter's name.

        Returns:
            The range in SageMaker's wire shape.
        """
        raise NotImplementedError

    def _kind(self) -> str:
        raise NotImplementedError

    def _spec(self, name: str) -> dict[str, Any]:
        raise NotImplementedError


def _number(argument: str, value: Any, kinds: tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ValidationError(f"{argument} must be {what}, got {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{argument} must be finite, got {value!r}.")


def _scaling(value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValidationError(
            f"scaling_type {value!r} is not one of {', '.join(allowed)}.",
            hint="Auto lets kennel choose (Linear for these ranges); Logarithmic needs "
            "min_value > 0.",
        )
    return str(value)


class _NumericRange(ParameterRange):
    min_value: float
    max_value: float
    scaling_type: str

    def _check_bounds(self) -> None:
        if self.min_value >= self.max_value:
            raise ValidationError(
                f"min_value {self.min_value} must be below max_value {self.max_value}."
            )
        if self.scaling_type == "Logarithmic" and self.min_value <= 0:
            raise ValidationError(
                f"scaling_type Logarithmic needs min_value > 0, got {self.min_value}.",
                hint="Use Linear for a range that includes 0.",
            )

    def is_valid(self, value: Any) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and self.min_value <= value <= self.max_value
        )

    def as_tuning_range(self, name: str) -> dict[str, Any]:
        return {
            "Name": name,
            "MinValue": str(self.min_value),
            "MaxValue": str(self.max_value),
            "ScalingType": self.scaling_type,
        }

    def _spec(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "scaling_type": self.scaling_type,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.min_value!r}, {self.max_value!r}, "
            f"scaling_type={self.scaling_type!r})"
        )

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and repr(other) == repr(self)

    def __hash__(self) -> int:
        return hash(repr(self))


class ContinuousParameter(_NumericRange):
    """A range of real values (SageMaker's ``ContinuousParameter``).

    Args:
        min_value: The smallest value (inclusive).
        max_value: The largest value (inclusive).
        scaling_type: ``Auto`` (default), ``Linear``, ``Logarithmic`` (for values that
            span orders of magnitude, such as a learning rate; needs ``min_value > 0``) or
            ``ReverseLogarithmic`` (values close to 1, such as momentum; needs
            ``0 <= min_value`` and ``max_value < 1``).

    Raises:
        ValidationError: A bound is not a number, the bounds are not in order, or the
            scaling type does not fit them.
    """

    def __init__(self, min_value: float, max_value: float, scaling_type: str = "Auto") -> None:
        _number("min_value", min_value, (int, float), "a number")
        _number("max_value", max_value, (int, float), "a number")
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self.scaling_type = _scaling(scaling_type, SCALING_TYPES)
        self._check_bounds()
        if scaling_type == "ReverseLogarithmic" and not (min_value >= 0 and max_value < 1):
            raise ValidationError(
                "scaling_type ReverseLogarithmic needs 0 <= min_value and max_value < 1, "
                f"got {min_value}..{max_value}."
            )

    def _kind(self) -> str:
        return "continuous"


class IntegerParameter(_NumericRange):
    """A range of whole numbers (SageMaker's ``IntegerParameter``).

    Args:
        min_value: The smallest value (inclusive).
        max_value: The largest value (inclusive).
        scaling_type: ``Auto`` (default), ``Linear`` or ``Logarithmic`` (needs
            ``min_value > 0``); ``ReverseLogarithmic`` is for continuous ranges only.

    Raises:
        ValidationError: A bound is not a whole number, the bounds are not in order, or
            the scaling type does not fit.
    """

    def __init__(self, min_value: int, max_value: int, scaling_type: str = "Auto") -> None:
        _number("min_value", min_value, (int,), "a whole number")
        _number("max_value", max_value, (int,), "a whole number")
        self.min_value = int(min_value)
        self.max_value = int(max_value)
        self.scaling_type = _scaling(scaling_type, ("Auto", "Linear", "Logarithmic"))
        self._check_bounds()

    def is_valid(self, value: Any) -> bool:
        return isinstance(value, int) and super().is_valid(value)

    def _kind(self) -> str:
        return "integer"


class CategoricalParameter(ParameterRange):
    """A set of values to choose from (SageMaker's ``CategoricalParameter``).

    Args:
        values: The values (strings, numbers or booleans), or one value.

    Raises:
        ValidationError: No values, a value repeated, or a value of another type.
    """

    def __init__(self, values: Any) -> None:
        listed = list(values) if isinstance(values, list | tuple | set | frozenset) else [values]
        if not listed:
            raise ValidationError("values must hold at least one value.")
        for value in listed:
            if not isinstance(value, str | int | float | bool):
                raise ValidationError(
                    f"values must be strings, numbers or booleans, got {value!r}."
                )
        if len({str(v) for v in listed}) != len(listed):
            raise ValidationError(f"values {listed} repeat a value.")
        self.values: list[str | int | float | bool] = listed

    def is_valid(self, value: Any) -> bool:
        return value in self.values

    def as_tuning_range(self, name: str) -> dict[str, Any]:
        return {"Name": name, "Values": [_text(v) for v in self.values]}

    def _kind(self) -> str:
        return "categorical"

    def _spec(self, name: str) -> dict[str, Any]:
        return {"name": name, "values": list(self.values)}

    def __repr__(self) -> str:
        return f"CategoricalParameter({self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CategoricalParameter) and other.values == self.values

    def __hash__(self) -> int:
        return hash(repr(self))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Configs -----------------------------------------------------------------------------------


class WarmStartTypes(Enum):
    """How parent tuning jobs' trials seed a new one (SageMaker's ``WarmStartTypes``)."""

    IDENTICAL_DATA_AND_ALGORITHM = "IdenticalDataAndAlgorithm"
    """Same data, code and static hyperparameters; only the ranges may change."""
    TRANSFER_LEARNING = "TransferLearning"
    """The data, code, static hyperparameters and ranges may all change."""


class WarmStartConfig:
    """Earlier tuning jobs whose completed trials seed a new one (SageMaker's).

    Args:
        warm_start_type: A :class:`WarmStartTypes` (or its value as a string).
        parents: The parent tuning jobs' names (1 to 5).

    Raises:
        ValidationError: An unknown type, or no parents.
    """

    def __init__(self, warm_start_type: WarmStartTypes | str, parents: Iterable[str]) -> None:
        try:
            self.type = WarmStartTypes(
                warm_start_type.value
                if isinstance(warm_start_type, WarmStartTypes)
                else warm_start_type
            )
        except ValueError:
            allowed = ", ".join(t.value for t in WarmStartTypes)
            raise ValidationError(
                f"warm_start_type {warm_start_type!r} is not one of {allowed}."
            ) from None
        names = [parents] if isinstance(parents, str) else list(dict.fromkeys(parents))
        if not names:
            raise ValidationError("parents must name at least one tuning job.")
        self.parents = set(names)
        self._ordered = names

    def to_input_req(self) -> dict[str, Any]:
        """SageMaker's wire shape (``WarmStartType``, ``ParentHyperParameterTuningJobs``)."""
        return {
            "WarmStartType": self.type.value,
            "ParentHyperParameterTuningJobs": [
                {"HyperParameterTuningJobName": name} for name in self._ordered
            ],
        }

    def _spec(self) -> dict[str, Any]:
        return {"parent_tuning_jobs": list(self._ordered), "type": self.type.value}


class HyperbandStrategyConfig:
    """The epochs (steps) a Hyperband trial gets at least and at most (SageMaker's).

    Args:
        max_resource: The most epochs a trial runs (default: the first finished
            trial's).
        min_resource: The fewest epochs before a trial may be stopped (default: 1).
    """

    def __init__(self, max_resource: int | None = None, min_resource: int | None = None) -> None:
        for argument, value in (("max_resource", max_resource), ("min_resource", min_resource)):
            if value is not None:
                _number(argument, value, (int,), "a whole number")
                if value < 1:
                    raise ValidationError(f"{argument} must be at least 1, got {value}.")
        self.max_resource = max_resource
        self.min_resource = min_resource

    def _spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"min_resource": self.min_resource or 1}
        if self.max_resource is not None:
            spec["max_resource"] = self.max_resource
        return spec


class StrategyConfig:
    """Settings of the search strategy: Hyperband's only (SageMaker's ``StrategyConfig``).

    Args:
        hyperband_strategy_config: The Hyperband settings.
    """

    def __init__(self, hyperband_strategy_config: HyperbandStrategyConfig) -> None:
        if not isinstance(hyperband_strategy_config, HyperbandStrategyConfig):
            raise ValidationError(
                "hyperband_strategy_config must be a HyperbandStrategyConfig, got "
                f"{hyperband_strategy_config!r}."
            )
        self.hyperband_strategy_config = hyperband_strategy_config


class TuningJobCompletionCriteriaConfig:
    """When a tuning job may end before its budget is spent (SageMaker's).

    Args:
        max_number_training_jobs_not_improving: End after this many trials in a row that
            do not improve the best objective.
        complete_on_convergence: Not supported (kennel has no convergence detection);
            only None or False.
        target_objective_metric_value: End once a trial reaches this objective value.

    Raises:
        ValidationError: ``complete_on_convergence`` is True, or a value is out of range.
    """

    def __init__(
        self,
        max_number_training_jobs_not_improving: int | None = None,
        complete_on_convergence: bool | None = None,
        target_objective_metric_value: float | None = None,
    ) -> None:
        if complete_on_convergence:
            raise ValidationError(
                "complete_on_convergence is not supported: kennel does not detect convergence.",
                hint="Use max_number_training_jobs_not_improving or target_objective_metric_value.",
            )
        if max_number_training_jobs_not_improving is not None:
            _number(
                "max_number_training_jobs_not_improving",
                max_number_training_jobs_not_improving,
                (int,),
                "a whole number",
            )
            if max_number_training_jobs_not_improving < 1:
                raise ValidationError(
                    "max_number_training_jobs_not_improving must be at least 1, got "
                    f"{max_number_training_jobs_not_improving}."
                )
        if target_objective_metric_value is not None:
            _number(
                "target_objective_metric_value",
                target_objective_metric_value,
                (int, float),
                "a number",
            )
        self.max_number_training_jobs_not_improving = max_number_training_jobs_not_improving
        self.complete_on_convergence = complete_on_convergence
        self.target_objective_metric_value = target_objective_metric_value

    def _spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self.max_number_training_jobs_not_improving is not None:
            spec["max_jobs_not_improving"] = self.max_number_training_jobs_not_improving
        if self.target_objective_metric_value is not None:
            spec["target_objective_value"] = float(self.target_objective_metric_value)
        return spec


# The tuner ---------------------------------------------------------------------------------


class TuningJob:
    """The tuning job a tuner started or attached to (SageMaker's ``latest_tuning_job``).

    Attributes:
        name: The tuning job's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def job_name(self) -> str:
        """The tuning job's name (SageMaker's other spelling)."""
        return self.name

    def __repr__(self) -> str:
        return f"TuningJob({self.name!r})"


class HyperparameterTuner:
    """Searches an estimator's hyperparameters with a tuning job (SageMaker's
    ``HyperparameterTuner``).

    Args:
        estimator: The estimator whose training job is the trials' template (it gives
            ``training_job_spec(inputs)`` and ``sagemaker_session``).
        objective_metric_name: The metric to optimise, e.g. ``validation:loss`` (the
            built-in trainer's metrics are defined already; others need
            ``metric_definitions``).
        hyperparameter_ranges: Hyperparameter name -> :class:`ContinuousParameter`,
            :class:`IntegerParameter` or :class:`CategoricalParameter`. The estimator's
            other hyperparameters stay fixed.
        metric_definitions: ``[{"Name": ..., "Regex": ...}]``: how metrics are read from
            the trials' logs (default: the estimator's).
        strategy: ``Bayesian`` (default), ``Random``, ``Grid`` (categorical and integer
            ranges only) or ``Hyperband``.
        objective_type: ``Maximize`` (default, as in SageMaker) or ``Minimize``: a loss
            needs ``Minimize``.
        max_jobs: Trials in all (default: 1; for Grid, the whole grid).
        max_parallel_jobs: Trials at a time (default: 1).
        max_runtime_in_seconds: Wall clock for the whole tuning job; when it is up the
            running trials are stopped and the job ends Completed.
        tags: Not supported: kennel tuning jobs have no tags.
        base_tuning_job_name: The job name's prefix; a timestamp follows (default: from
            the estimator).
        warm_start_config: Parent tuning jobs whose trials seed this one.
        strategy_config: Hyperband's settings (with ``strategy="Hyperband"`` only).
        completion_criteria_config: When to end before the budget is spent.
        early_stopping_type: ``Off`` (default) or ``Auto``: stop trials that are unlikely
            to beat the best so far (median rule on the objective's per-epoch values).
        estimator_name: Not supported: one estimator per tuning job.
        random_seed: Seed of the search, for a repeatable sequence of trials.
        autotune: Not supported (only False): give the ranges and settings.
        hyperparameters_to_keep_static: Not supported (it goes with ``autotune``).

    Raises:
        ValidationError: An argument kennel cannot honour, or a value out of range; the
            message names the argument.
    """

    def __init__(
        self,
        estimator: Any,
        objective_metric_name: str,
        hyperparameter_ranges: Mapping[str, ParameterRange],
        metric_definitions: Sequence[Mapping[str, str]] | None = None,
        strategy: str = "Bayesian",
        objective_type: str = "Maximize",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        max_runtime_in_seconds: int | None = None,
        tags: Any = None,
        base_tuning_job_name: str | None = None,
        warm_start_config: WarmStartConfig | None = None,
        strategy_config: StrategyConfig | None = None,
        completion_criteria_config: TuningJobCompletionCriteriaConfig | None = None,
        early_stopping_type: str = "Off",
        estimator_name: str | None = None,
        random_seed: int | None = None,
        autotune: bool = False,
        hyperparameters_to_keep_static: Sequence[str] | None = None,
    ) -> None:
        if tags:
            _refused("tags", "kennel tuning jobs have no tags")
        if estimator_name is not None:
            _refused(
                "estimator_name",
                "a kennel tuning job has one estimator (no multi-algorithm tuning)",
            )
        if autotune:
            _refused("autotune", "give the ranges and settings yourself")
        if hyperparameters_to_keep_static is not None:
            _refused("hyperparameters_to_keep_static", "it goes with autotune")
        if estimator is None or not callable(getattr(estimator, "training_job_spec", None)):
            raise ValidationError(
                f"estimator must be a kennel Estimator (with training_job_spec()), got "
                f"{estimator!r}."
            )
        session = getattr(estimator, "sagemaker_session", None) or Session()
        self._configure(
            estimator=estimator,
            session=session,
            objective_metric_name=objective_metric_name,
            hyperparameter_ranges=hyperparameter_ranges,
            metric_definitions=metric_definitions,
            strategy=strategy,
            objective_type=objective_type,
            max_jobs=max_jobs,
            max_parallel_jobs=max_parallel_jobs,
            max_runtime_in_seconds=max_runtime_in_seconds,
            base_tuning_job_name=base_tuning_job_name,
            warm_start_config=warm_start_config,
            strategy_config=strategy_config,
            completion_criteria_config=completion_criteria_config,
            early_stopping_type=early_stopping_type,
            random_seed=random_seed,
        )

    def _configure(
        self,
        *,
        estimator: Any,
        session: Session,
        objective_metric_name: str,
        hyperparameter_ranges: Mapping[str, ParameterRange],
        metric_definitions: Sequence[Mapping[str, str]] | None,
        strategy: str,
        objective_type: str,
        max_jobs: int | None,
        max_parallel_jobs: int,
        max_runtime_in_seconds: int | None,
        base_tuning_job_name: str | None,
        warm_start_config: WarmStartConfig | None,
        strategy_config: StrategyConfig | None,
        completion_criteria_config: TuningJobCompletionCriteriaConfig | None,
        early_stopping_type: str,
        random_seed: int | None,
    ) -> None:
        if not isinstance(objective_metric_name, str) or not objective_metric_name:
            raise ValidationError(
                f"objective_metric_name must name a metric, got {objective_metric_name!r}."
            )
        _one_of("strategy", strategy, STRATEGIES)
        _one_of("objective_type", objective_type, OBJECTIVE_TYPES)
        _one_of("early_stopping_type", early_stopping_type, EARLY_STOPPING_TYPES)
        self._hyperparameter_ranges = _ranges(hyperparameter_ranges)
        if strategy == "Grid":
            continuous = [
                n for n, r in self._hyperparameter_ranges.items() if r._kind() == "continuous"
            ]
            if continuous:
                raise ValidationError(
                    f"strategy Grid takes categorical and integer ranges only; {continuous} "
                    "are ContinuousParameter.",
                    hint="Make them CategoricalParameter with the values to try, or use "
                    "Bayesian or Random.",
                )
        _positive("max_jobs", max_jobs, optional=True)
        _positive("max_parallel_jobs", max_parallel_jobs)
        _positive("max_runtime_in_seconds", max_runtime_in_seconds, optional=True)
        if max_jobs is not None and max_parallel_jobs > max_jobs:
            raise ValidationError(
                f"max_parallel_jobs ({max_parallel_jobs}) is more than max_jobs ({max_jobs})."
            )
        if base_tuning_job_name is not None and not _NAME.fullmatch(base_tuning_job_name):
            raise ValidationError(
                f"base_tuning_job_name {base_tuning_job_name!r} must be letters, digits and "
                "hyphens, starting and ending with a letter or digit."
            )
        _instance("warm_start_config", warm_start_config, WarmStartConfig)
        _instance("strategy_config", strategy_config, StrategyConfig)
        _instance(
            "completion_criteria_config",
            completion_criteria_config,
            TuningJobCompletionCriteriaConfig,
        )
        if strategy_config is not None and strategy != "Hyperband":
            raise ValidationError(
                f"strategy_config goes with strategy Hyperband (this tuner's is {strategy}).",
            )
        if strategy == "Hyperband" and early_stopping_type != "Off":
            raise ValidationError(
                "early_stopping_type must be Off with strategy Hyperband: Hyperband stops "
                "unpromising trials itself."
            )
        if warm_start_config is not None and strategy == "Grid":
            raise ValidationError(
                "warm_start_config does not go with strategy Grid: a grid runs every point "
                "whatever earlier jobs found."
            )
        if random_seed is not None:
            _number("random_seed", random_seed, (int,), "a whole number")
        self.estimator = estimator
        self.sagemaker_session = session
        self.objective_metric_name = objective_metric_name
        self.metric_definitions = _metric_definitions(metric_definitions, "metric_definitions")
        self.strategy = strategy
        self.objective_type = objective_type
        self.max_jobs = max_jobs
        self.max_parallel_jobs = max_parallel_jobs
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.base_tuning_job_name = base_tuning_job_name
        self.warm_start_config = warm_start_config
        self.strategy_config = strategy_config
        self.completion_criteria_config = completion_criteria_config
        self.early_stopping_type = early_stopping_type
        self.random_seed = random_seed
        self.latest_tuning_job: TuningJob | None = None

    # Attaching --------------------------------------------------------------------------

    @classmethod
    def attach(
        cls,
        tuning_job_name: str,
        sagemaker_session: Session | None = None,
        job_details: Mapping[str, Any] | None = None,
        estimator_cls: Any = None,
    ) -> HyperparameterTuner:
        """A tuner for a tuning job that exists: to wait on it, read its analytics,
        deploy its best trial.

        The tuner has no estimator, so ``fit()`` needs a new tuner; ``best_estimator()``
        still works.

        Args:
            tuning_job_name: The tuning job.
            sagemaker_session: Where the calls go (default: ``Session()``).
            job_details: The job's description, when you have it already (kennel's shape:
                ``GET /api/v1/tuning-jobs/{name}``).
            estimator_cls: Not supported: best_estimator() attaches kennel's Estimator.

        Returns:
            The tuner, with ``latest_tuning_job`` set.
        """
        if estimator_cls is not None:
            _refused("estimator_cls", "best_estimator() attaches kennel's Estimator")
        session = sagemaker_session or Session()
        details = dict(job_details or session.api.get(_job_path(tuning_job_name)))
        spec: dict[str, Any] = details["spec"]
        tuner = cls.__new__(cls)
        completion = None
        if spec.get("max_jobs_not_improving") or spec.get("target_objective_value") is not None:
            completion = TuningJobCompletionCriteriaConfig(
                max_number_training_jobs_not_improving=spec.get("max_jobs_not_improving"),
                target_objective_metric_value=spec.get("target_objective_value"),
            )
        hyperband = spec.get("hyperband")
        warm = spec.get("warm_start")
        tuner._configure(
            estimator=None,
            session=session,
            objective_metric_name=spec["objective"]["metric_name"],
            hyperparameter_ranges=_ranges_of(spec["parameter_ranges"]),
            metric_definitions=spec.get("metric_definitions") or None,
            strategy=spec["strategy"],
            objective_type=spec["objective"]["type"],
            max_jobs=spec["max_training_jobs"],
            max_parallel_jobs=spec["max_parallel_training_jobs"],
            max_runtime_in_seconds=spec.get("max_tuning_runtime_seconds"),
            base_tuning_job_name=None,
            warm_start_config=(
                WarmStartConfig(warm["type"], warm["parent_tuning_jobs"]) if warm else None
            ),
            strategy_config=(
                StrategyConfig(
                    HyperbandStrategyConfig(
                        hyperband.get("max_resource"), hyperband["min_resource"]
                    )
                )
                if hyperband
                else None
            ),
            completion_criteria_config=completion,
            early_stopping_type=spec["early_stopping"],
            random_seed=spec.get("random_seed"),
        )
        tuner.latest_tuning_job = TuningJob(str(details["name"]))
        return tuner

    # The spec ---------------------------------------------------------------------------

    def hyperparameter_ranges(self) -> dict[str, list[dict[str, Any]]]:
        """The ranges in SageMaker's wire shape (``ContinuousParameterRanges``, ...).

        Returns:
            Kind -> the ranges of that kind.
        """
        out: dict[str, list[dict[str, Any]]] = {
            "ContinuousParameterRanges": [],
            "IntegerParameterRanges": [],
            "CategoricalParameterRanges": [],
        }
        for name, found in self._hyperparameter_ranges.items():
            out[f"{found._kind().capitalize()}ParameterRanges"].append(found.as_tuning_range(name))
        return out

    def tuning_job_spec(self, inputs: Any = None, job_name: str | None = None) -> dict[str, Any]:
        """The body ``fit()`` posts to ``/api/v1/tuning-jobs`` (kennel's TuningJobSpec).

        Args:
            inputs: The training data, as the estimator's ``fit()`` takes it.
            job_name: The tuning job's name (default: ``base_tuning_job_name`` and a
                timestamp).

        Returns:
            The tuning job spec.

        Raises:
            ValidationError: A training job setting that tuning cannot carry, or a bad name.
        """
        estimator = self._require_estimator("tuning_job_spec")
        training: dict[str, Any] = dict(estimator.training_job_spec(inputs))
        tuned = set(self._hyperparameter_ranges)
        _check_template(training)
        spec: dict[str, Any] = {
            "name": self._job_name(job_name, training),
            "parameter_ranges": self._parameter_ranges(),
            "static_hyperparameters": {
                k: v for k, v in (training.get("hyperparameters") or {}).items() if k not in tuned
            },
            "objective": {"metric_name": self.objective_metric_name, "type": self.objective_type},
            "strategy": self.strategy,
            "max_training_jobs": self._max_training_jobs(),
            "max_parallel_training_jobs": self.max_parallel_jobs,
            "early_stopping": self.early_stopping_type,
        }
        definitions = self.metric_definitions or _metric_definitions(
            training.get("metric_definitions"), "the estimator's metric_definitions"
        )
        if definitions:
            spec["metric_definitions"] = definitions
        spec.update({k: training[k] for k in TEMPLATE_FIELDS if training.get(k) is not None})
        if self.max_runtime_in_seconds is not None:
            spec["max_tuning_runtime_seconds"] = self.max_runtime_in_seconds
        if self.random_seed is not None:
            spec["random_seed"] = self.random_seed
        if self.warm_start_config is not None:
            spec["warm_start"] = self.warm_start_config._spec()
        if self.strategy_config is not None:
            spec["hyperband"] = self.strategy_config.hyperband_strategy_config._spec()
        if self.completion_criteria_config is not None:
            spec.update(self.completion_criteria_config._spec())
        return spec

    def _parameter_ranges(self) -> dict[str, list[dict[str, Any]]]:
        ranges: dict[str, list[dict[str, Any]]] = {
            "continuous": [],
            "integer": [],
            "categorical": [],
        }
        for name, found in self._hyperparameter_ranges.items():
            ranges[found._kind()].append(found._spec(name))
        return ranges

    def _max_training_jobs(self) -> int:
        if self.max_jobs is not None:
            return self.max_jobs
        return MAX_TRAINING_JOBS if self.strategy == "Grid" else 1

    def _job_name(self, job_name: str | None, training: Mapping[str, Any]) -> str:
        if job_name is not None:
            if len(job_name) > TUNING_JOB_NAME_MAX_LENGTH or not _NAME.fullmatch(job_name):
                raise ValidationError(
                    f"job_name {job_name!r} must be 1-{TUNING_JOB_NAME_MAX_LENGTH} letters, "
                    "digits and hyphens, starting and ending with a letter or digit.",
                )
            return job_name
        base = self.base_tuning_job_name or _base_name(self.estimator, training)
        stamp = time.strftime("%y%m%d-%H%M%S", time.gmtime())
        trimmed = base[: TUNING_JOB_NAME_MAX_LENGTH - len(stamp) - 1].rstrip("-")
        return f"{trimmed}-{stamp}"

    def _require_estimator(self, method: str) -> Any:
        if self.estimator is None:
            raise ValidationError(
                f"{method}() needs an estimator; this tuner was attached to an existing "
                "tuning job.",
                hint="Make a HyperparameterTuner(estimator, ...) to start a new one.",
            )
        return self.estimator

    # Running ----------------------------------------------------------------------------

    def fit(
        self,
        inputs: Any = None,
        job_name: str | None = None,
        include_cls_metadata: bool = False,
        estimator_kwargs: Mapping[str, Any] | None = None,
        wait: bool = True,
        **kwargs: Any,
    ) -> None:
        """Start the tuning job and, by default, wait until it ends.

        Args:
            inputs: The training data, as the estimator's ``fit()`` takes it (a data set
                name, or channel -> data set).
            job_name: The tuning job's name (default: ``base_tuning_job_name`` and a
                timestamp).
            include_cls_metadata: Not supported (only False): kennel keeps no estimator
                class in the hyperparameters.
            estimator_kwargs: Not supported: one estimator per tuning job.
            wait: Wait until the tuning job ends (default: True, as in SageMaker).
            **kwargs: Not supported: each is refused by name.

        Raises:
            ValidationError: An argument kennel cannot honour, or a spec the server
                refused (the message names the tuner's argument).
            UnexpectedStatusError: With ``wait``, the tuning job Failed.
        """
        if include_cls_metadata:
            _refused("include_cls_metadata", "kennel keeps no estimator class metadata")
        if estimator_kwargs is not None:
            _refused("estimator_kwargs", "a kennel tuning job has one estimator")
        if kwargs:
            _refused(
                ", ".join(sorted(kwargs)),
                "HyperparameterTuner.fit() takes inputs, job_name and wait",
            )
        spec = self.tuning_job_spec(inputs, job_name)
        try:
            created = self.sagemaker_session.api.post(TUNING_JOBS, spec)
        except ValidationError as error:
            raise _named_for_tuner(error) from None
        self.latest_tuning_job = TuningJob(str(created["name"]))
        if wait:
            self.wait()

    def _latest(self) -> str:
        if self.latest_tuning_job is None:
            raise ValidationError(
                "No tuning job yet: call fit() first (or HyperparameterTuner.attach(name))."
            )
        return self.latest_tuning_job.name

    def wait(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Wait until the latest tuning job ends (Completed or Stopped).

        Args:
            sleep: Waits between polls (injectable for tests).

        Returns:
            The tuning job's description.

        Raises:
            UnexpectedStatusError: It Failed (the message has the failure reason).
        """
        name = self._latest()
        job: dict[str, Any] = self.sagemaker_session.api.get(_job_path(name))
        while job["status"] in ACTIVE:
            sleep(POLL_SECONDS)
            job = self.sagemaker_session.api.get(_job_path(name))
        if job["status"] == "Failed":
            raise UnexpectedStatusError(
                f"Error for tuning job {name}: Failed. Reason: "
                f"{job.get('failure_reason') or 'no reason recorded'}",
                allowed_statuses=("Completed", "Stopped"),
                actual_status="Failed",
                hint=f"See its trials: kennel tune describe {name}",
            )
        return job

    def describe(self) -> dict[str, Any]:
        """The latest tuning job as kennel describes it: status, counters, trials (best
        first), best training job, spec.

        Returns:
            ``GET /api/v1/tuning-jobs/{name}``'s answer.
        """
        job: dict[str, Any] = self.sagemaker_session.api.get(_job_path(self._latest()))
        return job

    def best_training_job(self) -> str:
        """The name of the best trial so far.

        Returns:
            The training job's name.

        Raises:
            ValidationError: No tuning job yet, or no trial has an objective value yet.
        """
        job = self.describe()
        best = job.get("best_training_job")
        if not best:
            raise ValidationError(
                f"Tuning job {job['name']} has no completed training job yet ({job['status']}).",
                hint=f"See its trials: kennel tune describe {job['name']}",
            )
        return str(best["training_job_name"])

    def best_estimator(self, best_training_job: str | None = None) -> Any:
        """An Estimator attached to the best trial (or to ``best_training_job``).

        Args:
            best_training_job: A trial's name (default: the best one).

        Returns:
            ``Estimator.attach(name)``.
        """
        from kennel.sdk._estimator import Estimator

        name = best_training_job or self.best_training_job()
        return Estimator.attach(name, sagemaker_session=self.sagemaker_session)

    def deploy(
        self,
        initial_instance_count: int,
        instance_type: str,
        serializer: Serializer | None = None,
        deserializer: Deserializer | None = None,
        accelerator_type: str | None = None,
        endpoint_name: str | None = None,
        wait: bool = True,
        model_name: str | None = None,
        kms_key: str | None = None,
        data_capture_config: Any = None,
        **kwargs: Any,
    ) -> Predictor:
        """Serve the best trial's model on a new endpoint (see ``deploy_training_job``).

        Args:
            initial_instance_count: Instances to start.
            instance_type: e.g. ``ml.m5.large``.
            serializer: The predictor's serializer (default: by the model; for the
                built-in trainer's, image bytes in).
            deserializer: The predictor's deserializer (default: by the model; for the
                built-in trainer's, JSON scores out).
            accelerator_type: Not supported (Elastic Inference).
            endpoint_name: The endpoint's name (default: the best trial's, as in SageMaker).
            wait: Wait until InService (default: True).
            model_name: The model's name (default: the best trial's).
            kms_key: Not supported: kennel does not encrypt with KMS keys.
            data_capture_config: Not supported by this SDK yet.
            **kwargs: Not supported: each is refused by name.

        Returns:
            A predictor for the endpoint.
        """
        for argument, value, why in (
            ("accelerator_type", accelerator_type, "kennel has no Elastic Inference"),
            ("kms_key", kms_key, "kennel does not encrypt with KMS keys"),
            ("data_capture_config", data_capture_config, "the SDK does not set data capture"),
        ):
            if value is not None:
                _refused(argument, why)
        if kwargs:
            _refused(", ".join(sorted(kwargs)), "HyperparameterTuner.deploy() does not take them")
        best = self.best_training_job()
        return deploy_training_job(
            self.sagemaker_session,
            best,
            initial_instance_count=initial_instance_count,
            instance_type=instance_type,
            endpoint_name=endpoint_name or best,
            serializer=serializer,
            deserializer=deserializer,
            wait=wait,
            model_name=model_name,
        )

    def stop_tuning_job(self) -> None:
        """Stop the latest tuning job and its running trials."""
        self.sagemaker_session.api.post(f"{_job_path(self._latest())}/stop", {})

    def identical_dataset_and_algorithm_tuner(
        self, additional_parents: Iterable[str] | None = None
    ) -> HyperparameterTuner:
        """A new tuner like this one, warm started from its latest tuning job (and
        ``additional_parents``) with the same data and code.

        Args:
            additional_parents: More parent tuning jobs.

        Returns:
            The new tuner (not started: call ``fit``).
        """
        return self._warm_child(WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM, additional_parents)

    def transfer_learning_tuner(
        self, additional_parents: Iterable[str] | None = None, estimator: Any = None
    ) -> HyperparameterTuner:
        """A new tuner warm started from this one's latest tuning job (and
        ``additional_parents``); data, code and ranges may change.

        Args:
            additional_parents: More parent tuning jobs.
            estimator: The new tuner's estimator (default: this tuner's).

        Returns:
            The new tuner (not started: call ``fit``).
        """
        child = self._warm_child(WarmStartTypes.TRANSFER_LEARNING, additional_parents)
        if estimator is not None:
            child.estimator = estimator
            child.sagemaker_session = getattr(estimator, "sagemaker_session", None) or (
                self.sagemaker_session
            )
        return child

    def _warm_child(
        self, kind: WarmStartTypes, additional_parents: Iterable[str] | None
    ) -> HyperparameterTuner:
        parents = [self._latest(), *(additional_parents or [])]
        if self.strategy == "Grid":
            raise ValidationError(
                "A Grid tuner cannot be warm started: a grid runs every point whatever "
                "earlier jobs found."
            )
        child = copy.copy(self)
        child.warm_start_config = WarmStartConfig(kind, parents)
        child.latest_tuning_job = None
        return child

    def analytics(self) -> HyperparameterTuningJobAnalytics:
        """The trials of the latest tuning job, as a table.

        Returns:
            Its analytics (``.dataframe()`` needs pandas).
        """
        return HyperparameterTuningJobAnalytics(self._latest(), self.sagemaker_session)

    def __repr__(self) -> str:
        latest = self.latest_tuning_job.name if self.latest_tuning_job else None
        return (
            f"HyperparameterTuner(objective={self.objective_type} "
            f"{self.objective_metric_name!r}, ranges={sorted(self._hyperparameter_ranges)}, "
            f"latest_tuning_job={latest!r})"
        )


# Analytics ---------------------------------------------------------------------------------


class HyperparameterTuningJobAnalytics:
    """A tuning job's trials as a table (SageMaker's ``HyperparameterTuningJobAnalytics``).

    Args:
        hyperparameter_tuning_job_name: The tuning job.
        sagemaker_session: Where the calls go (default: ``Session()``).
    """

    def __init__(
        self, hyperparameter_tuning_job_name: str, sagemaker_session: Session | None = None
    ) -> None:
        self.name = hyperparameter_tuning_job_name
        self.sagemaker_session = sagemaker_session or Session()
        self._description: dict[str, Any] | None = None
        self._summaries: list[dict[str, Any]] | None = None
        self._dataframe: pandas.DataFrame | None = None

    def clear_cache(self) -> None:
        """Forget what was read, so the next call asks the server again."""
        self._description = None
        self._summaries = None
        self._dataframe = None

    def description(self, force_refresh: bool = False) -> dict[str, Any]:
        """The tuning job's description (kennel's shape), read once and kept.

        Args:
            force_refresh: Read it again.

        Returns:
            ``GET /api/v1/tuning-jobs/{name}``'s answer.
        """
        if force_refresh:
            self.clear_cache()
        if self._description is None:
            self._description = self.sagemaker_session.api.get(_job_path(self.name))
        return self._description

    @property
    def tuning_ranges(self) -> dict[str, dict[str, Any]]:
        """Hyperparameter name -> its range (kennel's shape: ``min_value``, ... or
        ``values``)."""
        ranges = self.description()["spec"]["parameter_ranges"]
        return {
            r["name"]: r for kind in ("continuous", "integer", "categorical") for r in ranges[kind]
        }

    def _range_kinds(self) -> dict[str, str]:
        ranges = self.description()["spec"]["parameter_ranges"]
        return {
            r["name"]: kind
            for kind in ("continuous", "integer", "categorical")
            for r in ranges[kind]
        }

    def training_job_summaries(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """The trials (kennel's shape: ``training_job_name``, ``status``,
        ``hyperparameters``, ``objective``, ``created_at``, ``ended_at``, ...), best first.

        Args:
            force_refresh: Read them again.

        Returns:
            The trials.
        """
        if force_refresh:
            self.clear_cache()
        if self._summaries is None:
            answer = self.sagemaker_session.api.get(f"{_job_path(self.name)}/training-jobs")
            self._summaries = list(answer["training_jobs"])
        return self._summaries

    def dataframe(self, force_refresh: bool = False) -> pandas.DataFrame:
        """One row per trial, with SageMaker's columns: each tuned hyperparameter, then
        ``TrainingJobName``, ``TrainingJobStatus``, ``FinalObjectiveValue``,
        ``TrainingStartTime``, ``TrainingEndTime``, ``TrainingElapsedTimeSeconds``.

        The times are the trial's: from its launch by the tuning job to its end.

        Args:
            force_refresh: Read the trials again.

        Returns:
            The table (best objective first).

        Raises:
            ImportError: pandas is not installed (``pip install 'kennel[sdk]'``).
        """
        try:
            import pandas
        except ImportError as error:
            raise ImportError(
                f"HyperparameterTuningJobAnalytics.dataframe() needs pandas: pip install "
                f"'{PANDAS_EXTRA}' (or pip install pandas)."
            ) from error
        if force_refresh:
            self.clear_cache()
        if self._dataframe is None:
            kinds = self._range_kinds()
            rows = [_row(trial, kinds) for trial in self.training_job_summaries()]
            columns = [*kinds, *_COLUMNS]
            self._dataframe = pandas.DataFrame(rows, columns=columns)
        return self._dataframe

    def export_csv(self, filename: str, force_refresh: bool = False) -> None:
        """Write ``dataframe()`` to a CSV file.

        Args:
            filename: The file to write.
            force_refresh: Read the trials again first.
        """
        self.dataframe(force_refresh=force_refresh).to_csv(filename)

    def __repr__(self) -> str:
        return f"HyperparameterTuningJobAnalytics({self.name!r})"


_COLUMNS = (
    "TrainingJobName",
    "TrainingJobStatus",
    "FinalObjectiveValue",
    "TrainingStartTime",
    "TrainingEndTime",
    "TrainingElapsedTimeSeconds",
)


def _row(trial: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    """A trial as a row: tuned values as numbers where their range is numeric."""
    values = trial.get("hyperparameters") or {}
    row: dict[str, Any] = {}
    for name, kind in kinds.items():
        value = values.get(name)
        if value is not None and kind == "integer":
            value = int(float(value))
        elif value is not None and kind == "continuous":
            value = float(value)
        row[name] = value
    start, end = _when(trial.get("created_at")), _when(trial.get("ended_at"))
    row.update(
        TrainingJobName=trial["training_job_name"],
        TrainingJobStatus=trial["status"],
        FinalObjectiveValue=trial.get("objective"),
        TrainingStartTime=start,
        TrainingEndTime=end,
        TrainingElapsedTimeSeconds=(end - start).total_seconds() if start and end else None,
    )
    return row


def _when(text: Any) -> datetime | None:
    """An ISO time as an aware datetime; the server writes some without an offset (a
    training job's times, read back from SQLite), and those are UTC."""
    if not isinstance(text, str) or not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Helpers -----------------------------------------------------------------------------------


def _job_path(name: str) -> str:
    return f"{TUNING_JOBS}/{path_segment(name)}"


def _refused(argument: str, why: str) -> None:
    raise ValidationError(f"{argument} is not supported: {why}.", hint=f"Drop {argument}.")


def _one_of(argument: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValidationError(f"{argument} {value!r} is not one of {', '.join(allowed)}.")


def _positive(argument: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    _number(argument, value, (int,), "a whole number")
    if value < 1:
        raise ValidationError(f"{argument} must be at least 1, got {value}.")


def _instance(argument: str, value: Any, kind: type) -> None:
    if value is not None and not isinstance(value, kind):
        raise ValidationError(f"{argument} must be a {kind.__name__}, got {value!r}.")


def _ranges(ranges: Any) -> dict[str, ParameterRange]:
    if not isinstance(ranges, Mapping) or not ranges:
        raise ValidationError(
            "hyperparameter_ranges must map hyperparameter names to ranges, with at least "
            f"one; got {ranges!r}."
        )
    for name, found in ranges.items():
        if not isinstance(name, str) or not name:
            raise ValidationError(f"hyperparameter_ranges: {name!r} is not a hyperparameter name.")
        if not isinstance(found, ParameterRange):
            raise ValidationError(
                f"hyperparameter_ranges[{name!r}] must be a ContinuousParameter, "
                f"IntegerParameter or CategoricalParameter, got {found!r}."
            )
    return dict(ranges)


def _ranges_of(spec: Mapping[str, list[dict[str, Any]]]) -> dict[str, ParameterRange]:
    """A tuning job spec's ranges as range objects (for ``attach``)."""
    found: dict[str, ParameterRange] = {}
    for r in spec.get("continuous", []):
        found[r["name"]] = ContinuousParameter(r["min_value"], r["max_value"], r["scaling_type"])
    for r in spec.get("integer", []):
        found[r["name"]] = IntegerParameter(r["min_value"], r["max_value"], r["scaling_type"])
    for r in spec.get("categorical", []):
        found[r["name"]] = CategoricalParameter(r["values"])
    return found


def _metric_definitions(value: Any, argument: str) -> list[dict[str, str]]:
    """SageMaker's ``[{"Name", "Regex"}]`` (or kennel's lower-case keys) as kennel's."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValidationError(f"{argument} must be a list of {{'Name', 'Regex'}}, got {value!r}.")
    out = []
    for item in value:
        name = item.get("Name", item.get("name")) if isinstance(item, Mapping) else None
        regex = item.get("Regex", item.get("regex")) if isinstance(item, Mapping) else None
        if not (isinstance(name, str) and isinstance(regex, str)):
            raise ValidationError(
                f"{argument}: {item!r} must be {{'Name': metric name, 'Regex': a regex with "
                "a group around the value}."
            )
        out.append({"name": name, "regex": regex})
    return out


def _check_template(training: Mapping[str, Any]) -> None:
    """Refuse what a training job had that a tuning job's trials cannot carry."""
    known = {*TEMPLATE_FIELDS, "name", "hyperparameters", "metric_definitions"}
    if training.get("output_path"):
        _refused(
            "The estimator's output_path",
            "a tuning job's trials keep their models under their own names",
        )
    if training.get("debugger"):
        _refused("The estimator's Debugger settings", "a tuning job's trials run without them")
    profiler = training.get("profiler")
    if profiler is not None and not _default_profiler(profiler):
        _refused(
            "The estimator's profiler settings",
            "a tuning job's trials run with the default profiler",
        )
    unknown = sorted(set(training) - known - {"output_path", "debugger", "profiler"})
    if unknown:
        _refused(
            f"The training job settings {unknown}",
            "a tuning job's trials take only " + ", ".join(sorted(known)),
        )


def _default_profiler(profiler: Any) -> bool:
    from kennel.debugger._spec import ProfilerConfig

    try:
        given = ProfilerConfig.model_validate(profiler).model_dump(mode="json")
    except ValueError:
        return False
    return given == ProfilerConfig().model_dump(mode="json")


def _base_name(estimator: Any, training: Mapping[str, Any]) -> str:
    """The estimator's ``base_job_name``, else one from its entry point."""
    base = getattr(estimator, "base_job_name", None)
    if not isinstance(base, str) or not base:
        entry = str(training.get("entry_point") or "kennel.trainer")
        base = entry.rsplit("/", 1)[-1].removesuffix(".py").replace(".", "-")
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", base).strip("-")
    return cleaned or "tuning"


def _named_for_tuner(error: ValidationError) -> ValidationError:
    """The server's error with the spec's field names as the tuner's arguments."""
    message = error.message
    for field, argument in SPEC_FIELDS.items():
        message = re.sub(rf"\b{re.escape(field)}\b", f"{argument} ({field})", message)
    return ValidationError(message, hint=error.hint)
