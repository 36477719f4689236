"""SageMaker's ``sagemaker.debugger`` names, mapped onto kennel's debugger and profiler.

What a SageMaker notebook writes::

    rules = [
        Rule.sagemaker(rule_configs.vanishing_gradient(), rule_parameters={"threshold": "1e-6"},
                       actions=rule_configs.ActionList(rule_configs.StopTraining())),
        ProfilerRule.sagemaker(rule_configs.ProfilerReport()),
    ]
    profiler_config = ProfilerConfig(system_monitor_interval_millis=500)
    debugger_hook_config = DebuggerHookConfig(
        hook_parameters={"save_interval": "10"},
        collection_configs=[CollectionConfig("gradients"), CollectionConfig("weights")],
    )

becomes the ``debugger`` and ``profiler`` blocks of a kennel training job (see
``kennel.debugger._spec``). kennel runs its built-in rules (the names below) on data the
job's hook and system monitor write under the job's output; what needs something else
(custom rule containers, other output locations, e-mail actions) is refused by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from kennel._errors import ValidationError
from kennel.debugger._spec import DEFAULT_COLLECTIONS, INTERVALS_MS
from kennel.debugger._spec import DebuggerConfig as _DebuggerBlock
from kennel.debugger._spec import ProfilerConfig as _ProfilerBlock

Kind = Literal["debugger", "profiler"]
ParameterValue = str | int | float | bool

COLLECTION_ALIASES = {"biases": "weights", "relu_activations": "activations"}
"""SageMaker collection names kennel saves under another name (kennel's ``weights`` are
every parameter, biases included; its ``activations`` are the ReLU layers' outputs)."""
KENNEL_COLLECTIONS = ("losses", "weights", "gradients", "activations", "labels")


# Rule configurations (what ``rule_configs.xxx()`` returns) -------------------------------


@dataclass(frozen=True)
class RuleConfig:
    """A built-in rule with its parameters, as ``rule_configs`` makes it; give it to
    ``Rule.sagemaker`` (debugger rules) or ``ProfilerRule.sagemaker`` (profiler rules)."""

    rule: str
    """The rule's name (SageMaker's CamelCase, e.g. ``VanishingGradient``)."""
    kind: Kind
    parameters: Mapping[str, ParameterValue] = field(default_factory=dict)


def _rule_config(name: str, parameters: Mapping[str, Any] | None = None) -> RuleConfig:
    from kennel.debugger.rules import rule_class

    cls = rule_class(name)
    params = dict(parameters or {})
    _check_parameters(cls.name, params, f"rule_configs.{name}(...)")
    return RuleConfig(rule=cls.name, kind=cls.kind, parameters=params)


def _check_parameters(rule: str, parameters: Mapping[str, Any], where: str) -> None:
    """The rule checks its own parameters; a problem is refused here, naming it."""
    from kennel.debugger.rules import rule_class

    for key, value in parameters.items():
        if not isinstance(value, str | int | float | bool):
            raise ValidationError(
                f"{where}: parameter {key!r} is a {type(value).__name__}; rule parameters "
                "are strings, numbers or booleans."
            )
    try:
        rule_class(rule)(parameters)
    except ValueError as exc:
        raise ValidationError(
            f"{where}: {exc}",
            hint=f"See the parameters of {rule} in `kennel.debugger.rules` (its Params).",
        ) from None


@dataclass(frozen=True)
class StopTrainingAction:
    """``rule_configs.StopTraining()``: stop the job when the rule fires."""

    name: str = "StopTraining"


@dataclass(frozen=True)
class ActionList:
    """``rule_configs.ActionList(*actions)``: what to do when a rule fires."""

    actions: tuple[StopTrainingAction, ...]


def _action_list(*actions: object) -> ActionList:
    for action in actions:
        if not isinstance(action, StopTrainingAction):
            raise ValidationError(
                f"rule_configs.ActionList(...) got {action!r}; kennel's only action is "
                "rule_configs.StopTraining().",
            )
    return ActionList(tuple(a for a in actions if isinstance(a, StopTrainingAction)))


class _RuleConfigs:
    """SageMaker's ``rule_configs`` (smdebug_rulesconfig): one function per built-in rule.

    Debugger rules are snake_case and take no arguments (give parameters to
    ``Rule.sagemaker(rule_parameters=...)``); profiler rules are CamelCase and take their
    parameters as keyword arguments, as in SageMaker.
    """

    # Debugger rules
    def loss_not_decreasing(self) -> RuleConfig:
        """The loss stops going down (``LossNotDecreasing``; reads ``losses``)."""
        return _rule_config("LossNotDecreasing")

    def overfit(self) -> RuleConfig:
        """Validation loss pulls away from training loss (``Overfit``; reads ``losses``)."""
        return _rule_config("Overfit")

    def overtraining(self) -> RuleConfig:
        """Losses have stopped improving (``Overtraining``; reads ``losses``)."""
        return _rule_config("Overtraining")

    def vanishing_gradient(self) -> RuleConfig:
        """Gradients shrink to nothing (``VanishingGradient``; reads ``gradients``)."""
        return _rule_config("VanishingGradient")

    def exploding_tensor(self) -> RuleConfig:
        """A tensor is NaN, infinite or huge (``ExplodingTensor``)."""
        return _rule_config("ExplodingTensor")

    def poor_weight_initialization(self) -> RuleConfig:
        """Activations' variance is off across layers (``PoorWeightInitialization``;
        reads ``activations``)."""
        return _rule_config("PoorWeightInitialization")

    def dead_relu(self) -> RuleConfig:
        """ReLU layers output zeros (``DeadRelu``; reads ``activations``)."""
        return _rule_config("DeadRelu")

    def class_imbalance(self) -> RuleConfig:
        """Classes are far apart in frequency or accuracy (``ClassImbalance``; reads
        ``labels``)."""
        return _rule_config("ClassImbalance")

    # Profiler rules (SageMaker spells these CamelCase)
    def ProfilerReport(self, **rule_parameters: ParameterValue) -> RuleConfig:
        """Every profiler rule at once (the default profiler rule).

        Args:
            **rule_parameters: ``skip``: rule names (comma-separated) to leave out.
        """
        return _rule_config("ProfilerReport", rule_parameters)

    def CPUBottleneck(self, **rule_parameters: ParameterValue) -> RuleConfig:
        """The CPU is busy while the GPU waits.

        Args:
            **rule_parameters: e.g. ``threshold``, ``cpu_threshold``, ``gpu_threshold``.
        """
        return _rule_config("CPUBottleneck", rule_parameters)

    def IOBottleneck(self, **rule_parameters: ParameterValue) -> RuleConfig:
        """Steps wait on I/O (data loading).

        Args:
            **rule_parameters: e.g. ``threshold``, ``cpu_threshold``, ``min_steps``.
        """
        return _rule_config("IOBottleneck", rule_parameters)

    def LowGPUUtilization(self, **rule_parameters: ParameterValue) -> RuleConfig:
        """GPUs idle or unevenly used.

        Args:
            **rule_parameters: e.g. ``threshold_p95``, ``threshold_p5``.
        """
        return _rule_config("LowGPUUtilization", rule_parameters)

    def StepOutlier(self, **rule_parameters: ParameterValue) -> RuleConfig:
        """Some steps take far longer than the rest.

        Args:
            **rule_parameters: e.g. ``stddev``, ``n_outliers``, ``skip_steps``.
        """
        return _rule_config("StepOutlier", rule_parameters)

    def BatchSize(self, **rule_parameters: ParameterValue) -> RuleConfig:
        """The batch is too small to keep the instance busy.

        Args:
            **rule_parameters: e.g. ``cpu_threshold_p95``, ``gpu_threshold_p95``.
        """
        return _rule_config("BatchSize", rule_parameters)

    def LoadBalancing(self, **rule_parameters: ParameterValue) -> RuleConfig:
        """A multi-instance job's instances work unevenly.

        Args:
            **rule_parameters: e.g. ``threshold``.
        """
        return _rule_config("LoadBalancing", rule_parameters)

    # Actions
    def StopTraining(self, training_job_prefix: str | None = None) -> StopTrainingAction:
        """Stop the job when the rule fires.

        Args:
            training_job_prefix: Only ``None`` (the rule's own job): kennel stops no other
                jobs.
        """
        if training_job_prefix is not None:
            raise ValidationError(
                f"rule_configs.StopTraining(training_job_prefix={training_job_prefix!r}) is "
                "not supported: kennel's StopTraining stops the job the rule watches.",
                hint="Leave training_job_prefix out.",
            )
        return StopTrainingAction()

    def ActionList(self, *actions: StopTrainingAction) -> ActionList:
        """What to do when a rule fires.

        Args:
            *actions: ``rule_configs.StopTraining()`` (kennel sends no e-mail or SMS).
        """
        return _action_list(*actions)

    def Email(self, email_address: str) -> StopTrainingAction:
        """Refused: kennel sends no e-mail.

        Raises:
            ValidationError: Always.
        """
        raise ValidationError(
            f"rule_configs.Email({email_address!r}) is not supported: kennel sends no e-mail.",
            hint="Use rule_configs.StopTraining(), and read the statuses with "
            "estimator.rule_job_summary().",
        )

    def SMS(self, phone_number: str) -> StopTrainingAction:
        """Refused: kennel sends no text messages.

        Raises:
            ValidationError: Always.
        """
        raise ValidationError(
            f"rule_configs.SMS({phone_number!r}) is not supported: kennel sends no SMS.",
            hint="Use rule_configs.StopTraining(), and read the statuses with "
            "estimator.rule_job_summary().",
        )

    if not TYPE_CHECKING:  # at run time only: a typo still fails the type check

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                raise AttributeError(name)
            from kennel.debugger.rules import REGISTRY

            known = sorted({cls.name for cls in REGISTRY.values()})
            raise ValidationError(
                f"rule_configs.{name} is not one of kennel's built-in rules.",
                hint="They are: " + ", ".join(known) + " (debugger rules in snake_case, "
                "e.g. rule_configs.vanishing_gradient()).",
            )

    def __repr__(self) -> str:
        return "<kennel rule_configs>"


rule_configs = _RuleConfigs()
"""SageMaker's ``sagemaker.debugger.rule_configs``: ``rule_configs.vanishing_gradient()``,
``rule_configs.ProfilerReport()``, ``rule_configs.ActionList(rule_configs.StopTraining())``."""


# Rules --------------------------------------------------------------------------------


def _refuse_locations(where: str, **locations: object) -> None:
    for name, value in locations.items():
        if value is not None:
            raise ValidationError(
                f"{where}({name}=...) is not supported: kennel runs its built-in rules in the "
                "server, on the data kept under the job's output (debug-output/<host>/).",
                hint=f"Leave {name} out; set the estimator's output_path to move the output.",
            )


class Rule:
    """A Debugger rule on a training job (SageMaker's ``sagemaker.debugger.Rule``).

    Make one with ``Rule.sagemaker(rule_configs.xxx(), ...)``.
    """

    kind: Kind = "debugger"

    def __init__(
        self,
        rule: str,
        *,
        name: str | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
        actions: Iterable[str] = (),
        collections: Iterable[str] = (),
    ) -> None:
        self.rule = rule
        self.name = name or rule
        self.rule_parameters = dict(parameters or {})
        self.actions = list(actions)
        self.collections = list(collections)

    @classmethod
    def sagemaker(
        cls,
        base_config: RuleConfig,
        name: str | None = None,
        container_local_output_path: str | None = None,
        s3_output_path: str | None = None,
        other_trials_s3_input_paths: list[str] | None = None,
        rule_parameters: Mapping[str, ParameterValue] | None = None,
        collections_to_save: list[CollectionConfig] | None = None,
        actions: ActionList | StopTrainingAction | None = None,
    ) -> Rule:
        """A built-in Debugger rule.

        Args:
            base_config: The rule, e.g. ``rule_configs.vanishing_gradient()``.
            name: The rule configuration's name (default: the rule's, e.g.
                ``VanishingGradient``); two configurations of one job need different names.
            container_local_output_path: Only ``None`` (kennel keeps rule output itself).
            s3_output_path: Only ``None``.
            other_trials_s3_input_paths: Only ``None`` (rules read this job's data).
            rule_parameters: The rule's parameters (strings as in SageMaker, or numbers);
                an unknown name or a bad value is refused here, naming it.
            collections_to_save: Extra hook collections to save for this rule (added to the
                job's; the ones the rule reads are added anyway).
            actions: ``rule_configs.StopTraining()`` or an ``ActionList`` of it.

        Raises:
            ValidationError: A profiler rule (use ``ProfilerRule.sagemaker``), a bad
                parameter, or an argument kennel cannot honour, named in the message.
        """
        _refuse_locations(
            "Rule.sagemaker",
            container_local_output_path=container_local_output_path,
            s3_output_path=s3_output_path,
            other_trials_s3_input_paths=other_trials_s3_input_paths,
        )
        config = _base_config(base_config, "Rule.sagemaker")
        if config.kind != cls.kind:
            raise ValidationError(
                f"Rule.sagemaker got {config.rule}, a profiler rule.",
                hint=f"Use ProfilerRule.sagemaker(rule_configs.{config.rule}()).",
            )
        parameters = {**config.parameters, **(rule_parameters or {})}
        _check_parameters(config.rule, parameters, "Rule.sagemaker(rule_parameters=...)")
        from kennel.debugger.rules import rule_class

        collections = list(rule_class(config.rule).needs)
        for extra in collections_to_save or []:
            if not isinstance(extra, CollectionConfig):
                raise ValidationError(
                    f"Rule.sagemaker(collections_to_save=...) got {extra!r}; give "
                    "CollectionConfig objects."
                )
            collections.append(extra.kennel_name)
        return cls(
            config.rule,
            name=name,
            parameters=parameters,
            actions=_action_names(actions),
            collections=collections,
        )

    @classmethod
    def custom(cls, *args: Any, **kwargs: Any) -> Rule:
        """Refused: kennel runs its built-in rules only (no rule containers).

        Raises:
            ValidationError: Always.
        """
        raise ValidationError(
            "Rule.custom(...) is not supported: kennel runs its built-in rules, not rule "
            "containers.",
            hint="A new rule is one class in kennel/debugger/rules/ (see rules/_base.py).",
        )

    def to_spec(self) -> dict[str, Any]:
        """The rule's entry in the job's ``debugger.rules`` (or ``profiler.rules``)."""
        spec: dict[str, Any] = {"rule": self.rule, "parameters": dict(self.rule_parameters)}
        if self.name != self.rule:
            spec["name"] = self.name
        if self.actions:
            spec["actions"] = list(self.actions)
        return spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, rule={self.rule!r})"


