"""Application Auto Scaling's request shapes, its errors, and the rules for endpoint variants.

Requests arrive as boto3's ``application-autoscaling`` client sends them (AWS JSON 1.1: the
operation's input structure with AWS's member names). Each operation's input is a pydantic
model here, validated strictly (a string where a number belongs is refused, as AWS does), and
a failure reads like AWS's: ``1 validation error detected: Value null at 'resourceId' failed
to satisfy constraint: Member must not be null``. What only makes sense for kennel (the
namespace, the dimension, which metrics a variant publishes) is checked by the helpers below,
with messages that say what to send instead.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from kennel._errors import KennelError, ValidationError
from kennel.endpoints._scaling_spec import (
    DEFAULT_COOLDOWN,
    DIMENSION,
    HOST_METRICS,
    MAX_COOLDOWN,
    MAX_INSTANCES,
    METRIC_NAMESPACES,
    NAMESPACE,
    PREDEFINED_METRICS,
    STATISTICS,
)
from kennel.endpoints._service import METRIC_NAMES

VARIANT_METRICS: tuple[str, ...] = tuple(dict.fromkeys((*METRIC_NAMES, *HOST_METRICS)))
"""Every metric a variant publishes, so every metric a policy may track."""
MAX_RESULTS = 50
MAX_TAGS = 50

_RESOURCE_ID = re.compile(r"endpoint/([^/]+)/variant/([^/]+)")

T = TypeVar("T", bound=BaseModel)


# --- errors ---------------------------------------------------------------------------------


class ObjectNotFoundError(KennelError):
    """A target, policy or scheduled action that is not there (AWS answers 400 for it)."""

    status = 400
    aws_code = "ObjectNotFoundException"


class InvalidNextTokenError(KennelError):
    status = 400
    aws_code = "InvalidNextTokenException"


class ConcurrentUpdateError(KennelError):
    """Two requests wrote the same target at once; the caller retries."""

    status = 400
    aws_code = "ConcurrentUpdateException"


class ScalingResourceNotFoundError(KennelError):
    """A tag operation on an ARN that names no scalable target."""

    status = 400
    aws_code = "ResourceNotFoundException"


class TooManyTagsError(KennelError):
    status = 400
    aws_code = "TooManyTagsException"


# --- request shapes ---------------------------------------------------------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class TargetKey(_Shape):
    """What names a scalable target in every target-level request."""

    service_namespace: str = Field(alias="ServiceNamespace")
    resource_id: str = Field(alias="ResourceId", min_length=1, max_length=1600)
    scalable_dimension: str = Field(alias="ScalableDimension")


class SuspendedState(_Shape):
    dynamic_scaling_in_suspended: bool | None = Field(None, alias="DynamicScalingInSuspended")
    dynamic_scaling_out_suspended: bool | None = Field(None, alias="DynamicScalingOutSuspended")
    scheduled_scaling_suspended: bool | None = Field(None, alias="ScheduledScalingSuspended")


class RegisterScalableTargetRequest(TargetKey):
    min_capacity: int | None = Field(None, alias="MinCapacity")
    max_capacity: int | None = Field(None, alias="MaxCapacity")
    role_arn: str | None = Field(None, alias="RoleARN", min_length=1, max_length=1600)
    suspended_state: SuspendedState | None = Field(None, alias="SuspendedState")
    tags: dict[str, str] | None = Field(None, alias="Tags")


class _Listing(_Shape):
    service_namespace: str = Field(alias="ServiceNamespace")
    scalable_dimension: str | None = Field(None, alias="ScalableDimension")
    max_results: int | None = Field(None, alias="MaxResults")
    next_token: str | None = Field(None, alias="NextToken")


class DescribeScalableTargetsRequest(_Listing):
    resource_ids: list[str] | None = Field(None, alias="ResourceIds", max_length=50)


class MetricDimension(_Shape):
    name: str = Field(alias="Name")
    value: str = Field(alias="Value")


class PredefinedMetricSpecification(_Shape):
    predefined_metric_type: str = Field(alias="PredefinedMetricType")
    resource_label: str | None = Field(None, alias="ResourceLabel")


class CustomizedMetricSpecification(_Shape):
    metric_name: str | None = Field(None, alias="MetricName")
    namespace: str | None = Field(None, alias="Namespace")
    dimensions: list[MetricDimension] | None = Field(None, alias="Dimensions")
    statistic: str | None = Field(None, alias="Statistic")
    unit: str | None = Field(None, alias="Unit")
    metrics: list[dict[str, Any]] | None = Field(None, alias="Metrics")


class TargetTrackingConfiguration(_Shape):
    target_value: float = Field(alias="TargetValue")
    predefined: PredefinedMetricSpecification | None = Field(
        None, alias="PredefinedMetricSpecification"
    )
    customized: CustomizedMetricSpecification | None = Field(
        None, alias="CustomizedMetricSpecification"
    )
    scale_out_cooldown: int | None = Field(None, alias="ScaleOutCooldown")
    scale_in_cooldown: int | None = Field(None, alias="ScaleInCooldown")
    disable_scale_in: bool | None = Field(None, alias="DisableScaleIn")


class PutScalingPolicyRequest(TargetKey):
    policy_name: str = Field(alias="PolicyName", min_length=1, max_length=256)
    policy_type: str | None = Field(None, alias="PolicyType")
    target_tracking: TargetTrackingConfiguration | None = Field(
        None, alias="TargetTrackingScalingPolicyConfiguration"
    )
    step_scaling: dict[str, Any] | None = Field(None, alias="StepScalingPolicyConfiguration")
    predictive: dict[str, Any] | None = Field(None, alias="PredictiveScalingPolicyConfiguration")


class DescribeScalingPoliciesRequest(_Listing):
    policy_names: list[str] | None = Field(None, alias="PolicyNames", max_length=50)
    resource_id: str | None = Field(None, alias="ResourceId", min_length=1, max_length=1600)


class DeleteScalingPolicyRequest(TargetKey):
    policy_name: str = Field(alias="PolicyName", min_length=1, max_length=1600)


class DescribeScalingActivitiesRequest(_Listing):
    resource_id: str | None = Field(None, alias="ResourceId", min_length=1, max_length=1600)
    include_not_scaled: bool | None = Field(None, alias="IncludeNotScaledActivities")


class ScalableTargetAction(_Shape):
    min_capacity: int | None = Field(None, alias="MinCapacity")
    max_capacity: int | None = Field(None, alias="MaxCapacity")


class PutScheduledActionRequest(TargetKey):
    name: str = Field(alias="ScheduledActionName", min_length=1, max_length=256)
    schedule: str | None = Field(None, alias="Schedule", min_length=1, max_length=1600)
    timezone: str | None = Field(None, alias="Timezone", min_length=1, max_length=1600)
    start_time: float | None = Field(None, alias="StartTime")
    """Seconds since the epoch: how the JSON protocol sends a timestamp."""
    end_time: float | None = Field(None, alias="EndTime")
    action: ScalableTargetAction | None = Field(None, alias="ScalableTargetAction")


class DescribeScheduledActionsRequest(_Listing):
    names: list[str] | None = Field(None, alias="ScheduledActionNames", max_length=50)
    resource_id: str | None = Field(None, alias="ResourceId", min_length=1, max_length=1600)


class DeleteScheduledActionRequest(TargetKey):
    name: str = Field(alias="ScheduledActionName", min_length=1, max_length=1600)


class ListTagsRequest(_Shape):
    resource_arn: str = Field(alias="ResourceARN", min_length=1, max_length=1011)


class TagResourceRequest(ListTagsRequest):
    tags: dict[str, str] = Field(alias="Tags")


class UntagResourceRequest(ListTagsRequest):
    tag_keys: list[str] = Field(alias="TagKeys")


def parse(shape: type[T], request: Any) -> T:
    """``request`` as ``shape``, or AWS's ValidationException listing every problem."""
    if not isinstance(request, dict):
        raise ValidationError("The request must be a JSON object with the operation's members.")
    try:
        return shape.model_validate(request)
    except pydantic.ValidationError as exc:
        problems = [_problem(e) for e in exc.errors(include_url=False)]
        plural = "s" if len(problems) > 1 else ""
        raise ValidationError(
            f"{len(problems)} validation error{plural} detected: " + "; ".join(problems)
        ) from None


