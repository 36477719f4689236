"""Evaluating a job's configured rules while it runs, as SageMaker's rule jobs do.

Each configured rule has a status: ``InProgress`` while the job runs and the rule has
not fired; ``IssuesFound`` once it fires (it stays so: what was seen was seen);
``NoIssuesFound`` when the job ended and it never fired; ``Error`` when the rule itself
failed (its message says why; the job goes on). A rule with the ``StopTraining``
action that fires asks for the job to stop (``evaluate`` returns it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kennel.debugger._spec import RuleConfiguration
from kennel.debugger._trial import Trial
from kennel.debugger.rules import Finding, Rule, rule_class


@dataclass
class RuleState:
    configuration: RuleConfiguration
    rule: Rule
    kind: str
    status: str = "InProgress"
    details: str = ""
    last_modified: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "rule_configuration_name": self.configuration.configuration_name,
            "rule": self.rule.name,
            "kind": self.kind,
            "status": self.status,
            "status_details": self.details,
            "summary": self.rule.summary,
            "advice": self.rule.advice,
            "parameters": self.rule.params.model_dump(),
            "actions": list(self.configuration.actions),
            "last_modified_time": self.last_modified,
        }


class RuleEngine:
    def __init__(
        self,
        debugger_rules: list[RuleConfiguration],
        profiler_rules: list[RuleConfiguration],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clock = clock
        self.states = [
            RuleState(config, rule_class(config.rule)(config.parameters), kind)
            for kind, configs in (("debugger", debugger_rules), ("profiler", profiler_rules))
            for config in configs
        ]
        now = clock().isoformat()
        for state in self.states:
            state.last_modified = now

    def __bool__(self) -> bool:
        return bool(self.states)

    def evaluate(self, trial: Trial, *, final: bool = False) -> list[RuleState]:
        """Evaluate every rule still open; returns those that fired now with StopTraining."""
        stop: list[RuleState] = []
        for state in self.states:
            if state.status in ("IssuesFound", "Error"):
                continue
            try:
                finding = state.rule.evaluate(trial)
            except Exception as exc:  # noqa: BLE001 - a broken rule is reported, not fatal
                self._set(state, "Error", f"The rule failed: {type(exc).__name__}: {exc}")
                continue
            if finding.issue:
                self._set(state, "IssuesFound", finding.details)
                if "StopTraining" in state.configuration.actions:
                    stop.append(state)
            elif final:
                self._set(state, "NoIssuesFound", _quiet_details(finding))
            elif finding.details != state.details:
                self._set(state, "InProgress", finding.details)
        return stop

    def statuses(self) -> list[dict[str, Any]]:
        return [state.as_json() for state in self.states]

    def _set(self, state: RuleState, status: str, details: str) -> None:
        state.status, state.details = status, details
        state.last_modified = self.clock().isoformat()


def _quiet_details(finding: Finding) -> str:
    if finding.issue is None:
        return (
            f"Not enough data to tell: {finding.details}"
            if finding.details
            else ("Not enough data to tell.")
        )
    return finding.details