class ProfilerRule(Rule):
    """A profiler rule on a training job (SageMaker's ``sagemaker.debugger.ProfilerRule``).

    Make one with ``ProfilerRule.sagemaker(rule_configs.ProfilerReport())``.
    """

    kind: Kind = "profiler"

    @classmethod
    def sagemaker(  # type: ignore[override]
        cls,
        base_config: RuleConfig,
        name: str | None = None,
        container_local_output_path: str | None = None,
        s3_output_path: str | None = None,
    ) -> ProfilerRule:
        """A built-in profiler rule.

        Args:
            base_config: The rule, e.g. ``rule_configs.ProfilerReport()`` or
                ``rule_configs.CPUBottleneck(threshold=70)``.
            name: The rule configuration's name (default: the rule's).
            container_local_output_path: Only ``None`` (kennel keeps rule output itself).
            s3_output_path: Only ``None``.

        Raises:
            ValidationError: A Debugger rule (use ``Rule.sagemaker``), or an argument
                kennel cannot honour, named in the message.
        """
        _refuse_locations(
            "ProfilerRule.sagemaker",
            container_local_output_path=container_local_output_path,
            s3_output_path=s3_output_path,
        )
        config = _base_config(base_config, "ProfilerRule.sagemaker")
        if config.kind != cls.kind:
            from kennel.debugger.rules import snake_case

            raise ValidationError(
                f"ProfilerRule.sagemaker got {config.rule}, a Debugger rule.",
                hint=f"Use Rule.sagemaker(rule_configs.{snake_case(config.rule)}()).",
            )
        return cls(config.rule, name=name, parameters=config.parameters)

    @classmethod
    def custom(cls, *args: Any, **kwargs: Any) -> ProfilerRule:
        """Refused: kennel runs its built-in rules only.

        Raises:
            ValidationError: Always.
        """
        raise ValidationError(
            "ProfilerRule.custom(...) is not supported: kennel runs its built-in rules only."
        )