def _problem(error: Any) -> str:
    path = ".".join(
        f"member.{p + 1}" if isinstance(p, int) else p[:1].lower() + p[1:] for p in error["loc"]
    )
    if error["type"] == "missing":
        return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"
    value = error.get("input")
    shown = repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__
    return f"Value {shown} at '{path}' failed to satisfy constraint: {error['msg']}"


# --- kennel's rules ---------------------------------------------------------------------------


def check_namespace(namespace: str) -> None:
    if namespace != NAMESPACE:
        raise ValidationError(
            f"Unsupported service namespace {namespace!r}: kennel scales SageMaker endpoint "
            f"variants only, so ServiceNamespace must be {NAMESPACE!r}."
        )


def check_dimension(dimension: str) -> None:
    if dimension != DIMENSION:
        raise ValidationError(
            f"Unsupported scalable dimension {dimension!r}: kennel scales the instance count "
            f"of endpoint variants, so ScalableDimension must be {DIMENSION!r}."
        )


def split_resource_id(resource_id: str) -> tuple[str, str]:
    """``endpoint/<name>/variant/<variant>`` as ``(name, variant)``; anything else is refused."""
    match = _RESOURCE_ID.fullmatch(resource_id)
    if match is None:
        raise ValidationError(
            f"Unsupported resource ID {resource_id!r}: a SageMaker endpoint variant's resource "
            "ID looks like endpoint/<endpoint-name>/variant/<variant-name>, "
            "e.g. endpoint/dogs/variant/AllTraffic."
        )
    return match.group(1), match.group(2)


