"""Application Auto Scaling through plain boto3 against the session's server, on a real endpoint.

The targets registered here keep the echo endpoint at one instance (MinCapacity 1) and are
deregistered before the endpoint goes, so a scaling controller running in the server has
nothing to do for them.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import aws_error
from tests.integration.endpoints.conftest import Models

from kennel._settings import Settings
from kennel.endpoints._scaling import ScalingService
from kennel.store import Database

pytestmark = pytest.mark.timeout(300)

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS = {
    "PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
}


def _client(session: boto3.Session, server: RunningServer) -> Any:
    return session.client(
        "application-autoscaling",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=NO_RETRIES,
    )


@pytest.fixture(scope="module")
def endpoint(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One InService echo endpoint (variant AllTraffic) for the module."""
    with server.client() as api:
        made = Models(api, tmp_path_factory.mktemp("autoscaling-models"))
        yield made.simple("v1")
        made.cleanup()


@pytest.fixture
def scaling(server: RunningServer) -> Any:
    return _client(server.session, server)


@pytest.fixture
def target(scaling: Any, endpoint: str) -> Iterator[dict[str, str]]:
    """The endpoint's AllTraffic variant, registered 1..3; deregistered afterwards."""
    key = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint}/variant/AllTraffic",
        "ScalableDimension": DIMENSION,
    }
    scaling.register_scalable_target(**key, MinCapacity=1, MaxCapacity=3)
    yield key
    # A test may have deregistered it itself.
    with contextlib.suppress(scaling.exceptions.ObjectNotFoundException):
        scaling.deregister_scalable_target(**key)


def test_register_describe_update_and_deregister(scaling: Any, endpoint: str) -> None:
    resource_id = f"endpoint/{endpoint}/variant/AllTraffic"
    key = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id,
        "ScalableDimension": DIMENSION,
    }
    arn = scaling.register_scalable_target(**key, MinCapacity=1, MaxCapacity=3)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:")
    assert ":scalable-target/" in arn

    [described] = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id]
    )["ScalableTargets"]
    assert (described["MinCapacity"], described["MaxCapacity"]) == (1, 3)
    assert described["ScalableTargetARN"] == arn
    assert isinstance(described["CreationTime"], datetime)
    assert described["SuspendedState"]["DynamicScalingInSuspended"] is False

    scaling.register_scalable_target(
        **key, MaxCapacity=5, SuspendedState={"DynamicScalingOutSuspended": True}
    )
    [updated] = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id]
    )["ScalableTargets"]
    assert (updated["MinCapacity"], updated["MaxCapacity"]) == (1, 5)
    assert updated["SuspendedState"]["DynamicScalingOutSuspended"] is True

    scaling.deregister_scalable_target(**key)
    listed = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id]
    )
    assert listed["ScalableTargets"] == []
    with pytest.raises(scaling.exceptions.ObjectNotFoundException) as caught:
        scaling.deregister_scalable_target(**key)
    assert aws_error(caught)[0] == 400


def test_put_describe_and_delete_policies(scaling: Any, target: dict[str, str]) -> None:
    put = scaling.put_scaling_policy(
        PolicyName="invocations",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0,
            **INVOCATIONS,
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 300,
        },
        **target,
    )
    assert put["PolicyARN"].endswith(
        f":resource/sagemaker/{target['ResourceId']}:policyName/invocations"
    )
    high, low = (a["AlarmName"] for a in put["Alarms"])
    assert high.startswith(f"TargetTracking-{target['ResourceId']}-AlarmHigh-")
    assert low.startswith(f"TargetTracking-{target['ResourceId']}-AlarmLow-")

    endpoint = target["ResourceId"].split("/")[1]
    latency = {
        "MetricName": "ModelLatency",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        "Statistic": "Average",
    }
    scaling.put_scaling_policy(
        PolicyName="latency",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 250000.0,
            "CustomizedMetricSpecification": latency,
            "DisableScaleIn": True,
        },
        **target,
    )

    pages = scaling.get_paginator("describe_scaling_policies").paginate(
        ServiceNamespace="sagemaker",
        ResourceId=target["ResourceId"],
        PaginationConfig={"PageSize": 1},
    )
    policies = [p for page in pages for p in page["ScalingPolicies"]]
    assert [p["PolicyName"] for p in policies] == ["invocations", "latency"]
    invocations, latency_policy = policies
    assert invocations["PolicyARN"] == put["PolicyARN"]
    assert invocations["TargetTrackingScalingPolicyConfiguration"]["ScaleOutCooldown"] == 60
    assert isinstance(invocations["CreationTime"], datetime)
    assert len(latency_policy["Alarms"]) == 1  # scale-in disabled: no low alarm
    assert (
        latency_policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
        == latency
    )

    scaling.delete_scaling_policy(PolicyName="latency", **target)
    with pytest.raises(scaling.exceptions.ObjectNotFoundException):
        scaling.delete_scaling_policy(PolicyName="latency", **target)
    remaining = scaling.describe_scaling_policies(
        ServiceNamespace="sagemaker",
        ResourceId=target["ResourceId"],  # other tests' endpoints have "invocations" too
        PolicyNames=["invocations", "latency"],
    )["ScalingPolicies"]
    assert [p["PolicyName"] for p in remaining] == ["invocations"]

    # Deregistering the target takes its policies with it.
    scaling.deregister_scalable_target(**target)
    gone = scaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
    )
    assert gone["ScalingPolicies"] == []


