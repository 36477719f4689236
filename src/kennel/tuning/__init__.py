"""Hyperparameter tuning jobs on Optuna, with SageMaker's tuner semantics."""

from kennel.tuning._service import TuningService
from kennel.tuning._spec import (
    CategoricalRange,
    ContinuousRange,
    IntegerRange,
    Objective,
    ParameterRanges,
    TuningJobSpec,
)

__all__ = [
    "CategoricalRange",
    "ContinuousRange",
    "IntegerRange",
    "Objective",
    "ParameterRanges",
    "TuningJobSpec",
    "TuningService",
]
