"""Target-tracking decisions (alarms, capacity, cooldowns) driven by a fake clock."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pytest

from kennel.endpoints._autoscaling import (
    Decision,
    ScalingTargetState,
    TargetTrackingConfig,
    policy_value,
)

RESOURCE = "endpoint/E/variant/AllTraffic"
PERIOD = 60.0
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Target:
    """A scalable target the way the controller drives it: one call per period.

    Decisions are applied at once and, unless ``lag`` is set, the new capacity is in
    service (and measured) from the next period.
    """

    def __init__(
        self,
        *policies: TargetTrackingConfig,
        desired: int = 1,
        min_capacity: int = 1,
        max_capacity: int = 10,
        period: float = PERIOD,
    ) -> None:
        self.clock = FakeClock()
        self.period = period
        self.state = ScalingTargetState(
            RESOURCE, list(policies), period_seconds=period, clock=self.clock
        )
        self.desired = desired
        self.measured = desired
        self.min_capacity = min_capacity
        self.max_capacity = max_capacity
        self.decisions: list[tuple[int, Decision]] = []
        self.periods = 0

    def step(
        self,
        values: Mapping[str, float | None],
        *,
        apply: bool = True,
        measured: int | None = None,
    ) -> Decision | None:
        self.periods += 1
        self.clock.now += self.period
        decision = self.state.evaluate(
            values,
            measured_capacity=self.measured if measured is None else measured,
            desired=self.desired,
            min_capacity=self.min_capacity,
            max_capacity=self.max_capacity,
        )
        if decision is not None:
            self.decisions.append((self.periods, decision))
            if apply:
                self.state.applied(decision)
                self.desired = decision.desired
        self.measured = self.desired
        return decision

    def run(self, series: Iterable[float | None], metric: str = "InvocationsPerInstance") -> None:
        for value in series:
            self.step({metric: value})

    def changes(self) -> list[tuple[int, int, int]]:
        """(period, previous, desired) of each decision so far."""
        return [(period, d.previous, d.desired) for period, d in self.decisions]


def policy(target: float = 100.0, **overrides: object) -> TargetTrackingConfig:
    return TargetTrackingConfig("P", target, **overrides)  # type: ignore[arg-type]


# --- scale-out -------------------------------------------------------------------------


def test_three_periods_above_target_scale_out_to_the_proportional_capacity() -> None:
    target = Target(policy(), desired=2)
    target.run([80, 250, 250])
    assert target.changes() == []  # two periods above target are not enough
    decision = target.step({"InvocationsPerInstance": 250})
    assert decision is not None
    assert (decision.direction, decision.alarm) == ("out", "AlarmHigh")
    assert (decision.previous, decision.desired) == (2, 5)  # ceil(2 x 250 / 100)
    assert decision.metric_value == 250
    assert decision.cooldown_seconds == 300


def test_the_decision_names_its_alarm_and_words_the_activity_as_aws_does() -> None:
    target = Target(policy(), desired=1)
    target.run([300, 300, 300])
    [(_, decision)] = target.decisions
    assert re.fullmatch(rf"TargetTracking-{RESOURCE}-AlarmHigh-{UUID}", decision.alarm_name)
    assert decision.description == "Setting desired instance count to 3."
    assert decision.cause == (
        f"monitor alarm {decision.alarm_name} in state ALARM triggered policy P"
    )


def test_scale_out_is_clamped_at_max_capacity() -> None:
    target = Target(policy(), desired=2, max_capacity=4)
    target.run([1000, 1000, 1000])
    assert target.changes() == [(3, 2, 4)]
    target.run([1000] * 20)  # at max: nothing more to ask for, after the cooldown too
    assert target.changes() == [(3, 2, 4)]


def test_a_one_period_spike_does_not_scale_out() -> None:
    target = Target(policy())
    target.run([50, 50, 5000, 50, 50, 80, 5000, 5000, 80, 50])
    assert target.changes() == []


def test_the_high_alarm_keeps_scaling_out_while_load_keeps_rising() -> None:
    # The alarm goes to ALARM once and stays there: the policy runs every period, not
    # only on the transition, so a growing load keeps adding capacity.
    target = Target(policy(scale_out_cooldown=0))
    target.run([200, 200, 200])  # 1 -> 2
    target.step({"InvocationsPerInstance": 150})  # 2 x 1.5 -> 3
    target.step({"InvocationsPerInstance": 200})  # 3 x 2 -> 6
    assert target.changes() == [(3, 1, 2), (4, 2, 3), (5, 3, 6)]


def test_scale_out_is_computed_from_measured_capacity_not_desired() -> None:
    # Two instances are still starting: per-instance load is measured over the one in
    # service, and scaling the desired 3 by it would ask for 9 for the same load.
    target = Target(policy(scale_out_cooldown=0), desired=3)
    for _ in range(3):
        decision = target.step({"InvocationsPerInstance": 300}, measured=1)
    assert decision is None
    assert target.changes() == []


def test_no_capacity_in_service_counts_as_one_instance() -> None:
    target = Target(policy(), desired=0, min_capacity=0)
    target.run([250, 250, 250])
    assert target.changes() == [(3, 0, 3)]


def test_capacity_rounding_ignores_floating_point_noise() -> None:
    # 3 x 0.9 / 0.3 is 9.000000000000002 in floating point: nine instances, not ten.
    target = Target(policy(target=0.3, metric="CPUUtilization"), desired=3)
    target.run([0.9, 0.9, 0.9], metric="CPUUtilization")
    assert target.changes() == [(3, 3, 9)]


# --- scale-in --------------------------------------------------------------------------


def test_slow_decay_scales_in_gradually_after_15_low_periods_with_cooldowns() -> None:
    target = Target(policy(), desired=3)
    target.run([100, 95, 92, 91, 90.5])  # at or just above 90% of target: not low
    target.run([40] * 14)
    assert target.changes() == []
    target.run([40])  # the 15th low period
    assert target.changes() == [(20, 3, 2)]  # gently: ceil(3 x 0.4) = 2
    target.run([40] * 10)
    # 300 s scale-in cooldown = 5 periods; then 2 x 0.4 -> 1, the minimum.
    assert target.changes() == [(20, 3, 2), (25, 2, 1)]


def test_scale_in_removes_at_most_half_the_capacity_per_action() -> None:
    target = Target(policy(scale_in_cooldown=0, low_periods=1), desired=10)
    target.run([0, 0, 0, 0])
    assert target.changes() == [(1, 10, 5), (2, 5, 3), (3, 3, 2), (4, 2, 1)]


def test_scale_in_goes_to_the_proportional_capacity_when_that_is_gentler() -> None:
    target = Target(policy(scale_in_cooldown=0, low_periods=1), desired=8)
    target.run([80, 80, 80])  # ceil(8 x 0.8) = 7, ceil(7 x 0.8) = 6, ceil(6 x 0.8) = 5
    assert target.changes() == [(1, 8, 7), (2, 7, 6), (3, 6, 5)]
    target.run([85])  # ceil(5 x 0.85) = 5: low, but nothing to remove
    assert len(target.decisions) == 3


def test_flapping_around_the_target_never_scales() -> None:
    target = Target(policy())
    target.run([150, 50] * 50)
    target.run([150, 150, 50, 150, 150, 50] * 10)
    assert target.changes() == []


def test_scale_to_zero_when_the_metric_stays_at_zero_with_min_zero() -> None:
    target = Target(policy(), desired=1, min_capacity=0)
    target.run([0] * 14)
    assert target.changes() == []
    target.run([0])
    assert target.changes() == [(15, 1, 0)]
    target.run([0] * 30)
    assert target.changes() == [(15, 1, 0)]


def test_disable_scale_in_never_scales_in_but_still_scales_out() -> None:
    target = Target(policy(disable_scale_in=True, scale_out_cooldown=0), desired=4)
    target.run([0] * 100)
    assert target.changes() == []
    target.run([200] * 3)
    assert target.changes() == [(103, 4, 8)]


# --- cooldowns -------------------------------------------------------------------------


def test_during_scale_out_cooldown_only_a_larger_scale_out_goes_ahead() -> None:
    target = Target(policy(), desired=1)
    target.run([300, 300, 300])
    assert target.changes() == [(3, 1, 3)]
    # The new instances are still starting: measured stays 1, load the same -> no more.
    target.step({"InvocationsPerInstance": 300}, measured=1)
    assert len(target.decisions) == 1
    # The load grows: ceil(1 x 500 / 100) = 5 > the 3 the scale-out set.
    decision = target.step({"InvocationsPerInstance": 500}, measured=1)
    assert decision is not None
    assert (decision.previous, decision.desired) == (3, 5)


def test_scale_out_cooldown_counts_the_capacity_it_added() -> None:
    target = Target(policy(), desired=1)
    target.run([400, 400, 400])
    assert target.changes() == [(3, 1, 4)]
    # Capacity reported lower than the scale-out set (not yet recorded), asking for 3:
    # the 4 of the scale-out count as there, so nothing happens within 300 s...
    target.desired = 2
    for _ in range(4):
        assert target.step({"InvocationsPerInstance": 150}, measured=2) is None
    # ... and the same ask goes ahead once the cooldown is over.
    decision = target.step({"InvocationsPerInstance": 150}, measured=2)
    assert decision is not None
    assert (decision.previous, decision.desired) == (2, 3)


def test_capacity_removed_by_others_no_longer_counts_for_the_scale_out_cooldown() -> None:
    target = Target(policy(), desired=1)
    target.run([400, 400, 400])
    target.state.capacity_changed(4, 2)  # e.g. max lowered to 2, then raised again
    target.desired = 2
    decision = target.step({"InvocationsPerInstance": 150}, measured=2)
    assert decision is not None
    assert (decision.previous, decision.desired) == (2, 3)


def test_capacity_changed_upwards_starts_no_cooldown() -> None:
    target = Target(policy(low_periods=1), desired=4)
    target.state.capacity_changed(2, 4)  # min raised to 4, then lowered to 1
    target.min_capacity = 1
    assert target.step({"InvocationsPerInstance": 10}) is not None


def test_no_scale_in_during_a_scale_out_cooldown() -> None:
    target = Target(policy(low_periods=2, scale_out_cooldown=600), desired=1)
    target.run([300, 300, 300])  # period 3: 1 -> 3, cooldown until period 13
    target.run([10] * 9)
    assert target.changes() == [(3, 1, 3)]
    target.run([10])
    assert target.changes() == [(3, 1, 3), (13, 3, 2)]


def test_a_scale_out_is_allowed_at_once_after_a_scale_in() -> None:
    target = Target(policy(low_periods=1, high_periods=1), desired=4)
    target.run([50])
    assert target.changes() == [(1, 4, 2)]
    target.run([300])  # inside the 300 s scale-in cooldown
    assert target.changes() == [(1, 4, 2), (2, 2, 6)]


def test_a_scale_out_ends_the_scale_in_cooldown() -> None:
    config = policy(low_periods=1, high_periods=1, scale_out_cooldown=0, scale_in_cooldown=3600)
    target = Target(config, desired=4)
    target.run([50, 150])  # 4 -> 2, then 2 -> 3 within the hour-long scale-in cooldown
    target.run([50])  # the scale-in cooldown ended with the scale-out
    assert target.changes() == [(1, 4, 2), (2, 2, 3), (3, 3, 2)]


def test_scale_in_cooldown_blocks_scale_in_until_it_has_fully_elapsed() -> None:
    target = Target(policy(low_periods=1, scale_in_cooldown=120), desired=8)
    target.run([0])  # at t, 8 -> 4
    target.run([0])  # t + 60
    target.run([0])  # t + 120: the cooldown is over exactly now
    assert target.changes() == [(1, 8, 4), (3, 4, 2)]


def test_a_decision_that_was_not_applied_starts_no_cooldown() -> None:
    target = Target(policy(), desired=1)
    target.run([300, 300])
    first = target.step({"InvocationsPerInstance": 300}, apply=False)
    second = target.step({"InvocationsPerInstance": 300}, apply=False)
    assert first is not None
    assert second is not None
    assert (second.previous, second.desired) == (1, 3)


# --- min / max -------------------------------------------------------------------------


def test_scale_in_is_clamped_at_min_capacity() -> None:
    target = Target(policy(low_periods=1, scale_in_cooldown=0), desired=6, min_capacity=4)
    target.run([0, 0, 0])
    assert target.changes() == [(1, 6, 4)]


def test_out_of_range_capacity_is_left_to_the_caller() -> None:
    # Above max with high load: a "scale-out" to max would lower capacity; not a policy's.
    above = Target(policy(), desired=6, max_capacity=4)
    above.run([300] * 5)
    assert above.changes() == []
    # Below min with low load: a "scale-in" to min would raise capacity; not a policy's.
    below = Target(policy(low_periods=1), desired=1, min_capacity=3)
    below.run([0] * 5)
    assert below.changes() == []
    # Above max with low load: a scale-in still happens, clamped into the range.
    clamped = Target(policy(low_periods=1), desired=10, min_capacity=2, max_capacity=4)
    clamped.run([50])
    assert clamped.changes() == [(1, 10, 4)]


# --- missing data and alarm states -----------------------------------------------------


def test_missing_data_breaks_a_streak() -> None:
    target = Target(policy())
    target.run([300, 300, None, 300, 300])
    target.step({})  # a missing key is missing data too
    target.run([300, 300])
    assert target.changes() == []
    target.run([300])
    assert target.changes() == [(9, 1, 3)]


def test_missing_data_breaks_a_low_streak() -> None:
    target = Target(policy(), desired=2)
    target.run([10] * 10 + [None] + [10] * 14)
    assert target.changes() == []
    target.run([10])
    assert target.changes() == [(26, 2, 1)]


def _states(state: ScalingTargetState) -> list[tuple[str, str]]:
    return [(alarm["alarm"], alarm["state"]) for alarm in state.alarms()]


def test_alarm_states_follow_the_data() -> None:
    target = Target(policy(high_periods=3, low_periods=2))
    assert _states(target.state) == [
        ("AlarmHigh", "INSUFFICIENT_DATA"),
        ("AlarmLow", "INSUFFICIENT_DATA"),
    ]
    target.run([100])
    assert _states(target.state) == [("AlarmHigh", "OK"), ("AlarmLow", "OK")]
    target.run([10, 10])
    assert _states(target.state) == [("AlarmHigh", "OK"), ("AlarmLow", "ALARM")]
    target.run([None, None])
    assert _states(target.state) == [("AlarmHigh", "OK"), ("AlarmLow", "INSUFFICIENT_DATA")]
    target.run([None])  # nothing left in the high alarm's three periods either
    assert _states(target.state) == [
        ("AlarmHigh", "INSUFFICIENT_DATA"),
        ("AlarmLow", "INSUFFICIENT_DATA"),
    ]


def test_alarms_describe_names_thresholds_and_recent_values() -> None:
    target = Target(policy(target=200, high_periods=2, low_periods=3, low_ratio=0.5))
    before = target.state.alarms()
    target.run([300, None, 250, 260])
    high, low = target.state.alarms()
    assert [high["alarm_name"], low["alarm_name"]] == [a["alarm_name"] for a in before]
    assert re.fullmatch(rf"TargetTracking-{RESOURCE}-AlarmLow-{UUID}", low["alarm_name"])
    assert high == {
        "policy_name": "P",
        "alarm_name": high["alarm_name"],
        "alarm": "AlarmHigh",
        "metric": "InvocationsPerInstance",
        "state": "ALARM",
        "comparison": "GreaterThanThreshold",
        "threshold": 200,
        "evaluation_periods": 2,
        "recent_values": [250, 260],
    }
    assert low["comparison"] == "LessThanThreshold"
    assert low["threshold"] == 100
    assert low["recent_values"] == [None, 250, 260]
    assert low["state"] == "OK"


# --- several policies ------------------------------------------------------------------


def _two_policies(**second: object) -> tuple[TargetTrackingConfig, TargetTrackingConfig]:
    invocations = TargetTrackingConfig("Invocations", 100, low_periods=1, high_periods=1)
    latency = TargetTrackingConfig(
        "Latency",
        50_000,
        metric="ModelLatency",
        low_periods=1,
        high_periods=1,
        **second,  # type: ignore[arg-type]
    )
    return invocations, latency


def test_several_policies_scale_out_when_any_asks_taking_the_largest() -> None:
    target = Target(*_two_policies(), desired=2)
    decision = target.step({"InvocationsPerInstance": 150, "ModelLatency": 40_000})
    assert decision is not None
    assert (decision.policy_name, decision.desired) == ("Invocations", 3)
    target = Target(*_two_policies(), desired=2)
    decision = target.step({"InvocationsPerInstance": 150, "ModelLatency": 200_000})
    assert decision is not None
    assert (decision.policy_name, decision.desired) == ("Latency", 8)


def test_several_policies_scale_in_only_when_all_agree_taking_the_largest() -> None:
    target = Target(*_two_policies(), desired=8)
    # Invocations are low, latency is in its band: no scale-in.
    assert target.step({"InvocationsPerInstance": 10, "ModelLatency": 48_000}) is None
    # Latency has no data: its low alarm is not in ALARM, no scale-in either.
    assert target.step({"InvocationsPerInstance": 10}) is None
    # Both low: Invocations asks for 4 (at most half), Latency for ceil(8 x 0.6) = 5.
    decision = target.step({"InvocationsPerInstance": 10, "ModelLatency": 30_000})
    assert decision is not None
    assert (decision.policy_name, decision.alarm, decision.desired) == ("Latency", "AlarmLow", 5)


def test_a_policy_with_scale_in_disabled_has_no_vote_on_scale_in() -> None:
    target = Target(*_two_policies(disable_scale_in=True), desired=4)
    decision = target.step({"InvocationsPerInstance": 10, "ModelLatency": 48_000})
    assert decision is not None
    assert (decision.policy_name, decision.desired) == ("Invocations", 2)


def test_a_policy_in_high_alarm_vetoes_scale_in_even_with_scale_in_disabled() -> None:
    target = Target(*_two_policies(disable_scale_in=True), desired=4)
    # Latency is high but asks for no more than the 4 there (2 instances measured).
    values = {"InvocationsPerInstance": 10, "ModelLatency": 90_000}
    assert target.step(values, measured=2) is None


def test_when_every_policy_disables_scale_in_nothing_scales_in() -> None:
    only = TargetTrackingConfig("P", 100, disable_scale_in=True, low_periods=1)
    target = Target(only, desired=4)
    target.run([0] * 20)
    assert target.changes() == []


# --- per-minute normalisation ----------------------------------------------------------


def test_counts_are_compared_per_minute_whatever_the_period() -> None:
    # A 1 s period: 2 invocations per instance in a second are 120 per minute.
    target = Target(policy(target=100), desired=2, period=1.0)
    target.run([2, 2, 2])
    [(_, decision)] = target.decisions
    assert decision.metric_value == 120
    assert decision.desired == 3  # ceil(2 x 120 / 100)
    assert target.state.alarms()[0]["recent_values"] == [120, 120, 120]


def test_one_count_per_second_stays_below_a_target_of_100_per_minute() -> None:
    target = Target(policy(target=100), desired=2, period=1.0)
    target.run([1.5] * 30)  # 90 per minute: not above 100, not below 90
    assert target.changes() == []


def test_other_metrics_are_compared_as_measured() -> None:
    assert policy_value("ModelLatency", 2.0, period_seconds=1.0) == 2.0
    assert policy_value("Invocations", 2.0, period_seconds=1.0) == 120.0
    assert policy_value("InvocationsPerInstance", 30.0, period_seconds=120.0) == 15.0
    assert policy_value("InvocationsPerInstance", None, period_seconds=1.0) is None


# --- policies over time ----------------------------------------------------------------


def test_update_policies_keeps_the_history_of_unchanged_policies() -> None:
    kept, changed = TargetTrackingConfig("Kept", 100), TargetTrackingConfig("Changed", 100)
    target = Target(kept, changed)
    names = [alarm["alarm_name"] for alarm in target.state.alarms()]
    target.run([300, 300])
    target.state.update_policies([kept, TargetTrackingConfig("Changed", 500)])
    alarms = target.state.alarms()
    assert [alarm["alarm_name"] for alarm in alarms[:2]] == names[:2]
    assert not set(names[2:]) & {alarm["alarm_name"] for alarm in alarms[2:]}
    assert alarms[0]["recent_values"] == [300, 300]
    assert alarms[2]["recent_values"] == []
    decision = target.step({"InvocationsPerInstance": 300})  # Kept's third high period
    assert decision is not None
    assert decision.policy_name == "Kept"


def test_removing_every_policy_stops_decisions() -> None:
    target = Target(policy())
    target.run([300, 300])
    target.state.update_policies([])
    target.run([300] * 5)
    assert target.changes() == []
    assert target.state.alarms() == []


def test_invalid_configuration_is_refused_where_it_is_made() -> None:
    with pytest.raises(ValueError, match="target_value"):
        TargetTrackingConfig("P", 0)
    with pytest.raises(ValueError, match="periods"):
        TargetTrackingConfig("P", 1, high_periods=0)
    with pytest.raises(ValueError, match="period_seconds"):
        ScalingTargetState(RESOURCE, [], period_seconds=0)
    with pytest.raises(ValueError, match="unique"):
        ScalingTargetState(RESOURCE, [policy(), policy(target=5)], period_seconds=1)
