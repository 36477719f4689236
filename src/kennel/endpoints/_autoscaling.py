"""Application Auto Scaling's target tracking, as pure decisions over a metric series.

A target-tracking policy keeps one variant metric near a target value. AWS implements it
with two CloudWatch alarms per policy, and kennel mirrors that shape so ``describe`` and
scaling activities read the same as on AWS:

* the *high* alarm goes to ALARM after ``high_periods`` consecutive periods above the
  target, and then asks for ``ceil(in-service capacity x value / target)`` instances;
* the *low* alarm goes to ALARM after ``low_periods`` consecutive periods below
  ``low_ratio`` x target, and then removes instances gently (at most half per action).

While an alarm stays in ALARM its policy is invoked again every period, so a load that
keeps growing keeps adding capacity; cooldowns stop that from overshooting while new
instances start. Several policies on one target scale out when any of them asks, and
scale in only when every policy that may scale in agrees.

:class:`ScalingTargetState` holds the alarms and cooldowns of one scalable target and
is driven once per metric period by the controller (:meth:`ScalingTargetState.evaluate`,
then :meth:`ScalingTargetState.applied` when a decision was carried out). It does no I/O
and reads time only through the injected clock, so the same code replays recorded
metrics in :func:`simulate` to show what a policy would have done.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypedDict

PER_MINUTE_METRICS = frozenset({"InvocationsPerInstance", "Invocations"})
"""Counts that Application Auto Scaling reads per minute, whatever kennel's period."""

Clock = Callable[[], float]

AlarmKind = Literal["AlarmHigh", "AlarmLow"]
AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]

_ROUNDING_SLACK = 1e-9
"""Taken off ``capacity x value / target`` before ``ceil``: 3 x 1.1 / 1.1 is 3.0000000000000004
in floating point, and must not ask for a fourth instance."""


@dataclass(frozen=True)
class TargetTrackingConfig:
    """One target-tracking policy, in the units the decision logic needs.

    ``metric`` is the variant metric it reads (one of the names an endpoint variant
    publishes: ``InvocationsPerInstance`` for the predefined
    SageMakerVariantInvocationsPerInstance, ``ModelLatency``, ``CPUUtilization``, ...).
    Counts in :data:`PER_MINUTE_METRICS` are compared with ``target_value`` per minute.
    """

    policy_name: str
    target_value: float
    metric: str = "InvocationsPerInstance"
    scale_out_cooldown: float = 300.0
    scale_in_cooldown: float = 300.0
    disable_scale_in: bool = False
    high_periods: int = 3
    """Consecutive periods above the target that put the high alarm in ALARM."""
    low_periods: int = 15
    """Consecutive periods below ``low_ratio`` x target that put the low alarm in ALARM."""
    low_ratio: float = 0.9
    alarm_names: tuple[tuple[str, str], ...] = ()
    """``(kind, name)`` of the alarms as PutScalingPolicy named them (so activities and
    DescribeScalingPolicies agree); an alarm without one gets a fresh name."""

    def __post_init__(self) -> None:
        # The capacity formula divides by the target, and an alarm needs at least one
        # period: a config that breaks either would fail later, far from its cause.
        if not self.target_value > 0:
            raise ValueError(f"target_value must be positive, got {self.target_value}")
        if self.high_periods < 1 or self.low_periods < 1:
            raise ValueError("high_periods and low_periods must be at least 1")


@dataclass(frozen=True)
class Decision:
    """A change of desired capacity that a policy asks for."""

    policy_name: str
    direction: Literal["out", "in"]
    alarm: AlarmKind
    previous: int
    desired: int
    metric_value: float
    """The value the policy compared with its target (per minute for counts)."""
    alarm_name: str = ""
    """The alarm that triggered the policy, in AWS's ``TargetTracking-...`` form."""
    cooldown_seconds: float = 0.0
    """The cooldown that starts when the decision is applied (the policy's, by direction)."""

    @property
    def description(self) -> str:
        """The scaling activity's Description, worded as AWS words it."""
        return f"Setting desired instance count to {self.desired}."

    @property
    def cause(self) -> str:
        """The scaling activity's Cause, worded as AWS words it."""
        return f"monitor alarm {self.alarm_name} in state ALARM triggered policy {self.policy_name}"