def _base_config(value: object, where: str) -> RuleConfig:
    if isinstance(value, RuleConfig):
        return value
    raise ValidationError(
        f"{where} takes a rule from rule_configs, not {value!r}.",
        hint="e.g. Rule.sagemaker(rule_configs.vanishing_gradient()) or "
        "ProfilerRule.sagemaker(rule_configs.ProfilerReport())",
    )


def _action_names(actions: ActionList | StopTrainingAction | None) -> list[str]:
    if actions is None:
        return []
    if isinstance(actions, StopTrainingAction):
        return [actions.name]
    if isinstance(actions, ActionList):
        return [a.name for a in actions.actions]
    raise ValidationError(
        f"Rule.sagemaker(actions=...) got {actions!r}.",
        hint="Give rule_configs.ActionList(rule_configs.StopTraining()).",
    )


# The hook and the profiler --------------------------------------------------------------


class CollectionConfig:
    """A group of tensors the hook saves (SageMaker's ``CollectionConfig``).

    kennel's hook saves ``losses``, ``weights`` (every parameter, so SageMaker's
    ``biases`` too), ``gradients``, ``activations`` (ReLU outputs; SageMaker's
    ``relu_activations``) and ``labels``.

    Args:
        name: The collection.
        parameters: Only ``{"save_interval": N}``, and then the same N for every
            collection (kennel saves all of them at one interval).

    Raises:
        ValidationError: A collection kennel does not save, or another parameter.
    """

    def __init__(self, name: str, parameters: Mapping[str, Any] | None = None) -> None:
        kennel_name = COLLECTION_ALIASES.get(name, name)
        if kennel_name not in KENNEL_COLLECTIONS:
            raise ValidationError(
                f"CollectionConfig(name={name!r}) is not a collection kennel's hook saves.",
                hint="They are: "
                + ", ".join(KENNEL_COLLECTIONS)
                + " (and SageMaker's biases and relu_activations, saved as weights and "
                "activations).",
            )
        self.name = name
        self.kennel_name = kennel_name
        self.parameters = dict(parameters or {})
        for key in self.parameters:
            if key != "save_interval":
                raise ValidationError(
                    f"CollectionConfig({name!r}, parameters={{{key!r}: ...}}) is not "
                    "supported: kennel's hook takes save_interval only.",
                    hint="Leave the parameter out.",
                )
        self.save_interval = (
            _interval(self.parameters["save_interval"], f"CollectionConfig({name!r})")
            if "save_interval" in self.parameters
            else None
        )

    def __repr__(self) -> str:
        return f"CollectionConfig({self.name!r})"


