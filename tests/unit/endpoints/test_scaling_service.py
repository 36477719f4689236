"""ScalingService over a real migrated SQLite database, with a fake set of endpoints.

The AWS operations take and return what boto3 sends and parses; the errors are the
KennelErrors the gateway renders as AWS's (code and status checked here, wire shape in
tests/integration/endpoints/test_autoscaling_api.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kennel._errors import KennelError, NotFoundError
from kennel._settings import Settings
from kennel.endpoints._autoscaling import TargetTrackingConfig
from kennel.endpoints._scaling import ScalingService, TargetInfo
from kennel.endpoints._scaling_spec import PolicySpec, ScalingSpec
from kennel.store import Database

ACCOUNT, REGION = "123456789012", "us-east-1"
RID = "endpoint/dogs/variant/AllTraffic"
KEY = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": RID,
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}
INVOCATIONS = {
    "PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
}


class FakeEndpoints:
    """``dogs`` serves AllTraffic and Canary; ``new`` is still Creating (config only)."""

    def describe(self, name: str) -> dict[str, Any]:
        if name == "dogs":
            return {
                "name": name,
                "config_name": "dogs-config",
                "production_variants": [
                    {"variant_name": "AllTraffic", "desired_instance_count": 1},
                    {"variant_name": "Canary", "desired_instance_count": 1},
                ],
            }
        if name == "new":
            return {"name": name, "config_name": "new-config", "production_variants": []}
        raise NotFoundError(f"Could not find endpoint {name}.")

    def describe_config(self, name: str) -> dict[str, Any]:
        return {"name": name, "variants": [{"variant_name": "Blue"}]}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scaling(tmp_path: Path, db: Database, clock: Clock) -> ScalingService:
    settings = Settings(home=tmp_path / "home")
    return ScalingService(
        db, FakeEndpoints(), settings, account_id=ACCOUNT, region=REGION, clock=clock
    )


def _register(scaling: ScalingService, **extra: Any) -> dict[str, Any]:
    return scaling.register_scalable_target({**KEY, "MinCapacity": 1, "MaxCapacity": 3, **extra})


def _policy(name: str = "p", **configuration: Any) -> dict[str, Any]:
    config = {"TargetValue": 70.0, **INVOCATIONS, **configuration}
    return {
        **KEY,
        "PolicyName": name,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": config,
    }


def _custom(metric: str, **overrides: Any) -> dict[str, Any]:
    spec = {
        "MetricName": metric,
        "Namespace": "AWS/SageMaker",
        "Dimensions": [
            {"Name": "EndpointName", "Value": "dogs"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        "Statistic": "Average",
        **overrides,
    }
    return {"CustomizedMetricSpecification": spec}


def _fails(code: str, call: Any, *args: Any) -> str:
    with pytest.raises(KennelError) as caught:
        call(*args)
    assert caught.value.aws_code == code, caught.value.message
    assert caught.value.status == 400
    return caught.value.message


# --- scalable targets -------------------------------------------------------------------------


def test_register_describe_update_and_deregister(scaling: ScalingService, clock: Clock) -> None:
    before = scaling.generation
    arn = _register(scaling)["ScalableTargetARN"]
    assert arn.startswith(f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/")
    assert arn == scaling.target_arn(RID)
    assert scaling.generation > before

    [target] = scaling.describe_scalable_targets({"ServiceNamespace": "sagemaker"})[
        "ScalableTargets"
    ]
    assert target["ResourceId"] == RID and (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert target["ScalableTargetARN"] == arn and target["CreationTime"] == clock.now
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in target["RoleARN"]
    assert target["SuspendedState"] == {
        "DynamicScalingInSuspended": False,
        "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False,
    }

    # An update names only what changes; the rest stays.
    scaling.register_scalable_target(
        {**KEY, "MaxCapacity": 5, "SuspendedState": {"DynamicScalingInSuspended": True}}
    )
    [info] = scaling.targets()
    assert info == TargetInfo(
        resource_id=RID,
        endpoint="dogs",
        variant="AllTraffic",
        min_capacity=1,
        max_capacity=5,
        dynamic_scaling_in_suspended=True,
        dynamic_scaling_out_suspended=False,
        scheduled_scaling_suspended=False,
        policies=(),
    )
    assert _register(scaling)["ScalableTargetARN"] == arn

    generation = scaling.generation
    assert scaling.deregister_scalable_target(dict(KEY)) == {}
    assert scaling.generation != generation
    assert scaling.targets() == []
    message = _fails("ObjectNotFoundException", scaling.deregister_scalable_target, dict(KEY))
    assert message.startswith("No scalable target found for service namespace: sagemaker")


def test_reads_do_not_change_the_generation(scaling: ScalingService) -> None:
    _register(scaling)
    generation = scaling.generation
    scaling.targets()
    scaling.describe_scalable_targets({"ServiceNamespace": "sagemaker"})
    scaling.describe_scaling_policies({"ServiceNamespace": "sagemaker"})
    assert scaling.generation == generation


def test_a_variant_of_an_endpoint_still_creating_is_checked_against_its_config(
    scaling: ScalingService,
) -> None:
    blue = {**KEY, "ResourceId": "endpoint/new/variant/Blue", "MinCapacity": 1, "MaxCapacity": 2}
    scaling.register_scalable_target(blue)
    message = _fails(
        "ValidationException",
        scaling.register_scalable_target,
        {**blue, "ResourceId": "endpoint/new/variant/Green"},
    )
    assert "Endpoint new has no variant Green; its variants are Blue" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ServiceNamespace": "ecs"}, "kennel scales SageMaker endpoint variants only"),
        (
            {"ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency"},
            "ScalableDimension must be 'sagemaker:variant:DesiredInstanceCount'",
        ),
        ({"ResourceId": "endpoint/dogs"}, "endpoint/<endpoint-name>/variant/<variant-name>"),
        ({"ResourceId": "endpoint/cats/variant/AllTraffic"}, "Could not find endpoint cats"),
        (
            {"ResourceId": "endpoint/dogs/variant/Blue"},
            "Endpoint dogs has no variant Blue; its variants are AllTraffic, Canary",
        ),
        ({"MinCapacity": -1}, "MinCapacity must be 0 or more"),
        ({"MaxCapacity": 21}, "above kennel's limit of 20 instances"),
        ({"MinCapacity": 4}, "Minimum capacity cannot be greater than maximum capacity"),
        ({"MinCapacity": "2"}, "Value '2' at 'minCapacity' failed to satisfy constraint"),
        ({"ResourceId": None}, "Value null at 'resourceId' failed to satisfy constraint"),
    ],
)
def test_register_validation(
    scaling: ScalingService, change: dict[str, Any], expected: str
) -> None:
    request = {**KEY, "MinCapacity": 1, "MaxCapacity": 3, **change}
    request = {k: v for k, v in request.items() if v is not None}
    assert expected in _fails("ValidationException", scaling.register_scalable_target, request)


def test_a_new_target_needs_both_bounds_and_min_zero_is_allowed(scaling: ScalingService) -> None:
    message = _fails(
        "ValidationException", scaling.register_scalable_target, {**KEY, "MaxCapacity": 3}
    )
    assert "MinCapacity and MaxCapacity are required" in message
    scaling.register_scalable_target({**KEY, "MinCapacity": 0, "MaxCapacity": 3})
    assert scaling.targets()[0].min_capacity == 0
    # An update is checked against the bounds it keeps.
    message = _fails(
        "ValidationException", scaling.register_scalable_target, {**KEY, "MinCapacity": 4}
    )
    assert "(MinCapacity 4, MaxCapacity 3)" in message


def test_describe_targets_filters_and_pages(scaling: ScalingService) -> None:
    for variant in ("AllTraffic", "Canary"):
        scaling.register_scalable_target(
            {
                **KEY,
                "ResourceId": f"endpoint/dogs/variant/{variant}",
                "MinCapacity": 1,
                "MaxCapacity": 2,
            }
        )
    listing = {"ServiceNamespace": "sagemaker", "MaxResults": 1}
    first = scaling.describe_scalable_targets(listing)
    assert [t["ResourceId"] for t in first["ScalableTargets"]] == [RID]
    second = scaling.describe_scalable_targets({**listing, "NextToken": first["NextToken"]})
    assert [t["ResourceId"] for t in second["ScalableTargets"]] == ["endpoint/dogs/variant/Canary"]
    assert "NextToken" not in second
    only = scaling.describe_scalable_targets(
        {"ServiceNamespace": "sagemaker", "ResourceIds": [RID]}
    )
    assert len(only["ScalableTargets"]) == 1
    _fails(
        "InvalidNextTokenException",
        scaling.describe_scalable_targets,
        {**listing, "NextToken": "not-a-token"},
    )
    _fails("ValidationException", scaling.describe_scalable_targets, {**listing, "MaxResults": 51})
    message = _fails(
        "ValidationException", scaling.describe_scalable_targets, {"ServiceNamespace": "dynamodb"}
    )
    assert "kennel scales SageMaker endpoint variants only" in message


# --- policies ---------------------------------------------------------------------------------


def test_put_describe_update_and_delete_a_policy(scaling: ScalingService) -> None:
    message = _fails("ObjectNotFoundException", scaling.put_scaling_policy, _policy())
    assert message == (
        f"No scalable target registered for service namespace: sagemaker, resource ID: {RID}, "
        "scalable dimension: sagemaker:variant:DesiredInstanceCount"
    )
    _register(scaling)
    put = scaling.put_scaling_policy(_policy("invocations"))
    arn = put["PolicyARN"]
    assert arn.startswith(f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:")
    assert arn.endswith(f":resource/sagemaker/{RID}:policyName/invocations")
    high, low = put["Alarms"]
    assert high["AlarmName"].startswith(f"TargetTracking-{RID}-AlarmHigh-")
    assert low["AlarmName"].startswith(f"TargetTracking-{RID}-AlarmLow-")
    assert high["AlarmARN"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{high['AlarmName']}"

    [policy] = scaling.describe_scaling_policies({"ServiceNamespace": "sagemaker"})[
        "ScalingPolicies"
    ]
    assert policy["PolicyARN"] == arn and policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 70.0,
        **INVOCATIONS,
    }
    assert scaling.targets()[0].policies == (
        TargetTrackingConfig(
            policy_name="invocations",
            target_value=70.0,
            metric="InvocationsPerInstance",
            scale_out_cooldown=300.0,
            scale_in_cooldown=300.0,
            disable_scale_in=False,
            # the controller's alarms are the ones PutScalingPolicy named
            alarm_names=(("AlarmHigh", high["AlarmName"]), ("AlarmLow", low["AlarmName"])),
        ),
    )

    # Putting it again replaces its configuration, keeps its ARN and its high alarm.
    again = scaling.put_scaling_policy(
        _policy("invocations", TargetValue=50, ScaleInCooldown=600, DisableScaleIn=True)
    )
    assert again["PolicyARN"] == arn and again["Alarms"] == [high]
    [config] = scaling.targets()[0].policies
    assert (config.target_value, config.scale_in_cooldown, config.disable_scale_in) == (
        50.0,
        600.0,
        True,
    )

    message = _fails(
        "ObjectNotFoundException",
        scaling.delete_scaling_policy,
        {**KEY, "PolicyName": "nope"},
    )
    assert "policy name: nope" in message
    assert scaling.delete_scaling_policy({**KEY, "PolicyName": "invocations"}) == {}
    assert scaling.targets()[0].policies == ()


def test_customized_metrics_the_variant_publishes(scaling: ScalingService) -> None:
    _register(scaling)
    latency = {"TargetValue": 200000.0, **_custom("ModelLatency")}
    scaling.put_scaling_policy(_with(latency) | {"PolicyName": "latency"})
    cpu = _custom("CPUUtilization", Namespace="/aws/sagemaker/Endpoints", Statistic="Maximum")
    scaling.put_scaling_policy(_with({"TargetValue": 60.0, **cpu}) | {"PolicyName": "cpu"})
    metrics = {p.policy_name: p.metric for p in scaling.targets()[0].policies}
    assert metrics == {"cpu": "CPUUtilization", "latency": "ModelLatency"}
    named = scaling.describe_scaling_policies(
        {"ServiceNamespace": "sagemaker", "ResourceId": RID, "PolicyNames": ["cpu"]}
    )
    assert [p["PolicyName"] for p in named["ScalingPolicies"]] == ["cpu"]


def _with(config: dict[str, Any]) -> dict[str, Any]:
    return {**_policy(), "TargetTrackingScalingPolicyConfiguration": config}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            _with({"TargetValue": 1.0, **_custom("GPUUtilization")}),
            "does not publish metric 'GPUUtilization', so a policy cannot track it. It "
            "publishes: Invocations, InvocationsPerInstance, ModelLatency",
        ),
        (
            _with(
                {
                    "TargetValue": 1.0,
                    **_custom(
                        "ModelLatency",
                        Dimensions=[{"Name": "EndpointName", "Value": "cats"}],
                    ),
                }
            ),
            "Dimensions must name this variant",
        ),
        (_with({"TargetValue": 1.0, **_custom("ModelLatency", Statistic="p99")}), "Statistic"),
        (_with({"TargetValue": 1.0, **_custom("ModelLatency", Namespace="AWS/EC2")}), "namespace"),
        (
            _with({"TargetValue": 1.0, **_custom("ModelLatency", Metrics=[{"Id": "m1"}])}),
            "Metric math",
        ),
        (_with({"TargetValue": 0.0, **INVOCATIONS}), "TargetValue must be a number above 0"),
        (_with({"TargetValue": 5.0, **INVOCATIONS, "ScaleOutCooldown": -1}), "ScaleOutCooldown"),
        (_with({"TargetValue": 5.0}), "Give exactly one of PredefinedMetricSpecification"),
        (
            _with({"TargetValue": 5.0, **INVOCATIONS, **_custom("ModelLatency")}),
            "Give exactly one of",
        ),
        (
            _with(
                {
                    "TargetValue": 5.0,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    },
                }
            ),
            "Unsupported PredefinedMetricType",
        ),
        ({**_policy(), "PolicyType": "StepScaling"}, "Unsupported policy type StepScaling"),
        (
            {k: v for k, v in _policy().items() if k != "TargetTrackingScalingPolicyConfiguration"}
            | {"PolicyType": None},
            "Unsupported policy type StepScaling (AWS's default)",
        ),
    ],
)
def test_policy_validation(
    scaling: ScalingService, request_: dict[str, Any], expected: str
) -> None:
    _register(scaling)
    request_ = {k: v for k, v in request_.items() if v is not None}
    assert expected in _fails("ValidationException", scaling.put_scaling_policy, request_)


def test_deregistering_removes_the_policies(scaling: ScalingService) -> None:
    _register(scaling)
    scaling.put_scaling_policy(_policy())
    scaling.deregister_scalable_target(dict(KEY))
    listing = scaling.describe_scaling_policies({"ServiceNamespace": "sagemaker"})
    assert listing["ScalingPolicies"] == []


# --- activities -------------------------------------------------------------------------------


def test_activities_are_recorded_listed_newest_first_and_paged(
    scaling: ScalingService, clock: Clock
) -> None:
    first = scaling.start_activity(
        RID, description="Setting desired instance count to 2.", cause="monitor alarm high"
    )
    clock.advance(60)
    scaling.finish_activity(first, "Successful")
    second = scaling.start_activity(
        "endpoint/dogs/variant/Canary",
        description="Setting desired instance count to 1.",
        cause="scale in",
        details="from 2",
    )
    clock.advance(1)
    scaling.finish_activity(second, "Failed", "instance did not start")

    listed = scaling.describe_scaling_activities(
        {"ServiceNamespace": "sagemaker", "MaxResults": 1, "IncludeNotScaledActivities": True}
    )
    [newest] = listed["ScalingActivities"]
    assert newest["ActivityId"] == second and newest["StatusCode"] == "Failed"
    assert newest["StatusMessage"] == "instance did not start" and newest["Details"] == "from 2"
    older = scaling.describe_scaling_activities(
        {"ServiceNamespace": "sagemaker", "NextToken": listed["NextToken"]}
    )
    [oldest] = older["ScalingActivities"]
    assert oldest["ActivityId"] == first and oldest["StatusCode"] == "Successful"
    assert oldest["EndTime"] - oldest["StartTime"] == timedelta(seconds=60)

    assert [a["ActivityId"] for a in scaling.activities("dogs")] == [second, first]
    assert [a["ActivityId"] for a in scaling.activities(RID)] == [first]
    assert scaling.activities("dogs", limit=1)[0]["ActivityId"] == second
    by_resource = scaling.describe_scaling_activities(
        {"ServiceNamespace": "sagemaker", "ResourceId": RID}
    )
    assert [a["ActivityId"] for a in by_resource["ScalingActivities"]] == [first]
    with pytest.raises(NotFoundError):
        scaling.finish_activity("no-such-activity", "Successful")


def test_activities_older_than_six_weeks_are_dropped(scaling: ScalingService, clock: Clock) -> None:
    old = scaling.start_activity(RID, description="old", cause="test")
    clock.advance(43 * 86400)
    new = scaling.start_activity(RID, description="new", cause="test")
    assert [a["ActivityId"] for a in scaling.activities(RID)] == [new]
    assert old != new


# --- scheduled actions and tags -----------------------------------------------------------------


def test_scheduled_actions(scaling: ScalingService, clock: Clock) -> None:
    action = {**KEY, "ScheduledActionName": "nightly", "Schedule": "rate(6 hours)"}
    action["ScalableTargetAction"] = {"MinCapacity": 2}
    _fails("ObjectNotFoundException", scaling.put_scheduled_action, action)
    _register(scaling)
    generation = scaling.generation
    assert scaling.put_scheduled_action(action) == {}
    assert scaling.generation != generation
    scaling.put_scheduled_action(
        {
            **KEY,
            "ScheduledActionName": "launch",
            "Schedule": "at(2026-12-01T09:00:00)",
            "Timezone": "Europe/Berlin",
            "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 5},
        }
    )
    listed = scaling.describe_scheduled_actions({"ServiceNamespace": "sagemaker"})
    assert [a["ScheduledActionName"] for a in listed["ScheduledActions"]] == ["launch", "nightly"]
    assert listed["ScheduledActions"][0]["ScalableTargetAction"] == {
        "MinCapacity": 3,
        "MaxCapacity": 5,
    }
    launch, nightly = scaling.scheduled_actions()
    assert launch.run_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert launch.next_run(clock.now) == launch.run_at
    assert launch.next_run(launch.run_at + timedelta(seconds=1)) is None
    assert nightly.every == timedelta(hours=6) and nightly.min_capacity == 2
    assert nightly.next_run(clock.now + timedelta(hours=1)) == clock.now + timedelta(hours=6)

    for schedule, expected in (
        ("cron(0 9 * * ? *)", "not cron expressions"),
        ("rate(0 minutes)", "N above 0"),
        ("at(2026-13-01T09:00:00)", "not a valid date"),
    ):
        message = _fails(
            "ValidationException", scaling.put_scheduled_action, {**action, "Schedule": schedule}
        )
        assert expected in message
    _fails(
        "ValidationException",
        scaling.put_scheduled_action,
        {**action, "Timezone": "Mars/Olympus"},
    )
    _fails(
        "ValidationException",
        scaling.put_scheduled_action,
        {**action, "ScalableTargetAction": {"MinCapacity": 5, "MaxCapacity": 2}},
    )
    delete = {**KEY, "ScheduledActionName": "nightly"}
    assert scaling.delete_scheduled_action(delete) == {}
    _fails("ObjectNotFoundException", scaling.delete_scheduled_action, delete)


def test_tags(scaling: ScalingService) -> None:
    arn = _register(scaling, Tags={"team": "dogs"})["ScalableTargetARN"]
    assert scaling.list_tags_for_resource({"ResourceARN": arn}) == {"Tags": {"team": "dogs"}}
    scaling.tag_resource({"ResourceARN": arn, "Tags": {"stage": "prod"}})
    scaling.untag_resource({"ResourceARN": arn, "TagKeys": ["team"]})
    assert scaling.list_tags_for_resource({"ResourceARN": arn}) == {"Tags": {"stage": "prod"}}
    _fails("ResourceNotFoundException", scaling.list_tags_for_resource, {"ResourceARN": arn + "0"})
    too_many = {f"k{i}": "v" for i in range(51)}
    _fails("TooManyTagsException", scaling.tag_resource, {"ResourceARN": arn, "Tags": too_many})


# --- the spec a person writes ------------------------------------------------------------------


def test_a_scaling_spec_becomes_requests_the_service_accepts(scaling: ScalingService) -> None:
    spec = ScalingSpec.model_validate(
        {
            "min_capacity": 1,
            "max_capacity": 3,
            "policies": [
                {"name": "invocations", "target_value": 70},
                {"name": "latency", "target_value": 200000, "metric": "model-latency"},
                {"name": "cpu", "target_value": 60, "metric": "cpu-utilization"},
            ],
        }
    )
    scaling.register_scalable_target(spec.register_request("dogs"))
    for policy in spec.policies:
        scaling.put_scaling_policy(policy.put_request("dogs", spec.variant))
    metrics = {p.policy_name: p.metric for p in scaling.targets()[0].policies}
    assert metrics == {
        "invocations": "InvocationsPerInstance",
        "latency": "ModelLatency",
        "cpu": "CPUUtilization",
    }


def test_scaling_spec_validation() -> None:
    with pytest.raises(ValueError, match="min_capacity"):
        ScalingSpec(min_capacity=4, max_capacity=3)
    with pytest.raises(ValueError, match="distinct"):
        ScalingSpec(
            min_capacity=1,
            max_capacity=3,
            policies=[PolicySpec(name="p", target_value=1), PolicySpec(name="p", target_value=2)],
        )
    with pytest.raises(ValueError):
        ScalingSpec.model_validate({"min_capacity": 1, "max_capacity": 3, "unknown": 1})
