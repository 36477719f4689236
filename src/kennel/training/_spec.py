"""What a training job request may say, validated where it enters."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from kennel._spec import Spec
from kennel.debugger._spec import DebuggerConfig, ProfilerConfig

BUILTIN_TRAINER = "kennel.trainer"

# The built-in trainer's log lines, as SageMaker metric definitions.
BUILTIN_METRICS: list[dict[str, str]] = [
    {"name": "train:loss", "regex": r"train_loss=([0-9.eE+-]+)"},
    {"name": "validation:loss", "regex": r"valid_loss=([0-9.eE+-]+)"},
    {"name": "validation:accuracy", "regex": r"valid_accuracy=([0-9.eE+-]+)"},
    {"name": "test:loss", "regex": r"test_loss=([0-9.eE+-]+)"},
    {"name": "test:accuracy", "regex": r"test_accuracy=([0-9.eE+-]+)"},
    {"name": "train:samples_per_sec", "regex": r"samples_per_sec=([0-9.eE+-]+)"},
]


class MetricDefinition(Spec):
    name: str = Field(min_length=1, max_length=255)
    regex: str = Field(min_length=1, max_length=500)

    @field_validator("regex")
    @classmethod
    def _compiles_with_a_group(cls, value: str) -> str:
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex {value!r} does not compile: {exc}") from exc
        if pattern.groups < 1:
            raise ValueError(f"regex {value!r} needs a group ( ) around the value")
        return value


class TrainingJobSpec(Spec):
    """The body of ``POST /api/v1/training-jobs``."""

    name: str | None = None
    entry_point: str = BUILTIN_TRAINER
    source_uri: str | None = None
    hyperparameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    dataset: str | None = None
    channels: dict[str, str] = Field(default_factory=dict)
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=16)
    max_runtime_seconds: int = Field(default=86_400, ge=1, le=28 * 86_400)
    environment: dict[str, str] = Field(default_factory=dict)
    metric_definitions: list[MetricDefinition] = Field(default_factory=list)
    output_path: str | None = None
    debugger: DebuggerConfig | None = None
    """The hook's collections and Debugger rules; none by default (as in SageMaker)."""
    profiler: ProfilerConfig = Field(default_factory=ProfilerConfig)
    """System and framework metrics and profiler rules; on by default (as in SageMaker)."""

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9.\-_]{1,64}", name):
                raise ValueError(f"channel name {name!r} must be letters, digits, . - _")
        return value

    def hyperparameter_strings(self) -> dict[str, str]:
        """SageMaker hands every hyperparameter to the script as a string."""
        return {k: _as_string(v) for k, v in self.hyperparameters.items()}


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
