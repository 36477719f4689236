"""The rule contract: a class with a name, parameters and ``evaluate(trial)``.

Adding a rule touches one file: subclass ``Rule`` in a module of this package (and have
``rules/__init__.py`` import that module once); the subclass registers itself under its
``name`` (SageMaker's, e.g. ``VanishingGradient``) and its snake_case alias
(``vanishing_gradient``, the SageMaker SDK's ``rule_configs`` spelling).

A rule is evaluated again and again while the job runs, each time over everything
written so far, and once more when the job ends. It answers with a ``Finding``:
``issue=True`` (it fired: ``details`` says what was seen), ``False`` (looked, all well)
or ``None`` (not enough data yet to tell; at the end this reads as no issue, with the
details saying why). Rules are pure: no clock, no I/O, the trial is all they see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kennel.debugger._trial import Trial

Kind = Literal["debugger", "profiler"]


class Parameters(BaseModel):
    """Base of every rule's parameters: unknown names are errors (a typo must not pass)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Finding:
    issue: bool | None
    details: str


class Rule:
    name: ClassVar[str]
    kind: ClassVar[Kind]
    summary: ClassVar[str]
    """One line: what the rule looks for."""
    advice: ClassVar[str]
    """What to do when it fires, shown beside the finding."""
    needs: ClassVar[tuple[str, ...]] = ()
    """Hook collections it reads (``gradients``, ``weights``, ``activations``, ``labels``,
    ``losses``); a job that asks for the rule without them is refused at creation."""
    Params: ClassVar[type[Parameters]] = Parameters

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        try:
            self.params = self.Params.model_validate(dict(parameters or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'parameters'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValueError(f"rule {self.name}: {problems}") from exc

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            REGISTRY[cls.name] = cls
            REGISTRY[snake_case(cls.name)] = cls

    def evaluate(self, trial: Trial) -> Finding:
        raise NotImplementedError


REGISTRY: dict[str, type[Rule]] = {}


def snake_case(name: str) -> str:
    """``LowGPUUtilization`` -> ``low_gpu_utilization``, ``CPUBottleneck`` -> ``cpu_bottleneck``."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced).lower()


def rule_class(name: str) -> type[Rule]:
    """The rule called ``name`` (either spelling); KeyError lists the known ones."""
    from kennel.debugger import rules  # noqa: F401 - importing registers the built-in rules

    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted({cls.name for cls in REGISTRY.values()}))
        raise KeyError(f"no rule {name!r}; the rules are: {known}") from None
