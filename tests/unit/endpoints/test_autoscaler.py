"""The autoscaler between the metric periods, the policies and the endpoint's fleet.

The endpoint service and the scaling service are small fakes here (the real ones are
exercised end to end in tests/integration/endpoints/test_autoscaling.py); the clock is
driven by the test, so cooldowns and alarms run without sleeping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from kennel._errors import ConflictError
from kennel.endpoints._autoscaler import Autoscaler
from kennel.endpoints._autoscaling import TargetTrackingConfig
from kennel.endpoints._scaling import ScheduledActionInfo, TargetInfo

RESOURCE = "endpoint/e/variant/AllTraffic"


@dataclass
class FakeEndpoints:
    desired: int = 1
    serving: bool = True
    fail_with: Exception | None = None
    scaled: list[int] = field(default_factory=list)
    period_listeners: list[Any] = field(default_factory=list)
    on_empty: Any = None
    gate: threading.Event | None = None

    def variant_capacity(self, endpoint: str, variant: str) -> tuple[int, int] | None:
        return (self.desired, self.desired) if self.serving else None

    def scale_variant(self, endpoint: str, variant: str, desired: int) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail_with is not None:
            raise self.fail_with
        self.scaled.append(desired)
        self.desired = desired


@dataclass
class FakeScaling:
    target: TargetInfo | None
    generation: int = 1
    activities: list[dict[str, Any]] = field(default_factory=list)

    def targets(self) -> list[TargetInfo]:
        return [self.target] if self.target is not None else []

    scheduled: list[ScheduledActionInfo] = field(default_factory=list)
    registered: list[dict[str, Any]] = field(default_factory=list)

    def scheduled_actions(self) -> list[ScheduledActionInfo]:
        return self.scheduled

    def register_scalable_target(self, request: dict[str, Any]) -> dict[str, Any]:
        self.registered.append(request)
        return {}

    def start_activity(self, resource_id: str, **fields: Any) -> str:
        self.activities.append({"id": str(len(self.activities)), "status": "InProgress", **fields})
        return self.activities[-1]["id"]

    def finish_activity(self, activity_id: str, status: str, message: str | None = None) -> None:
        self.activities[int(activity_id)].update(status=status, message=message)


def _target(low: int = 1, high: int = 3, **changes: Any) -> TargetInfo:
    policy = TargetTrackingConfig(
        policy_name="p", target_value=60.0, scale_out_cooldown=30, scale_in_cooldown=30
    )
    base = TargetInfo(
        resource_id=RESOURCE,
        endpoint="e",
        variant="AllTraffic",
        min_capacity=low,
        max_capacity=high,
        dynamic_scaling_in_suspended=False,
        dynamic_scaling_out_suspended=False,
        scheduled_scaling_suspended=False,
        policies=(policy,),
    )
    return replace(base, **changes)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _scaler(endpoints: FakeEndpoints, scaling: FakeScaling) -> tuple[Autoscaler, Clock]:
    clock = Clock()
    settings = SimpleNamespace(endpoint_metrics_period_seconds=1.0)
    scaler = Autoscaler(endpoints, scaling, settings, clock=clock)  # type: ignore[arg-type]
    scaler.start()
    return scaler, clock


def _periods(scaler: Autoscaler, clock: Clock, per_second: float, count: int) -> None:
    """``count`` one-second periods at ``per_second`` invocations per instance."""
    for _ in range(count):
        clock.now += 1.0
        scaler.on_period({RESOURCE: {"InvocationsPerInstance": per_second}})
        _settle(scaler)


def _settle(scaler: Autoscaler) -> None:
    for worker in list(scaler._busy.values()):
        worker.join(5)


def test_three_periods_above_target_scale_out_and_record_the_activity() -> None:
    endpoints, scaling = FakeEndpoints(), FakeScaling(_target())
    scaler, clock = _scaler(endpoints, scaling)
    _periods(scaler, clock, 2.0, 2)  # 120 per minute against 60: not yet 3 periods
    assert endpoints.scaled == []
    _periods(scaler, clock, 2.0, 1)
    assert endpoints.scaled == [2]
    (activity,) = scaling.activities
    assert activity["status"] == "Successful"
    assert activity["description"] == "Setting desired instance count to 2."
    assert "AlarmHigh" in activity["cause"]
    assert activity["cause"].endswith("changing the desired capacity from 1 to 2.")


def test_bounds_are_enforced_first_and_say_so() -> None:
    endpoints, scaling = FakeEndpoints(desired=5), FakeScaling(_target(1, 3))
    scaler, clock = _scaler(endpoints, scaling)
    _periods(scaler, clock, 0.5, 1)
    assert endpoints.scaled == [3]
    assert "maximum capacity of 3" in scaling.activities[0]["cause"]
    endpoints.desired = 0
    _periods(scaler, clock, 0.5, 1)
    assert endpoints.scaled == [3, 1]
    assert "minimum capacity of 1" in scaling.activities[1]["cause"]


def test_a_suspended_direction_is_not_taken() -> None:
    endpoints = FakeEndpoints()
    scaling = FakeScaling(_target(dynamic_scaling_out_suspended=True))
    scaler, clock = _scaler(endpoints, scaling)
    _periods(scaler, clock, 5.0, 5)
    assert endpoints.scaled == []


def test_a_variant_that_cannot_scale_now_is_left_alone() -> None:
    endpoints, scaling = FakeEndpoints(serving=False), FakeScaling(_target())
    scaler, clock = _scaler(endpoints, scaling)
    _periods(scaler, clock, 5.0, 5)
    assert endpoints.scaled == [] and scaling.activities == []


def test_a_failed_change_is_a_failed_activity_and_starts_no_cooldown() -> None:
    endpoints = FakeEndpoints(fail_with=ConflictError("Endpoint e is Updating."))
    scaling = FakeScaling(_target())
    scaler, clock = _scaler(endpoints, scaling)
    _periods(scaler, clock, 2.0, 3)
    assert [a["status"] for a in scaling.activities] == ["Failed"]
    assert "Endpoint e is Updating." in scaling.activities[0]["message"]
    endpoints.fail_with = None
    _periods(scaler, clock, 2.0, 1)  # still in ALARM, no cooldown: tried again at once
    assert endpoints.scaled == [2]


def test_one_change_at_a_time_while_the_alarms_keep_counting() -> None:
    gate = threading.Event()
    endpoints, scaling = FakeEndpoints(gate=gate), FakeScaling(_target())
    scaler, clock = _scaler(endpoints, scaling)
    for _ in range(6):
        clock.now += 1.0
        scaler.on_period({RESOURCE: {"InvocationsPerInstance": 2.0}})
    assert len(scaling.activities) == 1  # the first change is still under way
    gate.set()
    _settle(scaler)
    assert endpoints.scaled == [2]


@pytest.mark.parametrize(
    ("low", "high", "desired", "expected"), [(0, 2, 0, True), (0, 0, 0, False)]
)
def test_a_request_at_zero_wakes_an_instance_when_the_target_allows(
    low: int, high: int, desired: int, expected: bool
) -> None:
    endpoints, scaling = FakeEndpoints(desired=desired), FakeScaling(_target(low, high))
    scaler, _ = _scaler(endpoints, scaling)
    assert endpoints.on_empty("e", "AllTraffic") is expected
    _settle(scaler)
    assert endpoints.scaled == ([1] if expected else [])
    if expected:
        assert "scale from zero" in scaling.activities[0]["cause"]
    assert endpoints.on_empty("e", "Other") is False  # no target registered for it


def test_without_a_target_nothing_wakes() -> None:
    endpoints, scaling = FakeEndpoints(desired=0), FakeScaling(None)
    scaler, _ = _scaler(endpoints, scaling)
    assert endpoints.on_empty("e", "AllTraffic") is False
    scaler.stop()
    assert endpoints.on_empty is None and endpoints.period_listeners == []


def test_a_scheduled_action_sets_the_bounds_once_when_due() -> None:
    endpoints, scaling = FakeEndpoints(), FakeScaling(_target())
    scaler, clock = _scaler(endpoints, scaling)
    now = datetime.now(UTC)
    scaling.scheduled = [
        ScheduledActionInfo(
            name="evening",
            resource_id=RESOURCE,
            schedule=f"at({now:%Y-%m-%dT%H:%M:%S})",
            run_at=now,
            every=None,
            start_time=None,
            end_time=None,
            min_capacity=2,
            max_capacity=None,
            created_at=now,
        )
    ]
    scaling.generation += 1  # as a PutScheduledAction would
    _periods(scaler, clock, 0.5, 3)
    assert scaling.registered == [
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 2,
        }
    ]
    (activity,) = scaling.activities
    assert activity["description"] == "Setting min capacity to 2."
    assert activity["cause"] == "scheduled action name evening was triggered"
    assert activity["status"] == "Successful"