class AlarmStatus(TypedDict):
    """One alarm of one policy, as ``describe`` shows it."""

    policy_name: str
    alarm_name: str
    alarm: AlarmKind
    metric: str
    state: AlarmState
    comparison: Literal["GreaterThanThreshold", "LessThanThreshold"]
    threshold: float
    evaluation_periods: int
    recent_values: list[float | None]
    """The last ``evaluation_periods`` values, oldest first, in policy units; None = no data."""


def policy_value(metric: str, value: float | None, *, period_seconds: float) -> float | None:
    """The value a policy compares with its target, from one period's raw value.

    AWS defines SageMakerVariantInvocationsPerInstance per instance *per minute*; kennel's
    metric period is a setting, so counts are scaled to a minute and a policy's target
    means the same whatever the period.
    """
    if value is None or metric not in PER_MINUTE_METRICS:
        return value
    return value * 60.0 / period_seconds


def _clamp(capacity: int, min_capacity: int, max_capacity: int) -> int:
    return max(min_capacity, min(max_capacity, capacity))


def _capacity_for(capacity: int, value: float, target: float) -> int:
    """The capacity at which ``value`` would be back at ``target`` (AWS's proportional rule)."""
    return math.ceil(capacity * value / target - _ROUNDING_SLACK)


class _Alarm:
    """One CloudWatch-style alarm over consecutive periods of one policy's metric."""

    def __init__(self, kind: AlarmKind, resource_id: str, config: TargetTrackingConfig) -> None:
        self.kind: AlarmKind = kind
        self.name = dict(config.alarm_names).get(kind) or (
            f"TargetTracking-{resource_id}-{kind}-{uuid.uuid4()}"
        )
        if kind == "AlarmHigh":
            self.threshold = config.target_value
            self.periods = config.high_periods
        else:
            self.threshold = config.low_ratio * config.target_value
            self.periods = config.low_periods
        self.recent: deque[float | None] = deque(maxlen=self.periods)
        self.streak = 0
        """Consecutive breaching periods up to the latest one; missing data ends it."""

    def observe(self, value: float | None) -> None:
        self.recent.append(value)
        if value is not None and self._breaches(value):
            self.streak += 1
        else:
            self.streak = 0

    def _breaches(self, value: float) -> bool:
        if self.kind == "AlarmHigh":
            return value > self.threshold
        return value < self.threshold

    @property
    def state(self) -> AlarmState:
        if self.streak >= self.periods:
            return "ALARM"
        if all(value is None for value in self.recent):
            return "INSUFFICIENT_DATA"
        return "OK"