def _interval(value: object, where: str) -> int:
    try:
        interval = int(str(value))
    except ValueError:
        interval = 0
    if interval < 1:
        raise ValidationError(f"{where}: save_interval {value!r} is not a whole number >= 1.")
    return interval


class DebuggerHookConfig:
    """What the job's hook saves (SageMaker's ``DebuggerHookConfig``).

    Your script takes the hook with ``kennel.debugger.get_hook()`` (the built-in trainer
    does so itself); the data is kept under the job's output (``debug-output/<host>/``).

    Args:
        s3_output_path: Only ``None`` (the data goes under the job's output).
        container_local_output_path: Only ``None``.
        hook_parameters: Only ``{"save_interval": N}``: steps between saves of weights,
            gradients, activations and labels (losses are saved every step). Default 100.
        collection_configs: The collections to save (default: losses, weights, gradients,
            labels). The collections the job's rules read are added.

    Raises:
        ValidationError: An argument or hook parameter kennel cannot honour, named.
    """

    def __init__(
        self,
        s3_output_path: str | None = None,
        container_local_output_path: str | None = None,
        hook_parameters: Mapping[str, Any] | None = None,
        collection_configs: list[CollectionConfig] | None = None,
    ) -> None:
        _refuse_locations(
            "DebuggerHookConfig",
            s3_output_path=s3_output_path,
            container_local_output_path=container_local_output_path,
        )
        self.hook_parameters = dict(hook_parameters or {})
        for key in self.hook_parameters:
            if key != "save_interval":
                raise ValidationError(
                    f"DebuggerHookConfig(hook_parameters={{{key!r}: ...}}) is not supported: "
                    "kennel's hook takes save_interval only.",
                    hint="Leave it out; every collection is saved every save_interval steps.",
                )
        self.collection_configs = list(collection_configs) if collection_configs else None
        for config in self.collection_configs or []:
            if not isinstance(config, CollectionConfig):
                raise ValidationError(
                    f"DebuggerHookConfig(collection_configs=...) got {config!r}; give "
                    "CollectionConfig objects."
                )
        self.save_interval = self._one_interval()

    def _one_interval(self) -> int | None:
        intervals: dict[str, int] = {}
        if "save_interval" in self.hook_parameters:
            value = self.hook_parameters["save_interval"]
            intervals["hook_parameters"] = _interval(value, "DebuggerHookConfig")
        for config in self.collection_configs or []:
            if config.save_interval is not None:
                intervals[f"CollectionConfig({config.name!r})"] = config.save_interval
        if len(set(intervals.values())) > 1:
            said = ", ".join(f"{where}: {n}" for where, n in intervals.items())
            raise ValidationError(
                f"DebuggerHookConfig: the save_interval differs between collections ({said}); "
                "kennel saves every collection at one interval.",
                hint="Give save_interval once, in hook_parameters.",
            )
        return next(iter(intervals.values()), None)

    def collections(self) -> list[str]:
        """kennel's names of the collections to save (before the rules' are added)."""
        if self.collection_configs is None:
            return list(DEFAULT_COLLECTIONS)
        return _unique(c.kennel_name for c in self.collection_configs)


