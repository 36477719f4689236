"""kennel: operationalize an image classifier on your own machines.

SageMaker-style training, tuning and endpoints, Lambda-style functions, IAM-style
least privilege and Application Auto Scaling, on Ray.

The SDK has the SageMaker Python SDK's names: ``kennel.Session``, ``kennel.PyTorch``
(``kennel.pytorch``), ``kennel.Estimator`` (``kennel.estimator``), ``kennel.TrainingInput``
(``kennel.inputs``), ``kennel.HyperparameterTuner`` and the parameter ranges
(``kennel.tuner``), ``kennel.Predictor`` (``kennel.predictor``), ``kennel.serializers``,
``kennel.deserializers`` and, in ``kennel.debugger``, ``Rule``, ``rule_configs`` and
``ProfilerConfig``. They are imported on first use, so ``import kennel`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kennel._errors import (
    AccessDeniedError,
    AuthError,
    ConflictError,
    InternalError,
    InvalidSignatureError,
    KennelError,
    MissingAuthenticationTokenError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnexpectedStatusError,
    UnrecognizedClientError,
    ValidationError,
)
from kennel._settings import DEFAULT_PORT, Settings

if TYPE_CHECKING:
    from kennel.sdk._estimator import Estimator, PyTorch
    from kennel.sdk._inputs import DatasetInput, TrainingInput
    from kennel.sdk._predictor import Predictor
    from kennel.sdk._session import Session
    from kennel.sdk._tuner import (
        CategoricalParameter,
        ContinuousParameter,
        HyperparameterTuner,
        IntegerParameter,
    )

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PORT",
    "AccessDeniedError",
    "AuthError",
    "ConflictError",
    "InternalError",
    "InvalidSignatureError",
    "KennelError",
    "MissingAuthenticationTokenError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "Settings",
    "UnexpectedStatusError",
    "UnrecognizedClientError",
    "ValidationError",
    "__version__",
    # the SDK, imported on first use
    "CategoricalParameter",
    "ContinuousParameter",
    "DatasetInput",
    "Estimator",
    "HyperparameterTuner",
    "IntegerParameter",
    "Predictor",
    "PyTorch",
    "Session",
    "TrainingInput",
]

_SDK = {
    "CategoricalParameter": "kennel.sdk._tuner",
    "ContinuousParameter": "kennel.sdk._tuner",
    "DatasetInput": "kennel.sdk._inputs",
    "Estimator": "kennel.sdk._estimator",
    "HyperparameterTuner": "kennel.sdk._tuner",
    "IntegerParameter": "kennel.sdk._tuner",
    "Predictor": "kennel.sdk._predictor",
    "PyTorch": "kennel.sdk._estimator",
    "Session": "kennel.sdk._session",
    "TrainingInput": "kennel.sdk._inputs",
}


def __getattr__(name: str) -> object:
    module = _SDK.get(name)
    if module is None:
        raise AttributeError(f"module 'kennel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