def test_a_metric_the_variant_does_not_publish_is_refused(
    scaling: Any, target: dict[str, str]
) -> None:
    endpoint = target["ResourceId"].split("/")[1]
    with pytest.raises(scaling.exceptions.ValidationException) as caught:
        scaling.put_scaling_policy(
            PolicyName="gpu",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 50.0,
                "CustomizedMetricSpecification": {
                    "MetricName": "GPUUtilization",
                    "Namespace": "/aws/sagemaker/Endpoints",
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": "AllTraffic"},
                    ],
                    "Statistic": "Average",
                },
            },
            **target,
        )
    status, code, message = aws_error(caught)
    assert (status, code) == (400, "ValidationException")
    assert "does not publish metric 'GPUUtilization'" in message
    assert "InvocationsPerInstance" in message and "CPUUtilization" in message


def test_unknown_resources_and_bad_requests_are_aws_errors(scaling: Any, endpoint: str) -> None:
    missing = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/no-such-endpoint/variant/AllTraffic",
        "ScalableDimension": DIMENSION,
    }
    with pytest.raises(scaling.exceptions.ValidationException) as caught:
        scaling.register_scalable_target(**missing, MinCapacity=1, MaxCapacity=2)
    assert "Could not find endpoint no-such-endpoint" in aws_error(caught)[2]

    with pytest.raises(scaling.exceptions.ValidationException) as caught:
        scaling.register_scalable_target(
            **{**missing, "ResourceId": f"endpoint/{endpoint}/variant/Nope"},
            MinCapacity=1,
            MaxCapacity=2,
        )
    assert "has no variant Nope; its variants are AllTraffic" in aws_error(caught)[2]

    with pytest.raises(scaling.exceptions.ValidationException) as caught:
        scaling.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId="service/default/web",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=1,
            MaxCapacity=2,
        )
    assert "kennel scales SageMaker endpoint variants only" in aws_error(caught)[2]

    with pytest.raises(scaling.exceptions.ObjectNotFoundException) as caught:
        scaling.put_scaling_policy(
            PolicyName="p",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={"TargetValue": 5.0, **INVOCATIONS},
            **{**missing, "ResourceId": f"endpoint/{endpoint}/variant/AllTraffic"},
        )
    assert aws_error(caught)[2].startswith(
        "No scalable target registered for service namespace: sagemaker, resource ID: "
        f"endpoint/{endpoint}/variant/AllTraffic, scalable dimension: {DIMENSION}"
    )

    with pytest.raises(scaling.exceptions.InvalidNextTokenException):
        scaling.describe_scalable_targets(ServiceNamespace="sagemaker", NextToken="garbage")


def test_scheduled_actions_and_tags(scaling: Any, target: dict[str, str]) -> None:
    start = datetime(2099, 1, 1, tzinfo=UTC)  # never due while the tests run
    scaling.put_scheduled_action(
        ScheduledActionName="weekday-mornings",
        Schedule="rate(1 day)",
        StartTime=start,
        ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 3},
        **target,
    )
    [action] = scaling.describe_scheduled_actions(
        ServiceNamespace="sagemaker", ResourceId=target["ResourceId"]
    )["ScheduledActions"]
    assert action["Schedule"] == "rate(1 day)" and action["StartTime"] == start
    assert action["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 3}
    assert ":scheduledActionName/weekday-mornings" in action["ScheduledActionARN"]
    with pytest.raises(scaling.exceptions.ValidationException) as caught:
        scaling.put_scheduled_action(
            ScheduledActionName="cron", Schedule="cron(0 9 * * ? *)", **target
        )
    assert "not cron expressions" in aws_error(caught)[2]
    scaling.delete_scheduled_action(ScheduledActionName="weekday-mornings", **target)
    with pytest.raises(scaling.exceptions.ObjectNotFoundException):
        scaling.delete_scheduled_action(ScheduledActionName="weekday-mornings", **target)

    [described] = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[target["ResourceId"]]
    )["ScalableTargets"]
    arn = described["ScalableTargetARN"]
    scaling.tag_resource(ResourceARN=arn, Tags={"team": "dogs"})
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "dogs"}
    scaling.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {}


