"""kennel's own view of an endpoint's autoscaling: what the controller sees now, and what a
scaling spec would have done.

Application Auto Scaling's API (``_scaling``) answers in AWS's shapes, and AWS keeps the
alarms in CloudWatch and offers no dry run, so neither question has a place there. These
two reads answer them for ``/api/v1/endpoints/{name}/scaling``:

* :func:`scaling_status`: per registered variant, its bounds, its instances, its
  policies with their alarms as the autoscaler holds them this period, and its last
  activities, so one request answers "why is it (not) scaling?".
* :func:`replay`: the variant's recorded metric periods replayed through a
  :class:`ScalingSpec`'s policies (``_autoscaling.simulate``), to tune a policy against
  real traffic before applying it. The policies pass the same checks PutScalingPolicy
  makes, so a spec that simulates is a spec that applies.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import Field

from kennel._errors import NotFoundError, ValidationError
from kennel._spec import Spec
from kennel.endpoints._autoscaler import Autoscaler
from kennel.endpoints._autoscaling import (
    AlarmStatus,
    SimulationResult,
    TargetTrackingConfig,
    simulate,
)
from kennel.endpoints._scaling import ScalingService, TargetInfo, tracking_policy
from kennel.endpoints._scaling_spec import ScalingSpec
from kennel.endpoints._service import EndpointService

RECENT_ACTIVITIES = 5
"""Activities shown per variant: enough to see the last moves; the full list has its own API."""
MAX_REPLAY_SECONDS = 15 * 86400
"""The furthest back a replay reads: CloudWatch keeps one-minute data points 15 days."""


class SimulateRequest(Spec):
    """The body of ``POST /api/v1/endpoints/{name}/scaling/simulate``."""

    spec: ScalingSpec
    """The scaling to try, as ``kennel endpoints scaling apply --file`` takes it."""
    since_seconds: float = Field(default=3600.0, gt=0, le=MAX_REPLAY_SECONDS)
    """Replay the periods recorded in this many seconds up to now."""
    startup_periods: int = Field(default=0, ge=0, le=1000)
    """Periods a new instance takes before it serves (0: at once, the next period)."""


# --- what the autoscaler sees now ------------------------------------------------------------


def scaling_status(
    name: str,
    *,
    endpoints: EndpointService,
    scaling: ScalingService,
    autoscaler: Autoscaler,
) -> dict[str, Any]:
    """Each registered variant of endpoint ``name`` as the autoscaler acts on it now.

    An unknown endpoint is a NotFoundError; one without registered variants answers an
    empty ``variants`` list (a target is registered through Application Auto Scaling).
    """
    info = endpoints.describe(name)
    serving = {v["variant_name"]: v for v in info.get("production_variants") or []}
    variants = [
        _variant_status(
            target,
            serving.get(target.variant),
            autoscaler.alarms(target.resource_id),
            scaling.activities(target.resource_id, RECENT_ACTIVITIES),
        )
        for target in scaling.targets()
        if target.endpoint == name
    ]
    return {"endpoint": name, "period_seconds": autoscaler.period, "variants": variants}


def _variant_status(
    target: TargetInfo,
    serving: dict[str, Any] | None,
    alarms: list[AlarmStatus],
    activities: list[dict[str, Any]],
) -> dict[str, Any]:
    """One variant; its instance counts are None while it is not serving."""
    return {
        "variant": target.variant,
        "resource_id": target.resource_id,
        "min_capacity": target.min_capacity,
        "max_capacity": target.max_capacity,
        "desired_instances": serving["desired_instance_count"] if serving else None,
        "in_service_instances": serving["current_instance_count"] if serving else None,
        "suspended_state": {
            "DynamicScalingInSuspended": target.dynamic_scaling_in_suspended,
            "DynamicScalingOutSuspended": target.dynamic_scaling_out_suspended,
            "ScheduledScalingSuspended": target.scheduled_scaling_suspended,
        },
        "policies": [
            {**asdict(policy), "alarms": _policy_alarms(policy, alarms)}
            for policy in target.policies
        ],
        "activities": activities,
    }


def _policy_alarms(policy: TargetTrackingConfig, alarms: list[AlarmStatus]) -> list[AlarmStatus]:
    """A policy's alarms; none yet when the autoscaler has not read the policy (it does at
    the next period). A policy that may not scale in has no low alarm, as on AWS: the
    controller counts one, but it decides nothing and would only confuse."""
    return [
        alarm
        for alarm in alarms
        if alarm["policy_name"] == policy.policy_name
        and not (policy.disable_scale_in and alarm["alarm"] == "AlarmLow")
    ]


# --- what a spec would have done ----------------------------------------------------------------


def check_spec(
    name: str, spec: ScalingSpec, *, endpoints: EndpointService, scaling: ScalingService
) -> list[TargetTrackingConfig]:
    """The checks RegisterScalableTarget and PutScalingPolicy would make of ``spec``, with
    nothing written: ``apply`` runs them first, so a spec is applied whole or not at all."""
    endpoints.describe(name)  # an unknown endpoint is a 404, not a bad spec
    scaling.check_variant(name, spec.variant)
    return [tracking_policy(policy.put_request(name, spec.variant)) for policy in spec.policies]


def replay(
    name: str, request: SimulateRequest, *, endpoints: EndpointService, scaling: ScalingService
) -> SimulationResult:
    """Replay the periods of ``request.spec.variant`` recorded in the last
    ``request.since_seconds`` through the spec's policies.

    The replay starts from the InstanceCount recorded in its first period (clamped to the
    spec's bounds), so its first decisions are the ones the recorded load would have caused.
    """
    spec = request.spec
    policies = check_spec(name, spec, endpoints=endpoints, scaling=scaling)
    if not policies:
        raise ValidationError(
            "The spec has no policies, so nothing would scale: add at least one under "
            "policies (name and target_value)."
        )
    samples = endpoints.variant_samples(name, spec.variant, request.since_seconds)
    period = endpoints.settings.endpoint_metrics_period_seconds
    if not samples:
        raise NotFoundError(
            f"Variant {spec.variant} of endpoint {name} has no recorded metrics in the last "
            f"{request.since_seconds:g} s, so there is nothing to replay yet.",
            hint=f"Metrics are recorded every {period:g} s while the endpoint is InService; "
            "send it requests for a few periods, or replay a longer time.",
        )
    recorded = samples[0][1].get("InstanceCount")
    return simulate(
        policies,
        samples,
        period_seconds=period,
        min_capacity=spec.min_capacity,
        max_capacity=spec.max_capacity,
        initial_capacity=spec.min_capacity if recorded is None else round(recorded),
        resource_id=spec.resource_id(name),
        startup_periods=request.startup_periods,
    )
