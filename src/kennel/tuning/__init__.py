"""Hyperparameter tuning jobs on Optuna, with SageMaker's tuner semantics."""

from kennel.tuning._report import tuning_report, tuning_report_html
from kennel.tuning._service import TuningService
from kennel.tuning._spec import (
    CategoricalRange,
    ContinuousRange,
    HyperbandConfig,
    IntegerRange,
    Objective,
    ParameterRanges,
    TuningJobSpec,
    WarmStart,
)

__all__ = [
    "CategoricalRange",
    "ContinuousRange",
    "HyperbandConfig",
    "IntegerRange",
    "Objective",
    "ParameterRanges",
    "TuningJobSpec",
    "TuningService",
    "WarmStart",
    "tuning_report",
    "tuning_report_html",
]
