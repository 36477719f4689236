"""A job's rule configuration (checked where it enters) and the engine's statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from kennel.cli._debugger import debug_blocks, parse_rule
from kennel.debugger import Trial
from kennel.debugger._engine import RuleEngine
from kennel.debugger._spec import DebuggerConfig, ProfilerConfig, RuleConfiguration, hook_config
from kennel.debugger.rules import Finding, Rule, rule_class


def nan_loss_trial() -> Trial:
    trial = Trial()
    trial.add("algo-1", "losses.jsonl", [json.dumps({"step": 3, "mode": "train", "loss": "x"})])
    trial.add("algo-1", "losses.jsonl", ['{"step": 4, "mode": "train", "loss": NaN}'])
    return trial


def test_rules_are_found_by_either_spelling() -> None:
    assert rule_class("vanishing_gradient") is rule_class("VanishingGradient")
    assert rule_class("low_gpu_utilization").name == "LowGPUUtilization"
    with pytest.raises(KeyError, match="DeadRelu"):
        rule_class("dead_relus")


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"rules": [{"rule": "DeadRelu"}]}, "activations"),
        ({"rules": [{"rule": "StepOutlier"}]}, "profiler.rules"),
        ({"rules": [{"rule": "Overfit", "parameters": {"patiense": 2}}]}, "patiense"),
        ({"rules": [{"rule": "overfit"}, {"rule": "Overfit"}]}, "name them apart"),
        ({"save_interval": 0}, "save_interval"),
        ({"rules": [{"rule": "Overfit", "actions": ["Email"]}]}, "actions"),
    ],
)
def test_a_bad_debugger_block_is_refused_with_what_to_change(
    block: dict[str, object], words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        DebuggerConfig.model_validate(block)


def test_defaults_follow_sagemaker() -> None:
    profiler = ProfilerConfig()
    assert profiler.enabled and profiler.interval_ms == 500
    assert [r.rule for r in profiler.rules] == ["ProfilerReport"]
    assert ProfilerConfig(enabled=False).rules == []
    assert RuleConfiguration(rule="x", actions=["stop_training"]).actions == ["StopTraining"]
    assert hook_config(None, ProfilerConfig(enabled=False), "/o") is None
    assert hook_config(None, ProfilerConfig(), "/o") == {
        "out_dir": "/o",
        "save_interval": 100,
        "collections": ["losses"],
        "framework": True,
    }


def test_an_issue_stays_found_and_asks_to_stop_once() -> None:
    engine = RuleEngine(
        [RuleConfiguration(rule="exploding_tensor", actions=["StopTraining"])],
        [RuleConfiguration(rule="IOBottleneck")],
        clock=lambda: datetime(2026, 12, 2, tzinfo=UTC),
    )
    assert {s["status"] for s in engine.statuses()} == {"InProgress"}
    stop = engine.evaluate(nan_loss_trial())
    assert [s.rule.name for s in stop] == ["ExplodingTensor"]
    assert engine.evaluate(nan_loss_trial()) == []  # fired already: not asked again
    engine.evaluate(Trial(), final=True)
    found = {s["rule"]: s for s in engine.statuses()}
    assert found["ExplodingTensor"]["status"] == "IssuesFound"
    assert "nan" in found["ExplodingTensor"]["status_details"].lower()
    assert found["IOBottleneck"]["status"] == "NoIssuesFound"
    assert found["IOBottleneck"]["status_details"].startswith("Not enough data")


class Broken(Rule):
    name = "BrokenForTheTest"
    kind = "debugger"
    summary = "always fails"
    advice = "none"

    def evaluate(self, trial: Trial) -> Finding:
        raise RuntimeError("boom")


def test_a_failing_rule_is_an_error_not_a_failed_job() -> None:
    engine = RuleEngine([RuleConfiguration(rule="BrokenForTheTest")], [])
    assert engine.evaluate(Trial()) == []
    (status,) = engine.statuses()
    assert status["status"] == "Error" and "RuntimeError: boom" in status["status_details"]


def test_the_cli_rule_option_reads_parameters_and_actions() -> None:
    assert parse_rule("overfit:patience=3,action=StopTraining") == {
        "rule": "overfit",
        "parameters": {"patience": "3"},
        "actions": ["StopTraining"],
    }
    blocks = debug_blocks(["dead_relu", "IOBottleneck"], None, profiler=True, save_interval=5)
    assert blocks["profiler"]["rules"][0]["rule"] == "IOBottleneck"
    assert "activations" in blocks["debugger"]["collections"]  # what DeadRelu reads
    assert blocks["debugger"]["save_interval"] == 5
    DebuggerConfig.model_validate(blocks["debugger"])
    assert "debugger" not in debug_blocks(None, None, profiler=False, save_interval=None)