class ProfilerConfig:
    """The profiler (SageMaker's ``ProfilerConfig``): system metrics of every instance,
    and the step timings of the built-in trainer or of a script that uses the hook.

    It is on by default, as in SageMaker; ``disable_profiler=True`` turns it off.

    Args:
        s3_output_path: Only ``None`` (the data goes under the job's output).
        system_monitor_interval_millis: How often each instance is sampled: 100, 200, 500
            (the default), 1000, 5000 or 60000 ms, as in SageMaker.
        framework_profile_params: Only ``None``: kennel always records step timings (data
            loading, forward, backward, optimizer) where the hook runs, and has no
            detailed (PyTorch profiler), data loader or Python profiling to configure.
        profile_params: Only ``None`` (SageMaker's newer profiler is not kennel's).
        disable_profiler: Turn the profiler (and the profiler rules) off.

    Raises:
        ValidationError: An argument kennel cannot honour, named in the message.
    """

    def __init__(
        self,
        s3_output_path: str | None = None,
        system_monitor_interval_millis: int | None = None,
        framework_profile_params: object | None = None,
        profile_params: object | None = None,
        disable_profiler: bool = False,
    ) -> None:
        _refuse_locations("ProfilerConfig", s3_output_path=s3_output_path)
        if framework_profile_params is not None:
            raise ValidationError(
                "ProfilerConfig(framework_profile_params=...) is not supported: kennel always "
                "records step timings (data loading, forward, backward, optimizer) where its "
                "hook runs, and has no detailed, data loader or Python profiling to configure.",
                hint="Leave framework_profile_params out.",
            )
        if profile_params is not None:
            raise ValidationError(
                "ProfilerConfig(profile_params=...) is not supported (SageMaker's newer "
                "profiler is not kennel's).",
                hint="Leave profile_params out.",
            )
        interval = 500 if system_monitor_interval_millis is None else system_monitor_interval_millis
        if interval not in INTERVALS_MS:
            raise ValidationError(
                f"ProfilerConfig(system_monitor_interval_millis={interval!r}) must be one of "
                f"{', '.join(map(str, INTERVALS_MS))} (as in SageMaker).",
            )
        self.system_monitor_interval_millis = interval
        self.disable_profiler = bool(disable_profiler)