def check_key(key: TargetKey) -> tuple[str, str]:
    """Namespace, dimension and resource ID of a target-level request; ``(endpoint, variant)``."""
    check_namespace(key.service_namespace)
    check_dimension(key.scalable_dimension)
    return split_resource_id(key.resource_id)


def check_capacity(min_capacity: int, max_capacity: int) -> None:
    """0 <= min <= max <= 20.

    MinCapacity 0 is a kennel extension: the variant scales to zero instances when idle
    (AWS's real-time endpoint variants need at least 1; only inference components and
    serverless concurrency go to 0 there).
    """
    if min_capacity < 0:
        raise ValidationError(f"MinCapacity must be 0 or more, not {min_capacity}.")
    if max_capacity > MAX_INSTANCES:
        raise ValidationError(
            f"MaxCapacity {max_capacity} is above kennel's limit of {MAX_INSTANCES} instances "
            "per variant; give 20 or fewer."
        )
    if min_capacity > max_capacity:
        raise ValidationError(
            f"Minimum capacity cannot be greater than maximum capacity (MinCapacity "
            f"{min_capacity}, MaxCapacity {max_capacity})."
        )


def check_max_results(value: int | None) -> int:
    if value is None:
        return MAX_RESULTS
    if not 1 <= value <= MAX_RESULTS:
        raise ValidationError(f"MaxResults must be between 1 and {MAX_RESULTS}, not {value}.")
    return value


