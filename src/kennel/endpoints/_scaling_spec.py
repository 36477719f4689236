"""How a person writes an endpoint's scaling: ``kennel endpoints scaling apply --file``.

A :class:`ScalingSpec` is the YAML/JSON a user keeps beside the endpoint (and the shape a
stack file's ``scaling:`` block embeds): the variant's capacity bounds and its
target-tracking policies in plain words. It turns into the Application Auto Scaling
requests that bring the variant to it (:meth:`ScalingSpec.register_request`,
:meth:`PolicySpec.put_request`), so the CLI, a stack and a boto3 user all go through the
same API and the same validation on the server.

This module is light on purpose (pydantic only): the CLI imports it. The constants of
kennel's Application Auto Scaling live here for the same reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from kennel._spec import Spec
from kennel.endpoints._spec import DEFAULT_VARIANT

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
MAX_INSTANCES = 20
"""The most instances a variant may have (as an endpoint config's instance count)."""
DEFAULT_COOLDOWN = 300
"""Seconds; AWS's default for both ScaleOutCooldown and ScaleInCooldown."""
MAX_COOLDOWN = 31_536_000
PREDEFINED_METRICS = {"SageMakerVariantInvocationsPerInstance": "InvocationsPerInstance"}
"""Predefined metric types kennel tracks, and the variant metric each one reads."""
HOST_METRICS = ("CPUUtilization", "MemoryUtilization")
"""Instance metrics: in SageMaker's ``/aws/sagemaker/Endpoints`` namespace on AWS."""
INVOCATION_NAMESPACE = "AWS/SageMaker"
HOST_NAMESPACE = "/aws/sagemaker/Endpoints"
METRIC_NAMESPACES = (INVOCATION_NAMESPACE, HOST_NAMESPACE)
STATISTICS = ("Average", "Minimum", "Maximum", "SampleCount", "Sum")

METRIC_SHORTHANDS = {
    "invocations-per-instance": "SageMakerVariantInvocationsPerInstance",
    "model-latency": "ModelLatency",
    "cpu-utilization": "CPUUtilization",
    "memory-utilization": "MemoryUtilization",
}
"""What ``--metric`` and a spec's ``metric`` may say besides a variant metric's own name."""

Statistic = Literal["Average", "Minimum", "Maximum", "SampleCount", "Sum"]


def resource_id(endpoint: str, variant: str = DEFAULT_VARIANT) -> str:
    """Application Auto Scaling's ResourceId of an endpoint variant."""
    return f"endpoint/{endpoint}/variant/{variant}"


def target_key(endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, str]:
    """The members that name a variant's scalable target in every request."""
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint, variant),
        "ScalableDimension": DIMENSION,
    }


def metric_specification(
    metric: str, endpoint: str, variant: str, statistic: str = "Average"
) -> dict[str, Any]:
    """The metric part of a TargetTrackingScalingPolicyConfiguration for ``metric``.

    ``metric`` is a shorthand (:data:`METRIC_SHORTHANDS`), a predefined metric type, or the
    name of a metric the variant publishes (``ModelLatency``, ``Invocation5XXErrors``, ...);
    whether the variant publishes it is the server's to say.
    """
    name = METRIC_SHORTHANDS.get(metric, metric)
    if name in PREDEFINED_METRICS:
        return {"PredefinedMetricSpecification": {"PredefinedMetricType": name}}
    return {
        "CustomizedMetricSpecification": {
            "MetricName": name,
            "Namespace": HOST_NAMESPACE if name in HOST_METRICS else INVOCATION_NAMESPACE,
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": variant},
            ],
            "Statistic": statistic,
        }
    }


class PolicySpec(Spec):
    """One target-tracking policy: keep ``metric`` near ``target_value``."""

    name: str = Field(min_length=1, max_length=256)
    target_value: float = Field(gt=0)
    metric: str = Field(default="invocations-per-instance", min_length=1)
    statistic: Statistic = "Average"
    """How a period's samples combine (for a customized metric; the predefined one sums)."""
    scale_out_cooldown: int = Field(default=DEFAULT_COOLDOWN, ge=0, le=MAX_COOLDOWN)
    scale_in_cooldown: int = Field(default=DEFAULT_COOLDOWN, ge=0, le=MAX_COOLDOWN)
    disable_scale_in: bool = False

    def put_request(self, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
        """The PutScalingPolicy request for this policy on ``endpoint``'s ``variant``."""
        configuration: dict[str, Any] = {
            "TargetValue": self.target_value,
            **metric_specification(self.metric, endpoint, variant, self.statistic),
            "ScaleOutCooldown": self.scale_out_cooldown,
            "ScaleInCooldown": self.scale_in_cooldown,
            "DisableScaleIn": self.disable_scale_in,
        }
        return {
            "PolicyName": self.name,
            **target_key(endpoint, variant),
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": configuration,
        }


class ScalingSpec(Spec):
    """A variant's whole scaling: capacity bounds and the policies that move within them.

    ``min_capacity`` may be 0 (kennel scales an idle variant to zero instances; on AWS a
    real-time variant needs at least 1).
    """

    variant: str = Field(default=DEFAULT_VARIANT, min_length=1)
    min_capacity: int = Field(ge=0, le=MAX_INSTANCES)
    max_capacity: int = Field(ge=1, le=MAX_INSTANCES)
    policies: list[PolicySpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ScalingSpec:
        if self.min_capacity > self.max_capacity:
            raise ValueError(
                f"min_capacity ({self.min_capacity}) is above max_capacity ({self.max_capacity})"
            )
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policy names must be distinct, got {names}")
        return self

    def resource_id(self, endpoint: str) -> str:
        return resource_id(endpoint, self.variant)

    def register_request(self, endpoint: str) -> dict[str, Any]:
        """The RegisterScalableTarget request for this spec's bounds."""
        return {
            **target_key(endpoint, self.variant),
            "MinCapacity": self.min_capacity,
            "MaxCapacity": self.max_capacity,
        }