# The blocks of a training job ------------------------------------------------------------


def spec_blocks(
    rules: list[Rule] | None,
    debugger_hook_config: DebuggerHookConfig | bool | None,
    profiler_config: ProfilerConfig | None,
    disable_profiler: bool,
) -> dict[str, Any]:
    """The ``debugger`` (when there is one) and ``profiler`` blocks of a training job for
    an estimator's arguments.

    The hook saves nothing unless the job has Debugger rules or a ``DebuggerHookConfig``;
    the collections the rules read are added to the hook's (as SageMaker does). With no
    profiler rules the profiler runs ``ProfilerReport`` (SageMaker's default).

    Raises:
        ValidationError: Rules that cannot run with the hook or the profiler off, or that
            the server would refuse.
    """
    debugger_rules, profiler_rules = _split(rules or [])
    blocks: dict[str, Any] = {}
    if debugger_hook_config is False:
        if debugger_rules:
            raise ValidationError(
                f"debugger_hook_config=False turns the hook off, but the rules "
                f"{[r.name for r in debugger_rules]} read what it saves.",
                hint="Drop those rules, or leave debugger_hook_config out.",
            )
    elif debugger_hook_config is True or debugger_hook_config is None:
        if debugger_rules or debugger_hook_config is True:
            blocks["debugger"] = _debugger_block(DebuggerHookConfig(), debugger_rules)
    elif isinstance(debugger_hook_config, DebuggerHookConfig):
        blocks["debugger"] = _debugger_block(debugger_hook_config, debugger_rules)
    else:
        raise ValidationError(
            f"debugger_hook_config={debugger_hook_config!r}: give a DebuggerHookConfig, or "
            "False to turn the hook off."
        )
    off = disable_profiler or (profiler_config is not None and profiler_config.disable_profiler)
    if off and profiler_rules:
        raise ValidationError(
            f"disable_profiler=True turns the profiler off, but the rules "
            f"{[r.name for r in profiler_rules]} read what it records.",
            hint="Drop those rules, or keep the profiler on.",
        )
    profiler: dict[str, Any] = {"enabled": not off}
    if not off:
        profiler["interval_ms"] = (
            profiler_config.system_monitor_interval_millis if profiler_config else 500
        )
        if profiler_rules:
            profiler["rules"] = [r.to_spec() for r in profiler_rules]
    blocks["profiler"] = profiler
    _validate(blocks)
    return blocks


def _split(rules: list[Rule]) -> tuple[list[Rule], list[Rule]]:
    debugger: list[Rule] = []
    profiler: list[Rule] = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, Rule):
            raise ValidationError(
                f"rules[{index}] is a {type(rule).__name__}; make rules with "
                "Rule.sagemaker(rule_configs.xxx()) or ProfilerRule.sagemaker(...).",
            )
        (profiler if rule.kind == "profiler" else debugger).append(rule)
    return debugger, profiler


def _debugger_block(hook: DebuggerHookConfig, rules: list[Rule]) -> dict[str, Any]:
    collections = hook.collections()
    for rule in rules:
        collections = _unique([*collections, *rule.collections])
    block: dict[str, Any] = {"collections": collections}
    if hook.save_interval is not None:
        block["save_interval"] = hook.save_interval
    if rules:
        block["rules"] = [r.to_spec() for r in rules]
    return block


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _validate(blocks: dict[str, Any]) -> None:
    """The server's own models, run here so a mistake is refused before any upload."""
    try:
        if "debugger" in blocks:
            _DebuggerBlock.model_validate(blocks["debugger"])
        _ProfilerBlock.model_validate(blocks["profiler"])
    except pydantic.ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ValidationError(f"The rules do not fit the job: {problems}") from None