def check_target_tracking(
    config: TargetTrackingConfiguration, endpoint: str, variant: str
) -> dict[str, Any]:
    """A valid configuration, as stored and answered (AWS's member names, nothing added).

    The metric must be one the variant publishes, with the dimensions of this very variant:
    a policy that watched another endpoint's metric would scale this one on the wrong load.
    """
    if not (math.isfinite(config.target_value) and config.target_value > 0):
        raise ValidationError(
            f"TargetValue must be a number above 0, not {config.target_value!r}: it is the "
            "metric value the policy keeps the variant at (e.g. 70 invocations per instance "
            "per minute)."
        )
    for field, value in (
        ("ScaleOutCooldown", config.scale_out_cooldown),
        ("ScaleInCooldown", config.scale_in_cooldown),
    ):
        if value is not None and not 0 <= value <= MAX_COOLDOWN:
            raise ValidationError(
                f"{field} must be between 0 and {MAX_COOLDOWN} seconds, not {value} "
                f"(it defaults to {DEFAULT_COOLDOWN})."
            )
    if (config.predefined is None) == (config.customized is None):
        raise ValidationError(
            "Give exactly one of PredefinedMetricSpecification and "
            "CustomizedMetricSpecification in TargetTrackingScalingPolicyConfiguration."
        )
    if config.predefined is not None:
        _check_predefined(config.predefined)
    else:
        assert config.customized is not None
        _check_customized(config.customized, endpoint, variant)
    return config.model_dump(by_alias=True, exclude_none=True)


def metric_of(configuration: dict[str, Any]) -> str:
    """The variant metric a stored configuration tracks."""
    predefined = configuration.get("PredefinedMetricSpecification")
    if predefined:
        return PREDEFINED_METRICS[predefined["PredefinedMetricType"]]
    return str(configuration["CustomizedMetricSpecification"]["MetricName"])


def _check_predefined(spec: PredefinedMetricSpecification) -> None:
    if spec.predefined_metric_type not in PREDEFINED_METRICS:
        raise ValidationError(
            f"Unsupported PredefinedMetricType {spec.predefined_metric_type!r}: kennel's "
            f"predefined metric for endpoint variants is {', '.join(PREDEFINED_METRICS)}; "
            "track another variant metric with a CustomizedMetricSpecification."
        )


def _check_customized(spec: CustomizedMetricSpecification, endpoint: str, variant: str) -> None:
    if spec.metrics is not None:
        raise ValidationError(
            "Metric math (CustomizedMetricSpecification.Metrics) is not supported by kennel: "
            "give MetricName, Namespace, Dimensions and Statistic instead."
        )
    missing = [
        name
        for name, value in (
            ("MetricName", spec.metric_name),
            ("Namespace", spec.namespace),
            ("Statistic", spec.statistic),
        )
        if not value
    ]
    if missing:
        raise ValidationError(
            f"CustomizedMetricSpecification needs {', '.join(missing)} "
            "(MetricName, Namespace, Dimensions and Statistic name the metric to track)."
        )
    if spec.metric_name not in VARIANT_METRICS:
        raise ValidationError(
            f"Endpoint variant endpoint/{endpoint}/variant/{variant} does not publish metric "
            f"{spec.metric_name!r}, so a policy cannot track it. It publishes: "
            f"{', '.join(VARIANT_METRICS)}."
        )
    if spec.namespace not in METRIC_NAMESPACES:
        raise ValidationError(
            f"Unsupported metric namespace {spec.namespace!r}: endpoint variant metrics are in "
            f"{' or '.join(METRIC_NAMESPACES)}."
        )
    if spec.statistic not in STATISTICS:
        raise ValidationError(
            f"Unsupported Statistic {spec.statistic!r}: give one of {', '.join(STATISTICS)}."
        )
    wanted = {"EndpointName": endpoint, "VariantName": variant}
    given = {d.name: d.value for d in spec.dimensions or []}
    if given != wanted or len(spec.dimensions or []) != len(wanted):
        raise ValidationError(
            f"CustomizedMetricSpecification.Dimensions must name this variant: "
            f'[{{"Name": "EndpointName", "Value": "{endpoint}"}}, '
            f'{{"Name": "VariantName", "Value": "{variant}"}}], not {given or "none"}.'
        )
