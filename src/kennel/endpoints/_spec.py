"""What model, endpoint-config, endpoint and update requests may say, validated on entry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from kennel._spec import Spec
from kennel.endpoints._capture import DataCaptureSpec

DEFAULT_VARIANT = "AllTraffic"
"""SageMaker's name for the only variant of a simple endpoint."""


class ModelSpec(Spec):
    """The body of ``POST /api/v1/models``: a model.tar.gz by URI, or a training job's."""

    name: str
    artifact_uri: str | None = None
    training_job: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.artifact_uri is None) == (self.training_job is None):
            raise ValueError("give exactly one of artifact_uri and training_job")
        return self


class VariantSpec(Spec):
    """One production variant (SageMaker's ProductionVariant)."""

    variant_name: str = DEFAULT_VARIANT
    model_name: str
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = Field(default=1, ge=1, le=20)
    initial_weight: float = Field(default=1.0, ge=0.0)


class EndpointConfigSpec(Spec):
    """The body of ``POST /api/v1/endpoint-configs``."""

    name: str
    variants: list[VariantSpec] = Field(min_length=1, max_length=10)
    data_capture: DataCaptureSpec | None = None
    """Sample requests and responses into the artifact store (None: no capture)."""

    @field_validator("variants")
    @classmethod
    def _distinct(cls, value: list[VariantSpec]) -> list[VariantSpec]:
        names = [v.variant_name for v in value]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be distinct, got {names}")
        if sum(v.initial_weight for v in value) <= 0:
            raise ValueError("at least one variant needs a weight above 0")
        return value


class EndpointSpec(Spec):
    """The body of ``POST /api/v1/endpoints``."""

    name: str
    config_name: str


class AlarmSpec(Spec):
    """Alarms on the new fleet during a rollout (CloudWatch alarms in SageMaker's guardrails).

    An alarm fires once at least ``min_invocations`` reached the new fleet and its 5XX
    rate (model errors included) is above ``max_error_rate``, or its p90 latency is above
    ``max_latency_ms``.
    """

    max_error_rate: float | None = Field(default=0.05, ge=0.0, le=1.0)
    max_latency_ms: float | None = Field(default=None, gt=0)
    min_invocations: int = Field(default=5, ge=1)


class DeploymentSpec(Spec):
    """How an update moves traffic (SageMaker's BlueGreenUpdatePolicy, simplified).

    ``all-at-once`` shifts everything once the new fleet is healthy, then bakes for
    ``wait_seconds``; ``canary`` sends ``canary_percent`` first, for ``wait_seconds``, then
    the rest; ``linear`` moves ``linear_step_percent`` more every ``wait_seconds``. Alarms
    are watched throughout; one firing moves all traffic back to the old fleet.
    """

    type: Literal["all-at-once", "canary", "linear"] = "all-at-once"
    canary_percent: float = Field(default=10.0, gt=0.0, lt=100.0)
    linear_step_percent: float = Field(default=25.0, gt=0.0, lt=100.0)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    alarms: AlarmSpec | None = None

    def steps(self) -> list[float]:
        """The new fleet's traffic share at each step, ending at 1.0."""
        if self.type == "canary":
            return [self.canary_percent / 100.0, 1.0]
        if self.type == "linear":
            shares: list[float] = []
            share = 0.0
            while share < 1.0 - 1e-9:
                share = min(1.0, share + self.linear_step_percent / 100.0)
                shares.append(share)
            return shares
        return [1.0]


class UpdateEndpointSpec(Spec):
    """The body of ``POST /api/v1/endpoints/{name}/update``."""

    config_name: str
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
