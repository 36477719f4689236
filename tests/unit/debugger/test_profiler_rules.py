"""The profiler rules on synthetic trials: when each fires, stays quiet or cannot tell."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kennel.debugger import Trial
from kennel.debugger.rules import Finding, Rule, rule_class
from kennel.debugger.rules.system import (
    BatchSize,
    CPUBottleneck,
    IOBottleneck,
    LoadBalancing,
    LowGPUUtilization,
    ProfilerReport,
    StepOutlier,
)

T0 = 1_700_000_000.0
PROFILER_RULES = [
    IOBottleneck,
    CPUBottleneck,
    LowGPUUtilization,
    StepOutlier,
    BatchSize,
    LoadBalancing,
]


def run(
    trial: Trial,
    host: str = "algo-1",
    *,
    steps: int = 60,
    data: float | Callable[[int], float] = 0.01,
    compute: float | Callable[[int], float] = 0.04,
    proc_cpu: float | Callable[[int], float] | None = 100.0,
    proc_cpu_wait: float | None = None,
    cpus: int = 1,
    gpu: Callable[[int], list[float]] | None = None,
    gpu_mem: Callable[[int], list[float]] | None = None,
    interval: float = 0.1,
    before: list[dict[str, Any]] | None = None,
) -> Trial:
    """Add a training loop to ``trial``: ``steps`` framework records (``data`` and
    ``compute`` seconds each, or functions of the step) and the system samples of the
    monitor every ``interval`` over the same time (``proc_cpu`` ... of the sample)."""
    framework = []
    now = T0
    for step in range(steps):
        d = data(step) if callable(data) else data
        c = compute(step) if callable(compute) else compute
        framework.append(
            {
                "rank": 0,
                "step": step,
                "start": now,
                "data": d,
                "forward": c / 2,
                "backward": c / 3,
                "optimizer": c / 6,
                "hook": 0.0,
                "total": d + c,
                "batch": 32,
            }
        )
        now += d + c
    system = list(before or [])
    index = 0
    t = T0 + interval
    while t <= now:
        sample: dict[str, Any] = {
            "t": t,
            "cpu": [50.0] * cpus,
            "cpus": cpus,
            "mem_pct": 20.0,
            "proc_rss_mb": 300.0,
            "read_mb_s": 0.0,
            "write_mb_s": 0.0,
        }
        if proc_cpu is not None:
            sample["proc_cpu"] = proc_cpu(index) if callable(proc_cpu) else proc_cpu
        if proc_cpu_wait is not None:
            sample["proc_cpu_wait"] = proc_cpu_wait
        if gpu is not None:
            sample["gpu"] = gpu(index)
            sample["gpu_mem_pct"] = gpu_mem(index) if gpu_mem else [30.0] * len(gpu(index))
        system.append(sample)
        index += 1
        t += interval
    trial.add(host, "framework.jsonl", [json.dumps(r) for r in framework])
    trial.add(host, "system.jsonl", [json.dumps(s) for s in system])
    return trial


def evaluate(rule: type[Rule], trial: Trial, **params: Any) -> Finding:
    return rule(params).evaluate(trial)


# Registration and parameters ----------------------------------------------------------------


@pytest.mark.parametrize("rule", [*PROFILER_RULES, ProfilerReport], ids=lambda r: r.name)
def test_registered_as_profiler_rules_under_both_spellings(rule: type[Rule]) -> None:
    assert rule.kind == "profiler"
    assert rule_class(rule.name) is rule
    assert rule.summary and rule.advice and rule.__doc__
    with pytest.raises(ValueError, match=rule.name):
        rule({"no_such_parameter": 1})


@pytest.mark.parametrize(
    ("rule", "name", "value", "expected"),
    [
        (IOBottleneck, "threshold", "60", 60.0),
        (CPUBottleneck, "script_cpu_threshold", "40.5", 40.5),
        (LowGPUUtilization, "threshold_p95", "80", 80.0),
        (StepOutlier, "n_outliers", "3", 3),
        (BatchSize, "cpu_threshold_p95", "65", 65.0),
        (LoadBalancing, "threshold", "0.3", 0.3),
    ],
)
def test_parameters_accept_numbers_written_as_strings(
    rule: type[Rule], name: str, value: str, expected: float
) -> None:
    assert getattr(rule({name: value}).params, name) == expected


@pytest.mark.parametrize(
    ("rule", "parameters"),
    [
        (IOBottleneck, {"threshold": 150}),
        (IOBottleneck, {"threshold": "lots"}),
        (CPUBottleneck, {"min_steps": 0}),
        (StepOutlier, {"min_ratio": 0.5}),
        (LoadBalancing, {"threshold": 2}),
    ],
)
def test_out_of_range_parameters_are_refused(rule: type[Rule], parameters: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=rule.name):
        rule(parameters)


@pytest.mark.parametrize("rule", [*PROFILER_RULES, ProfilerReport], ids=lambda r: r.name)
def test_no_verdict_on_an_empty_trial(rule: type[Rule]) -> None:
    assert rule().evaluate(Trial()).issue is None


# IOBottleneck ---------------------------------------------------------------------------------


def test_io_bottleneck_fires_when_steps_wait_on_data_with_an_idle_cpu() -> None:
    finding = evaluate(IOBottleneck, run(Trial(), data=0.08, compute=0.02, proc_cpu=10))
    assert finding.issue is True
    assert "algo-1: data loading 80% of step time over 58 steps" in finding.details
    assert "script CPU 10% of 1 core(s)" in finding.details


def test_io_bottleneck_is_quiet_when_the_cpu_is_busy_loading() -> None:
    finding = evaluate(IOBottleneck, run(Trial(), data=0.08, compute=0.02, proc_cpu=95))
    assert finding.issue is False
    assert "script CPU 95%" in finding.details


def test_io_bottleneck_is_quiet_when_data_loading_is_a_small_share() -> None:
    finding = evaluate(IOBottleneck, run(Trial(), data=0.01, compute=0.09, proc_cpu=5))
    assert finding == Finding(False, "algo-1: data loading 10% of step time over 58 steps")


def test_io_bottleneck_reads_cpu_as_a_share_of_the_instances_cores() -> None:
    trial = run(Trial(), data=0.08, compute=0.02, proc_cpu=90, cpus=2)  # 45% of 2 cores
    assert evaluate(IOBottleneck, trial).issue is True
    assert evaluate(IOBottleneck, trial, cpu_threshold="40").issue is False


def test_io_bottleneck_ignores_samples_outside_the_training_window() -> None:
    # The script's start-up (imports, reading a dataset) keeps a core busy for seconds.
    start_up = [
        {"t": T0 - 5 + i * 0.1, "cpus": 1, "cpu": [100.0], "proc_cpu": 100.0} for i in range(50)
    ]
    trial = run(Trial(), data=0.08, compute=0.02, proc_cpu=10, before=start_up)
    assert evaluate(IOBottleneck, trial).issue is True


def test_io_bottleneck_leaves_out_the_warm_up_steps() -> None:
    trial = run(Trial(), steps=40, data=lambda i: 30.0 if i < 2 else 0.001, proc_cpu=5)
    assert evaluate(IOBottleneck, trial).issue is False


def test_io_bottleneck_needs_enough_steps_and_cpu_samples() -> None:
    short = evaluate(IOBottleneck, run(Trial(), steps=6, data=0.08, compute=0.02, proc_cpu=5))
    assert short == Finding(None, "algo-1: 4 step timings after warm-up (needs 10)")
    blind = evaluate(IOBottleneck, run(Trial(), data=0.08, compute=0.02, proc_cpu=None))
    assert blind.issue is None and "no system samples" in blind.details


# CPUBottleneck -------------------------------------------------------------------------------


def test_cpu_bottleneck_without_gpu_fires_when_loading_keeps_the_cpu_busy() -> None:
    finding = evaluate(CPUBottleneck, run(Trial(), data=0.08, compute=0.02, proc_cpu=97))
    assert finding.issue is True
    assert "data loading 80% of step time" in finding.details
    assert "script CPU 97% of 1 core(s)" in finding.details


def test_cpu_bottleneck_without_gpu_leaves_an_idle_cpu_to_io_bottleneck() -> None:
    trial = run(Trial(), data=0.08, compute=0.02, proc_cpu=10)
    assert evaluate(CPUBottleneck, trial).issue is False
    assert evaluate(IOBottleneck, trial).issue is True


def test_cpu_bottleneck_without_gpu_is_quiet_when_training_dominates() -> None:
    assert evaluate(CPUBottleneck, run(Trial(), data=0.002, proc_cpu=100)).issue is False


def test_cpu_bottleneck_weighs_samples_by_the_time_they_cover() -> None:
    trial = run(Trial(), steps=12, data=0.08, compute=0.02, proc_cpu=10)
    # The monitor's last sample covers a millisecond: one 10 ms clock tick reads as 1000%.
    last = max(s["t"] for s in trial.system())
    tick = {"t": last + 0.001, "cpus": 1, "proc_cpu": 1000}
    trial.add("algo-1", "system.jsonl", [json.dumps(tick)])
    assert evaluate(CPUBottleneck, trial).issue is False
    assert evaluate(IOBottleneck, trial).issue is True


def test_cpu_bottleneck_counts_the_time_the_script_waited_for_a_core() -> None:
    # A machine busy with other work: the loader gets a third of the core it asks for.
    trial = run(Trial(), data=0.08, compute=0.02, proc_cpu=30, proc_cpu_wait=65)
    finding = evaluate(CPUBottleneck, trial)
    assert finding.issue is True
    assert "script CPU 95% of 1 core(s) (30% used, 65% waiting for a core)" in finding.details
    assert evaluate(IOBottleneck, trial).issue is False
    waiting_on_io = run(Trial(), data=0.08, compute=0.02, proc_cpu=5, proc_cpu_wait=3)
    assert evaluate(IOBottleneck, waiting_on_io).issue is True


def test_cpu_bottleneck_with_gpu_fires_on_busy_cpu_and_idle_gpu() -> None:
    trial = run(Trial(), proc_cpu=100, gpu=lambda i: [3.0, 5.0])
    for sample in trial.system():
        sample["cpu"] = [95.0, 97.0]
    finding = evaluate(CPUBottleneck, trial)
    assert finding.issue is True
    assert "CPU above 90% with the GPU below 10% in 30 of 30 samples (100%)" in finding.details


def test_cpu_bottleneck_with_gpu_is_quiet_when_the_gpu_is_busy() -> None:
    trial = run(Trial(), proc_cpu=100, gpu=lambda i: [85.0])
    for sample in trial.system():
        sample["cpu"] = [95.0]
    assert evaluate(CPUBottleneck, trial).issue is False
    few = evaluate(CPUBottleneck, trial, min_samples=100)
    assert few == Finding(None, "algo-1: 30 GPU samples (needs 100)")


# LowGPUUtilization ---------------------------------------------------------------------------


def test_low_gpu_utilization_has_nothing_to_say_without_a_gpu() -> None:
    finding = evaluate(LowGPUUtilization, run(Trial()))
    assert finding == Finding(None, "no GPU on this job's instances")


def test_low_gpu_utilization_fires_when_the_gpu_is_never_busy() -> None:
    finding = evaluate(LowGPUUtilization, run(Trial(), gpu=lambda i: [20.0 + i % 10]))
    assert finding.issue is True
    assert "algo-1 GPU 0: utilisation p95 29%" in finding.details
    assert "underused" in finding.details


def test_low_gpu_utilization_fires_when_the_gpu_swings_between_busy_and_idle() -> None:
    finding = evaluate(LowGPUUtilization, run(Trial(), gpu=lambda i: [95.0 if i % 3 else 0.0]))
    assert finding.issue is True and "fluctuates" in finding.details


def test_low_gpu_utilization_judges_each_gpu() -> None:
    busy = run(Trial(), gpu=lambda i: [90.0 + i % 5, 85.0])
    assert evaluate(LowGPUUtilization, busy).issue is False
    one_idle = run(Trial(), gpu=lambda i: [90.0, 4.0])
    finding = evaluate(LowGPUUtilization, one_idle)
    assert finding.issue is True
    assert "GPU 1" in finding.details and "GPU 0" not in finding.details


def test_low_gpu_utilization_needs_enough_samples() -> None:
    finding = evaluate(LowGPUUtilization, run(Trial(), steps=5, gpu=lambda i: [5.0]))
    assert finding.issue is None and "needs 10" in finding.details


# StepOutlier ---------------------------------------------------------------------------------


def test_step_outlier_fires_on_periodic_stalls() -> None:
    trial = run(Trial(), steps=80, data=lambda i: 0.3 if i % 8 == 7 else 0.005, compute=0.02)
    finding = evaluate(StepOutlier, trial)
    assert finding.issue is True
    assert "algo-1: 10 of 75 steps took longer than 0.05 s (median 0.025 s)" in finding.details
    assert "the slowest, step 7, took 0.32 s (12.8x the median)" in finding.details


def test_step_outlier_is_quiet_on_ordinary_jitter() -> None:
    jitter = [0.0, 0.004, -0.003, 0.006, -0.005, 0.002, 0.009, -0.001]
    trial = run(Trial(), steps=200, compute=lambda i: 0.04 + jitter[i % 8])
    finding = evaluate(StepOutlier, trial)
    assert finding.issue is False
    assert "0 of 195 steps" in finding.details


def test_step_outlier_ignores_hiccups_that_cost_little_time() -> None:
    # Eight steps of 2.5x the median in a thousand: garbage collection, not a stall.
    trial = run(Trial(), steps=1000, compute=lambda i: 0.1 if i % 125 == 60 else 0.03)
    finding = evaluate(StepOutlier, trial)
    assert finding.issue is False
    assert "8 of 995 steps" in finding.details and "1% of the step time" in finding.details
    assert evaluate(StepOutlier, trial, time_pct=1).issue is True


def test_step_outlier_counts_more_than_n_outliers() -> None:
    trial = run(Trial(), steps=100, compute=lambda i: 1.0 if i in (50, 60, 70) else 0.03)
    assert evaluate(StepOutlier, trial).issue is False
    assert evaluate(StepOutlier, trial, n_outliers=2).issue is True


def test_step_outlier_skips_the_first_steps() -> None:
    trial = run(Trial(), steps=60, compute=lambda i: 5.0 if i < 5 else 0.03)
    assert evaluate(StepOutlier, trial, n_outliers=0).issue is False
    assert evaluate(StepOutlier, trial, n_outliers=0, skip_steps=0).issue is True


def test_step_outlier_needs_enough_steps() -> None:
    assert evaluate(StepOutlier, run(Trial(), steps=20)) == Finding(
        None, "algo-1: 15 steps (needs 20)"
    )


# BatchSize -----------------------------------------------------------------------------------


def test_batch_size_fires_when_the_script_never_fills_its_cores() -> None:
    trial = run(Trial(), proc_cpu=lambda i: 90.0 + i % 20, cpus=2)  # half of 2 cores
    finding = evaluate(BatchSize, trial)
    assert finding.issue is True
    assert "algo-1: script CPU p95 54%, data loading 20% of step time" in finding.details


def test_batch_size_is_quiet_when_the_cores_are_busy_at_times() -> None:
    busy_at_times = run(Trial(), proc_cpu=lambda i: 180.0 if i % 4 == 0 else 60.0, cpus=2)
    assert evaluate(BatchSize, busy_at_times).issue is False


def test_batch_size_is_quiet_when_the_script_waits_for_cores_it_would_use() -> None:
    busy_machine = run(Trial(), proc_cpu=40, proc_cpu_wait=50, cpus=1)
    assert evaluate(BatchSize, busy_machine).issue is False


def test_batch_size_leaves_waiting_on_data_to_the_bottleneck_rules() -> None:
    trial = run(Trial(), data=0.08, compute=0.02, proc_cpu=10)
    assert evaluate(BatchSize, trial).issue is False


def test_batch_size_needs_steps_and_samples() -> None:
    no_samples = evaluate(BatchSize, run(Trial(), proc_cpu=None))
    assert no_samples == Finding(None, "algo-1: 0 system samples (needs 10)")
    trial = Trial()
    trial.add(
        "algo-1", "system.jsonl", [json.dumps({"t": T0 + i, "proc_cpu": 5}) for i in range(30)]
    )
    assert evaluate(BatchSize, trial).issue is None


def test_batch_size_with_gpu_also_needs_an_idle_gpu_and_its_memory() -> None:
    idle = run(Trial(), proc_cpu=40, gpu=lambda i: [20.0], gpu_mem=lambda i: [15.0])
    assert evaluate(BatchSize, idle).issue is True
    busy = run(Trial(), proc_cpu=40, gpu=lambda i: [95.0], gpu_mem=lambda i: [15.0])
    assert evaluate(BatchSize, busy).issue is False
    full = run(Trial(), proc_cpu=40, gpu=lambda i: [20.0], gpu_mem=lambda i: [90.0])
    assert evaluate(BatchSize, full).issue is False


# LoadBalancing -------------------------------------------------------------------------------


def test_load_balancing_has_nothing_to_balance_on_one_instance() -> None:
    assert evaluate(LoadBalancing, run(Trial())) == Finding(
        None, "one instance: nothing to balance"
    )


def test_load_balancing_is_quiet_on_equal_hosts() -> None:
    trial = run(run(Trial(), "algo-1"), "algo-2", data=0.011, proc_cpu=95)
    finding = evaluate(LoadBalancing, trial)
    assert finding.issue is False
    assert "data + forward per step" in finding.details and "script CPU" in finding.details


def test_load_balancing_fires_when_one_host_loads_and_computes_longer() -> None:
    # algo-1 waits for algo-2 inside backward (DDP's all-reduce): totals are equal.
    trial = run(Trial(), "algo-1", data=0.005, compute=0.02)
    run(trial, "algo-2", data=0.05, compute=0.02)
    finding = evaluate(LoadBalancing, trial)
    assert finding == Finding(
        True, "data + forward per step: algo-2 0.06 s, algo-1 0.015 s (spread 0.75 across 2 hosts)"
    )
    assert evaluate(LoadBalancing, trial, threshold=0.8).issue is False


def test_load_balancing_fires_on_unequal_cpu_use() -> None:
    trial = run(run(Trial(), "algo-1", proc_cpu=100), "algo-2", proc_cpu=30)
    finding = evaluate(LoadBalancing, trial)
    assert finding.issue is True
    assert finding.details == "script CPU: algo-1 100%, algo-2 30% (spread 0.70 across 2 hosts)"


def test_load_balancing_ignores_negligible_differences() -> None:
    # data + forward is 1 ms on one host and 3 ms on the other, of 100 ms steps.
    trial = run(Trial(), "algo-1", data=0.0005, compute=0.0995, proc_cpu=4)
    run(trial, "algo-2", data=0.0015, compute=0.0985, proc_cpu=1)
    assert evaluate(LoadBalancing, trial).issue is False


# ProfilerReport ------------------------------------------------------------------------------


def test_profiler_report_runs_every_profiler_rule() -> None:
    finding = evaluate(ProfilerReport, Trial())
    for rule in PROFILER_RULES:
        assert rule.name in finding.details
    assert "ProfilerReport" not in finding.details
    assert finding.details.startswith("IOBottleneck (no data yet); CPUBottleneck (no data yet)")


def test_profiler_report_fires_when_any_rule_fires_and_says_which() -> None:
    finding = evaluate(ProfilerReport, run(Trial(), data=0.08, compute=0.02, proc_cpu=10))
    assert finding.issue is True
    assert finding.details.startswith("1 rule(s) found issues. IOBottleneck: algo-1: data loading")
    assert "No issues: CPUBottleneck, StepOutlier, BatchSize" in finding.details
    assert "LowGPUUtilization (no GPU on this job's instances)" in finding.details
    assert "LoadBalancing (one instance: nothing to balance)" in finding.details


def test_profiler_report_is_quiet_on_a_healthy_run() -> None:
    finding = evaluate(ProfilerReport, run(Trial(), data=0.002, proc_cpu=98))
    assert finding.issue is False
    assert finding.details.startswith("No issues: IOBottleneck, CPUBottleneck, StepOutlier")


def test_profiler_report_skips_the_rules_it_is_told_to() -> None:
    trial = run(Trial(), data=0.08, compute=0.02, proc_cpu=10)
    finding = evaluate(ProfilerReport, trial, skip="io_bottleneck, LowGPUUtilization")
    assert finding.issue is False
    assert "IOBottleneck" not in finding.details and "LowGPU" not in finding.details
    assert ProfilerReport({"skip": "step_outlier"}).params.skip == "StepOutlier"
    with pytest.raises(ValueError, match="no profiler rule NoSuchRule"):
        ProfilerReport({"skip": "NoSuchRule"})
    with pytest.raises(ValueError, match="no profiler rule ProfilerReport"):
        ProfilerReport({"skip": "ProfilerReport"})


def test_profiler_report_survives_a_failing_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Rule, trial: Trial) -> Finding:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(BatchSize, "evaluate", broken)
    finding = evaluate(ProfilerReport, run(Trial(), data=0.08, compute=0.02, proc_cpu=10))
    assert finding.issue is True
    assert "BatchSize failed (ZeroDivisionError: oops)" in finding.details
