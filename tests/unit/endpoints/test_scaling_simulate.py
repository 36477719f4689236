"""Replaying recorded metrics through target tracking, and charting the replay."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from kennel.endpoints._autoscaling import (
    Sample,
    SimulationResult,
    TargetTrackingConfig,
    simulate,
)
from kennel.endpoints._scaling_chart import simulation_html, terminal_chart

RESOURCE = "endpoint/E/variant/V"


def _samples(
    invocations: Sequence[float | None],
    recorded: Sequence[float | None] | None = None,
    *,
    start: float = 100.0,
    period: float = 60.0,
) -> list[Sample]:
    samples: list[Sample] = []
    for i, count in enumerate(invocations):
        values: dict[str, float | None] = {"Invocations": count}
        if recorded is not None and recorded[i] is not None:
            values["InstanceCount"] = recorded[i]
        samples.append((start + i * period, values))
    return samples


def _run(
    policies: Sequence[TargetTrackingConfig],
    samples: Sequence[Sample],
    *,
    period_seconds: float = 60.0,
    min_capacity: int = 1,
    max_capacity: int = 10,
    initial_capacity: int = 1,
    startup_periods: int = 0,
) -> SimulationResult:
    return simulate(
        policies,
        samples,
        period_seconds=period_seconds,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        initial_capacity=initial_capacity,
        resource_id=RESOURCE,
        startup_periods=startup_periods,
    )


FAST = TargetTrackingConfig(
    "P", 100, high_periods=2, low_periods=2, scale_out_cooldown=60, scale_in_cooldown=60
)


def _small_run() -> SimulationResult:
    """Load rises for three periods, then falls: out to 3, back in to 1."""
    return _run(
        [FAST],
        _samples([50, 250, 250, 250, 40, 40, 40, 40], [1, 1, 2, 2, 2, 2, 1, None]),
        max_capacity=3,
    )


def test_invocations_per_instance_is_recomputed_over_the_simulated_capacity() -> None:
    result = _small_run()
    per_instance = [point.metrics["InvocationsPerInstance"] for point in result.points]
    assert per_instance == pytest.approx([50, 250, 250, 250 / 3, 40 / 3, 20, 40, 40])
    assert [point.in_service for point in result.points] == [1, 1, 1, 3, 3, 2, 1, 1]
    assert [point.desired for point in result.points] == [1, 1, 3, 3, 2, 1, 1, 1]
    assert [point.recorded_capacity for point in result.points] == [1, 1, 2, 2, 2, 2, 1, None]


def test_decisions_are_timed_by_the_samples_and_respect_cooldowns() -> None:
    result = _small_run()
    assert [
        (timed.time, timed.decision.direction, timed.decision.previous, timed.decision.desired)
        for timed in result.decisions
    ] == [(220.0, "out", 1, 3), (340.0, "in", 3, 2), (400.0, "in", 2, 1)]


def test_cooldowns_play_out_in_sample_time_including_gaps() -> None:
    config = TargetTrackingConfig("P", 100, low_periods=1, scale_in_cooldown=300)
    samples = _samples([0] * 11, start=0.0)
    result = _run([config], samples, initial_capacity=8)
    assert [(t.time, t.decision.desired) for t in result.decisions] == [
        (0.0, 4),
        (300.0, 2),
        (600.0, 1),
    ]
    gap = _run(
        [config], [(0.0, {"Invocations": 0}), (1000.0, {"Invocations": 0})], initial_capacity=8
    )
    assert [(t.time, t.decision.desired) for t in gap.decisions] == [(0.0, 4), (1000.0, 2)]


def test_new_capacity_serves_after_the_startup_periods() -> None:
    config = TargetTrackingConfig("P", 100, high_periods=1)
    result = _run([config], _samples([300] * 5), startup_periods=2)
    assert [point.desired for point in result.points] == [3, 3, 3, 3, 3]
    assert [point.in_service for point in result.points] == [1, 1, 1, 3, 3]
    per_instance = [point.metrics["InvocationsPerInstance"] for point in result.points]
    assert per_instance == [300, 300, 300, 100, 100]
    assert len(result.decisions) == 1  # the starting instances are not asked for again


def test_removed_capacity_stops_serving_at_once() -> None:
    config = TargetTrackingConfig("P", 100, low_periods=1, scale_in_cooldown=0)
    result = _run([config], _samples([0, 0, 0]), initial_capacity=4, startup_periods=5)
    assert [point.in_service for point in result.points] == [4, 2, 1]


def test_the_initial_capacity_is_clamped_into_the_range() -> None:
    result = _run([FAST], _samples([100, 100]), initial_capacity=0, min_capacity=2)
    assert [(point.desired, point.in_service) for point in result.points] == [(2, 2), (2, 2)]


def test_invocations_are_derived_from_per_instance_values_when_only_those_were_recorded() -> None:
    config = TargetTrackingConfig("P", 100, high_periods=1)
    samples: list[Sample] = [(0.0, {"InvocationsPerInstance": 150, "InstanceCount": 2})]
    result = _run([config], samples)
    assert result.points[0].metrics["InvocationsPerInstance"] == 300  # 300 over 1 instance
    assert result.decisions[0].decision.desired == 3


def test_periods_without_invocation_data_are_missing_data() -> None:
    config = TargetTrackingConfig("P", 100, high_periods=2)
    result = _run([config], _samples([300, None, 300, 300]))
    assert [point.metrics["InvocationsPerInstance"] for point in result.points] == [
        300,
        None,
        300,
        300,
    ]
    assert [timed.time for timed in result.decisions] == [280.0]


def test_other_metrics_are_used_as_recorded() -> None:
    latency = TargetTrackingConfig("Latency", 50_000, metric="ModelLatency", high_periods=1)
    samples: list[Sample] = [(0.0, {"Invocations": 10, "ModelLatency": 120_000})]
    result = _run([latency], samples, initial_capacity=2)
    assert result.points[0].metrics == {"ModelLatency": 120_000}
    assert result.decisions[0].decision.desired == 5  # ceil(2 x 120000 / 50000)


def test_counts_are_per_minute_with_a_one_second_period() -> None:
    config = TargetTrackingConfig("P", 100, high_periods=1)
    samples = _samples([3], period=1.0)
    result = _run([config], samples, period_seconds=1.0)
    assert result.points[0].metrics["InvocationsPerInstance"] == 180
    assert result.decisions[0].decision.desired == 2


def test_to_dict_is_json_with_aws_worded_activities() -> None:
    data = json.loads(json.dumps(_small_run().to_dict()))
    assert data["resource_id"] == RESOURCE
    assert (data["min_capacity"], data["max_capacity"], data["period_seconds"]) == (1, 3, 60)
    assert data["policies"][0]["policy_name"] == "P"
    assert data["points"][3] == {
        "time": 280.0,
        "metrics": {"InvocationsPerInstance": pytest.approx(250 / 3)},
        "recorded_capacity": 2.0,
        "desired": 3,
        "in_service": 3,
    }
    first = data["decisions"][0]
    assert first["time"] == 220.0
    assert first["description"] == "Setting desired instance count to 3."
    assert first["cause"].startswith(f"monitor alarm TargetTracking-{RESOURCE}-AlarmHigh-")
    assert first["cause"].endswith(" in state ALARM triggered policy P")


def test_bad_replays_are_refused() -> None:
    with pytest.raises(ValueError, match="time order"):
        _run([FAST], [(60.0, {}), (0.0, {})])
    with pytest.raises(ValueError, match="max_capacity"):
        _run([FAST], [], min_capacity=3, max_capacity=2)
    with pytest.raises(ValueError, match="startup_periods"):
        _run([FAST], [], startup_periods=-1)


# --- charts ----------------------------------------------------------------------------


def test_html_is_a_self_contained_plotly_page_with_both_panels() -> None:
    page = simulation_html(_small_run(), title="Replay <E>")
    assert page.startswith("<html>") or page.lower().startswith("<!doctype html>")
    assert "<title>Replay &lt;E&gt;</title>" in page
    assert "plotly.js v" in page  # the bundle itself, not a CDN link
    assert '<script src="http' not in page
    assert "Plotly.newPlot" in page
    for series in (
        "InvocationsPerInstance",
        "P target (100)",
        "P scale-in below (90)",
        "recorded InstanceCount",
        "simulated desired",
        "simulated in service",
        "scale-out",
        "scale-in",
        "Setting desired instance count to 3.",
    ):
        assert f'"{series}' in page, series
    assert '"y2"' in page or '"yaxis2"' in page  # the second, stacked panel


def test_html_renders_a_replay_without_samples() -> None:
    empty = _run([FAST], [])
    assert "Plotly.newPlot" in simulation_html(empty, title="nothing")


def test_terminal_chart_of_a_small_replay() -> None:
    assert terminal_chart(_small_run()) == (
        "endpoint/E/variant/V: 8 periods of 60 s; capacity 1..3\n"
        "InvocationsPerInstance: min 13.33  max 250  target 100 (P)\n"
        "  │▂██▃▁▂▂▂\n"
        "recorded capacity (InstanceCount)\n"
        "3 │\n"
        "2 │  ████\n"
        "1 │███████\n"
        "simulated desired capacity\n"
        "3 │  ██\n"
        "2 │  ███\n"
        "1 │████████\n"
        "  │  ▲ ▼▼\n"
        "  └────────\n"
        "   +0 s +7 min\n"
        "3 scaling decision(s):\n"
        "  +2 min ▲ 1 -> 3  P (AlarmHigh, value 250)\n"
        "  +4 min ▼ 3 -> 2  P (AlarmLow, value 13.33)\n"
        "  +5 min ▼ 2 -> 1  P (AlarmLow, value 20)\n"
    )


def test_terminal_chart_folds_long_replays_into_the_width_keeping_peaks() -> None:
    invocations = [20.0] * 200
    invocations[101] = 1000.0  # one period's spike: no scaling, but it must show
    result = _run([FAST], _samples(invocations, [1] * 200))
    chart = terminal_chart(result, width=50)
    lines = chart.splitlines()
    assert "4 per column" in lines[0]
    spark = lines[2].split("│", 1)[1]
    assert len(spark) == 50
    assert spark[25] == "█"  # samples 100..103 share column 25
    assert spark.count("█") == 1
    assert all(len(line) <= 80 for line in lines)
    assert "\x1b" not in chart


def test_terminal_chart_of_many_instances_shares_rows() -> None:
    config = TargetTrackingConfig("P", 100, high_periods=1)
    result = _run([config], _samples([2000, 2000]), max_capacity=40)
    lines = terminal_chart(result).splitlines()
    rows = lines[lines.index("simulated desired capacity") + 1 :]
    labels = [row.split("│")[0].strip() for row in rows[:8]]
    assert labels == ["20", "17", "14", "11", "8", "5", "2", ""]  # 20 instances, 3 a row
    assert rows[0].endswith("██")


def test_terminal_chart_without_samples_says_so() -> None:
    assert terminal_chart(_run([FAST], [])) == f"{RESOURCE}: no samples to chart\n"


def test_terminal_chart_lists_at_most_twenty_decisions() -> None:
    config = TargetTrackingConfig(
        "P", 100, high_periods=1, low_periods=1, scale_out_cooldown=0, scale_in_cooldown=0
    )
    result = _run([config], _samples([300, 0] * 15), max_capacity=3)
    assert len(result.decisions) == 30
    lines = terminal_chart(result).splitlines()
    assert lines[-1] == "  ... and 10 more"
    assert lines[-22] == "30 scaling decision(s):"
    marks = next(line for line in lines if "▲▼▲▼" in line)
    assert marks.endswith("▲▼" * 15)