class _PolicyState:
    """A policy's config with its two alarms and the value it saw last."""

    def __init__(self, resource_id: str, config: TargetTrackingConfig) -> None:
        self.config = config
        self.high = _Alarm("AlarmHigh", resource_id, config)
        self.low = _Alarm("AlarmLow", resource_id, config)
        self.value: float | None = None

    def observe(self, value: float | None) -> None:
        self.value = value
        self.high.observe(value)
        self.low.observe(value)

    def scale_out_to(self, base_capacity: int) -> int | None:
        """What the high alarm asks for this period, or None when it is not in ALARM."""
        if self.high.state != "ALARM" or self.value is None:
            return None
        return _capacity_for(base_capacity, self.value, self.config.target_value)

    def scale_in_to(self, base_capacity: int, desired: int) -> int | None:
        """What the low alarm asks for this period, or None when it is not in ALARM.

        Scale-in is gradual: at most half the desired capacity (at least one instance)
        goes in one action, so a quiet minute cannot empty a busy endpoint at once.
        """
        if self.low.state != "ALARM" or self.value is None:
            return None
        wanted = _capacity_for(base_capacity, self.value, self.config.target_value)
        return max(wanted, desired - max(1, desired // 2))


class ScalingTargetState:
    """Alarms and cooldowns of one scalable target (``endpoint/E/variant/V``).

    Call :meth:`evaluate` once per metric period with that period's variant metrics; it
    returns the decision the target-tracking policies take, or None. Call
    :meth:`applied` when a decision was carried out: only then does a cooldown start, so
    a change that failed is asked for again next period.

    Cooldowns belong to the target, not to a policy (a scale-out by one policy blocks
    scale-in by all of them, as on AWS); their length is the deciding policy's.
    """

    def __init__(
        self,
        resource_id: str,
        policies: Sequence[TargetTrackingConfig],
        *,
        period_seconds: float,
        clock: Clock = time.monotonic,
    ) -> None:
        if not period_seconds > 0:
            raise ValueError(f"period_seconds must be positive, got {period_seconds}")
        self.resource_id = resource_id
        self.period_seconds = period_seconds
        self._clock = clock
        self._policies: list[_PolicyState] = []
        self._scale_out_cooldown_until: float | None = None
        self._scale_out_capacity = 0
        """The desired capacity the last applied scale-out set, less what others removed."""
        self._scale_in_cooldown_until: float | None = None
        self.update_policies(policies)

    @property
    def policies(self) -> tuple[TargetTrackingConfig, ...]:
        return tuple(policy.config for policy in self._policies)

    def update_policies(self, policies: Sequence[TargetTrackingConfig]) -> None:
        """Replace the policies; one whose config is unchanged keeps its alarms' history.

        A changed policy starts with fresh alarms (new names, no history): its old
        history was judged against another target. Cooldowns stay, since they are the
        target's.
        """
        names = [config.policy_name for config in policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policy names must be unique on a target, got {names}")
        kept = {policy.config: policy for policy in self._policies}
        self._policies = [
            kept.get(config) or _PolicyState(self.resource_id, config) for config in policies
        ]

    def evaluate(
        self,
        values: Mapping[str, float | None],
        *,
        measured_capacity: int,
        desired: int,
        min_capacity: int,
        max_capacity: int,
    ) -> Decision | None:
        """Feed one period's metrics to every policy's alarms and decide.

        ``measured_capacity`` (the instances the metric was measured over) is the base of
        the proportional rule, not ``desired``: while new instances start, the per-
        instance load stays high, and scaling ``desired`` by it would add capacity again
        and again for the same load. With no instance in service the base is one.

        What it returns is clamped to ``[min_capacity, max_capacity]``, and a policy never
        asks for a change only because ``desired`` is outside that range: bringing it
        back is the caller's job (a scale-out never lowers capacity, a scale-in never
        raises it).
        """
        for policy in self._policies:
            metric = policy.config.metric
            policy.observe(
                policy_value(metric, values.get(metric), period_seconds=self.period_seconds)
            )
        now = self._clock()
        base_capacity = max(1, measured_capacity)
        limits = (min_capacity, max_capacity)
        scale_out = self._scale_out(now, base_capacity, desired, limits)
        if scale_out is not None:
            return scale_out
        return self._scale_in(now, base_capacity, desired, limits)

    def applied(self, decision: Decision) -> None:
        """Start the cooldown that ``decision`` carries, now that it was carried out."""
        now = self._clock()
        if decision.direction == "out":
            self._scale_out_cooldown_until = now + decision.cooldown_seconds
            self._scale_out_capacity = decision.desired
            # AWS: a scale-out during a scale-in cooldown ends that cooldown.
            self._scale_in_cooldown_until = None
        else:
            self._scale_in_cooldown_until = now + decision.cooldown_seconds

    def capacity_changed(self, previous: int, desired: int) -> None:
        """Note a change of desired capacity made by someone else (min/max enforcement).

        It starts no cooldown: cooldowns let a policy's own change take effect, and AWS
        starts them for scaling-policy activities only. It does forget capacity that was
        removed, so a scale-out cooldown compares a new scale-out with capacity that still
        exists (after max was lowered and raised again, the policy may scale out at once).
        """
        if desired < previous:
            self._scale_out_capacity = min(self._scale_out_capacity, desired)

    def alarms(self) -> list[AlarmStatus]:
        """Each policy's high and low alarm, in policy order, for ``describe``."""
        statuses: list[AlarmStatus] = []
        for policy in self._policies:
            for alarm in (policy.high, policy.low):
                statuses.append(
                    AlarmStatus(
                        policy_name=policy.config.policy_name,
                        alarm_name=alarm.name,
                        alarm=alarm.kind,
                        metric=policy.config.metric,
                        state=alarm.state,
                        comparison=(
                            "GreaterThanThreshold"
                            if alarm.kind == "AlarmHigh"
                            else "LessThanThreshold"
                        ),
                        threshold=alarm.threshold,
                        evaluation_periods=alarm.periods,
                        recent_values=list(alarm.recent),
                    )
                )
        return statuses

    def _in_scale_out_cooldown(self, now: float) -> bool:
        return self._scale_out_cooldown_until is not None and now < self._scale_out_cooldown_until

    def _in_scale_in_cooldown(self, now: float) -> bool:
        return self._scale_in_cooldown_until is not None and now < self._scale_in_cooldown_until

    def _scale_out(
        self, now: float, base_capacity: int, desired: int, limits: tuple[int, int]
    ) -> Decision | None:
        """The largest scale-out any policy asks for, if it raises capacity.

        During a scale-out cooldown the capacity that scale-out added counts as already
        there: only a larger scale-out goes ahead ("unless a larger scale out is
        triggered").
        """
        floor = desired
        if self._in_scale_out_cooldown(now):
            floor = max(desired, self._scale_out_capacity)
        best: Decision | None = None
        for policy in self._policies:
            wanted = policy.scale_out_to(base_capacity)
            if wanted is None:
                continue
            capacity = _clamp(wanted, *limits)
            if capacity > floor and (best is None or capacity > best.desired):
                best = self._decision(policy, policy.high, "out", desired, capacity)
        return best

    def _scale_in(
        self, now: float, base_capacity: int, desired: int, limits: tuple[int, int]
    ) -> Decision | None:
        """A scale-in, if every policy that may scale in asks for one and no cooldown holds.

        Of the policies' scale-in results the largest wins: the target never drops below
        what any of them still needs. A policy whose high alarm is in ALARM vetoes
        scale-in even with DisableScaleIn set, since removing capacity would only push
        its metric further above the target.
        """
        if self._in_scale_out_cooldown(now) or self._in_scale_in_cooldown(now):
            return None
        if any(policy.high.state == "ALARM" for policy in self._policies):
            return None
        voters = [policy for policy in self._policies if not policy.config.disable_scale_in]
        best: Decision | None = None
        for policy in voters:
            wanted = policy.scale_in_to(base_capacity, desired)
            if wanted is None:
                return None
            capacity = _clamp(wanted, *limits)
            if best is None or capacity > best.desired:
                best = self._decision(policy, policy.low, "in", desired, capacity)
        if best is None or best.desired >= desired:
            return None
        return best

    @staticmethod
    def _decision(
        policy: _PolicyState,
        alarm: _Alarm,
        direction: Literal["out", "in"],
        previous: int,
        desired: int,
    ) -> Decision:
        config = policy.config
        return Decision(
            policy_name=config.policy_name,
            direction=direction,
            alarm=alarm.kind,
            previous=previous,
            desired=desired,
            # An alarm in ALARM has just seen a value; NaN only satisfies the type.
            metric_value=policy.value if policy.value is not None else math.nan,
            alarm_name=alarm.name,
            cooldown_seconds=(
                config.scale_out_cooldown if direction == "out" else config.scale_in_cooldown
            ),
        )


# --- replaying recorded metrics -------------------------------------------------------

Sample = tuple[float, Mapping[str, float | None]]
"""One recorded period: its timestamp in seconds and the variant metrics of that period."""


@dataclass(frozen=True)
class SimulationPoint:
    """One replayed period."""

    time: float
    metrics: dict[str, float | None]
    """Each policy metric's value as the policies compared it (per minute for counts)."""
    recorded_capacity: float | None
    """The InstanceCount recorded in that period, if any."""
    desired: int
    """The simulated desired capacity after this period's decision."""
    in_service: int
    """The simulated instances in service during this period (the metric's base)."""


@dataclass(frozen=True)
class TimedDecision:
    """A decision of the replay and the sample time it was taken at."""

    time: float
    decision: Decision


@dataclass(frozen=True)
class SimulationResult:
    """What the policies would have done over a recorded series."""

    resource_id: str
    period_seconds: float
    min_capacity: int
    max_capacity: int
    policies: tuple[TargetTrackingConfig, ...]
    points: tuple[SimulationPoint, ...]
    decisions: tuple[TimedDecision, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; decisions carry their AWS-worded description and cause."""
        return {
            "resource_id": self.resource_id,
            "period_seconds": self.period_seconds,
            "min_capacity": self.min_capacity,
            "max_capacity": self.max_capacity,
            "policies": [asdict(policy) for policy in self.policies],
            "points": [asdict(point) for point in self.points],
            "decisions": [
                {
                    "time": timed.time,
                    **asdict(timed.decision),
                    "description": timed.decision.description,
                    "cause": timed.decision.cause,
                }
                for timed in self.decisions
            ],
        }


class _ReplayClock:
    """A clock that reads the timestamp of the sample being replayed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _recorded_invocations(values: Mapping[str, float | None]) -> float | None:
    """The period's invocation count, from ``Invocations`` or else per instance x count."""
    invocations = values.get("Invocations")
    if invocations is not None:
        return invocations
    per_instance = values.get("InvocationsPerInstance")
    instances = values.get("InstanceCount")
    if per_instance is not None and instances is not None:
        return per_instance * max(1.0, instances)
    return None


def _in_service(history: Sequence[int], startup_periods: int) -> int:
    """Instances in service now, given the desired capacity at the start of each period.

    New instances serve ``startup_periods`` periods after they were asked for; removed
    ones stop at once (stopping is quick, starting is what takes time). The minimum of
    the desired capacity now and ``startup_periods`` ago models both.
    """
    started = history[max(0, len(history) - 1 - startup_periods)]
    return min(history[-1], started)


def simulate(
    policies: Sequence[TargetTrackingConfig],
    samples: Sequence[Sample],
    *,
    period_seconds: float,
    min_capacity: int,
    max_capacity: int,
    initial_capacity: int,
    resource_id: str,
    startup_periods: int = 0,
) -> SimulationResult:
    """Replay recorded periods through the policies, under the capacity they would set.

    The recorded load (``Invocations``) is what users sent whatever the capacity, so
    ``InvocationsPerInstance`` is recomputed over the simulated in-service capacity;
    other metrics (latency, CPU) are used as recorded, which is only an approximation
    once the simulated capacity differs from the recorded one. The replay starts with
    ``initial_capacity`` (clamped to min/max) in service, and a decision of one period
    is in effect from the next (scale-outs ``startup_periods`` periods later). Time is
    the samples' timestamps, so cooldowns play out as they would have.
    """
    if min_capacity > max_capacity:
        raise ValueError(f"min_capacity {min_capacity} is above max_capacity {max_capacity}")
    if startup_periods < 0:
        raise ValueError(f"startup_periods must not be negative, got {startup_periods}")
    times = [timestamp for timestamp, _ in samples]
    if times != sorted(times):
        raise ValueError("samples must be in time order")
    clock = _ReplayClock()
    state = ScalingTargetState(resource_id, policies, period_seconds=period_seconds, clock=clock)
    desired = _clamp(initial_capacity, min_capacity, max_capacity)
    history: list[int] = []
    points: list[SimulationPoint] = []
    decisions: list[TimedDecision] = []
    for timestamp, recorded in samples:
        clock.now = timestamp
        history.append(desired)
        in_service = _in_service(history, startup_periods)
        values = dict(recorded)
        invocations = _recorded_invocations(recorded)
        values["InvocationsPerInstance"] = (
            None if invocations is None else invocations / max(1, in_service)
        )
        decision = state.evaluate(
            values,
            measured_capacity=in_service,
            desired=desired,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )
        if decision is not None:
            state.applied(decision)
            desired = decision.desired
            decisions.append(TimedDecision(timestamp, decision))
        metrics = {
            config.metric: policy_value(
                config.metric, values.get(config.metric), period_seconds=period_seconds
            )
            for config in state.policies
        }
        points.append(
            SimulationPoint(
                time=timestamp,
                metrics=metrics,
                recorded_capacity=recorded.get("InstanceCount"),
                desired=desired,
                in_service=in_service,
            )
        )
    return SimulationResult(
        resource_id=resource_id,
        period_seconds=period_seconds,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        policies=state.policies,
        points=tuple(points),
        decisions=tuple(decisions),
    )
