"""What a training job says about its debugger and profiler, validated where it enters.

The shape is SageMaker's (DebugHookConfig + DebugRuleConfigurations, ProfilerConfig +
ProfilerRuleConfigurations) in kennel's snake_case, one block each::

    debugger:
      save_interval: 10
      collections: [losses, weights, gradients, labels]
      rules:
        - rule: vanishing_gradient            # or VanishingGradient
          parameters: {threshold: 1e-7}
          actions: [StopTraining]
    profiler:                                 # on by default, as in SageMaker
      interval_ms: 500
      framework_metrics: true
      rules: [{rule: ProfilerReport}]         # the default: every profiler rule

A rule's parameters are checked by the rule itself, and a debugger rule that reads a
collection the hook would not save is refused here, before the job starts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kennel._spec import Spec

CONFIG_ENV = "KENNEL_DEBUGGER_CONFIG"
"""JSON of the hook's configuration (``hook_config``); set by kennel for a job's script."""

Collection = Literal["losses", "weights", "gradients", "activations", "labels"]
DEFAULT_COLLECTIONS: list[Collection] = ["losses", "weights", "gradients", "labels"]
INTERVALS_MS = (100, 200, 500, 1000, 5000, 60000)
"""SageMaker's ProfilingIntervalInMilliseconds values."""


class RuleConfiguration(Spec):
    rule: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=256)
    """The configuration's name (SageMaker's RuleConfigurationName); default the rule's."""
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    actions: list[Literal["StopTraining"]] = Field(default_factory=list)

    @field_validator("actions", mode="before")
    @classmethod
    def _action_spelling(cls, value: Any) -> Any:
        spellings = {"stop_training": "StopTraining", "stoptraining": "StopTraining"}
        if isinstance(value, list):
            return [spellings.get(str(v).lower(), v) for v in value]
        return value

    @property
    def configuration_name(self) -> str:
        from kennel.debugger.rules import rule_class

        return self.name or rule_class(self.rule).name


class DebuggerConfig(Spec):
    save_interval: int = Field(default=100, ge=1, le=1_000_000)
    collections: list[Collection] = Field(default_factory=lambda: list(DEFAULT_COLLECTIONS))
    rules: list[RuleConfiguration] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules_fit(self) -> DebuggerConfig:
        _check_rules(self.rules, "debugger", set(self.collections))
        return self


class ProfilerConfig(Spec):
    enabled: bool = True
    interval_ms: int = 500
    framework_metrics: bool = True
    rules: list[RuleConfiguration] = Field(
        default_factory=lambda: [RuleConfiguration(rule="ProfilerReport")]
    )

    @field_validator("interval_ms")
    @classmethod
    def _sagemaker_interval(cls, value: int) -> int:
        if value not in INTERVALS_MS:
            raise ValueError(f"interval_ms must be one of {INTERVALS_MS} (as in SageMaker)")
        return value

    @model_validator(mode="after")
    def _rules_fit(self) -> ProfilerConfig:
        if not self.enabled and self.rules:
            self.rules = []  # nothing to read: a disabled profiler runs no rules
        _check_rules(self.rules, "profiler", set())
        return self


def _check_rules(rules: list[RuleConfiguration], kind: str, collections: set[str]) -> None:
    from kennel.debugger.rules import rule_class

    names: set[str] = set()
    for config in rules:
        try:
            cls = rule_class(config.rule)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from exc
        if cls.kind != kind:
            raise ValueError(f"{cls.name} is a {cls.kind} rule; list it under {cls.kind}.rules")
        missing = [c for c in cls.needs if c not in collections] if kind == "debugger" else []
        if missing:
            raise ValueError(
                f"{cls.name} reads the {', '.join(missing)} collection(s); add them to "
                "debugger.collections"
            )
        cls(config.parameters)  # the rule checks its own parameters
        name = config.name or cls.name
        if name in names:
            raise ValueError(f"two rule configurations are named {name!r}; name them apart")
        names.add(name)


def hook_config(
    debugger: DebuggerConfig | None, profiler: ProfilerConfig, out_dir: str
) -> dict[str, Any] | None:
    """What the training script's hook is told (``KENNEL_DEBUGGER_CONFIG``), or None when
    neither the debugger nor the profiler's framework metrics want it."""
    framework = profiler.enabled and profiler.framework_metrics
    if debugger is None and not framework:
        return None
    collections = list(debugger.collections) if debugger else ["losses"]
    return {
        "out_dir": out_dir,
        "save_interval": debugger.save_interval if debugger else 100,
        "collections": collections,
        "framework": framework,
    }