def test_scaling_activities(server: RunningServer, scaling: Any, target: dict[str, str]) -> None:
    listed = scaling.describe_scaling_activities(
        ServiceNamespace="sagemaker",
        ResourceId=target["ResourceId"],
        IncludeNotScaledActivities=True,
    )
    assert listed["ScalingActivities"] == []

    # What the controller does, through the service's public methods on the server's DB.
    recorder = _recorder(server)
    first = recorder.start_activity(
        target["ResourceId"],
        description="Setting desired instance count to 2.",
        cause="monitor alarm TargetTracking-test-AlarmHigh in state ALARM triggered policy p",
    )
    recorder.finish_activity(first, "Successful")
    second = recorder.start_activity(
        target["ResourceId"], description="Setting desired instance count to 1.", cause="test"
    )
    recorder.finish_activity(second, "Failed", "instance did not start")

    pages = scaling.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace="sagemaker",
        ResourceId=target["ResourceId"],
        PaginationConfig={"PageSize": 1},
    )
    activities = [a for page in pages for a in page["ScalingActivities"]]
    assert [a["ActivityId"] for a in activities] == [second, first]
    assert activities[0]["StatusCode"] == "Failed"
    assert activities[0]["StatusMessage"] == "instance did not start"
    assert activities[1]["StatusCode"] == "Successful"
    assert isinstance(activities[1]["StartTime"], datetime)
    assert activities[1]["EndTime"] >= activities[1]["StartTime"]


def _recorder(server: RunningServer) -> ScalingService:
    return ScalingService(
        Database(f"sqlite:///{server.home / 'kennel.db'}"),
        _NoEndpoints(),
        Settings(home=server.home),
        account_id="000000000000",
        region="us-east-1",
    )


class _NoEndpoints:
    def describe(self, name: str) -> dict[str, Any]:
        raise AssertionError("recording activities does not look at endpoints")

    def describe_config(self, name: str) -> dict[str, Any]:
        raise AssertionError("recording activities does not look at endpoints")


def test_a_user_without_permissions_is_denied(
    server: RunningServer, scaling: Any, target: dict[str, str]
) -> None:
    iam = server.session.client(
        "iam", endpoint_url=server.url, region_name="us-east-1", config=NO_RETRIES
    )
    name = f"no-scaling-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="us-east-1",
    )
    denied = _client(user, server)
    try:
        with pytest.raises(ClientError) as caught:
            denied.describe_scalable_targets(ServiceNamespace="sagemaker")
        status, code, message = aws_error(caught)
        assert (status, code) == (403, "AccessDeniedException")
        assert "application-autoscaling:DescribeScalableTargets" in message

        read_only = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "application-autoscaling:Describe*",
                    "Resource": "*",
                }
            ],
        }
        iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(read_only))
        seen = denied.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert target["ResourceId"] in [t["ResourceId"] for t in seen]
        with pytest.raises(ClientError) as caught:
            denied.deregister_scalable_target(**target)
        status, code, message = aws_error(caught)
        assert (status, code) == (403, "AccessDeniedException")
        assert "application-autoscaling:DeregisterScalableTarget" in message
        assert ":scalable-target/" in message
    finally:
        iam.delete_user_policy(UserName=name, PolicyName="read")
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=name)


def test_protocol_errors_are_json(server: RunningServer) -> None:
    bogus = boto3.Session(
        aws_access_key_id="AKIANOTAREALKEY00000",
        aws_secret_access_key="x" * 40,
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as caught:
        _client(bogus, server).describe_scalable_targets(ServiceNamespace="sagemaker")
    assert aws_error(caught)[:2] == (403, "UnrecognizedClientException")

    answer = _signed_call(server, "AnyScaleFrontendService.GetPredictiveScalingForecast", b"{}")
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert answer.headers["content-type"] == "application/x-amz-json-1.1"
    assert answer.json()["__type"] == "UnknownOperationException"

    answer = _signed_call(server, "AnyScaleFrontendService.DescribeScalableTargets", b"{nope")
    assert answer.status_code == 400
    assert answer.json()["__type"] == "SerializationException"

    answer = _signed_call(
        server, "AnyScaleFrontendService.DescribeScalableTargets", b'{"ServiceNamespace": 7}'
    )
    assert answer.status_code == 400
    assert "at 'serviceNamespace' failed to satisfy constraint" in answer.json()["message"]


def _signed_call(server: RunningServer, target: str, body: bytes) -> httpx.Response:
    key, secret = server.credentials()
    request = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(key, secret), "application-autoscaling", "us-east-1").add_auth(request)
    return httpx.post(server.url + "/", content=body, headers=dict(request.headers.items()))


def test_iam_and_sts_still_speak_the_query_protocol(server: RunningServer) -> None:
    sts = server.session.client(
        "sts", endpoint_url=server.url, region_name="us-east-1", config=NO_RETRIES
    )
    assert sts.get_caller_identity()["Arn"].endswith(":user/admin")
