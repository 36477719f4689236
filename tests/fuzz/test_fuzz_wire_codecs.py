"""The AWS protocols' codecs, and Application Auto Scaling behind one, on hostile input.

* The Query protocol (IAM, STS): a form parses into an Action and nested parameters, or
  raises QueryProtocolError (a 400); an error document is always written, whatever
  characters the message quotes, and is XML.
* AWS JSON 1.1: X-Amz-Target names an operation or is UnknownOperationException; a body
  is a JSON object or SerializationException.
* ScalingService, which takes the JSON 1.1 input as boto3 sends it, over a real database
  with one registered target: every operation answers, or raises a 4xx KennelError, for
  any input: schedules, time zones, timestamps, paging tokens and capacities included.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz._fuzz import (
    assert_client_error,
    fuzz_settings,
    json_bodies,
    json_values,
    outcome,
    quick,
)

from kennel._errors import KennelError, NotFoundError
from kennel._settings import Settings
from kennel.api._json_protocol import (
    SerializationError,
    UnknownOperationError,
    operation_name,
    parse_body,
)
from kennel.api._query import QueryProtocolError, parse_query_body, parse_query_string, xml_error
from kennel.api.routers.autoscaling_json import OPERATIONS, TARGET_PREFIX
from kennel.endpoints._scaling import ScalingService
from kennel.store import Database

# --- the Query protocol ------------------------------------------------------------------------

key_parts = st.sampled_from(
    ["member", "entry", "key", "value", "1", "2", "0", "01", "", "Tags", "Action"]
)
keys = st.one_of(
    st.lists(key_parts | st.text(max_size=4), min_size=1, max_size=8).map(".".join),
    st.integers(30, 5000).map(lambda n: ".".join(["a"] * n)),
    st.integers(30, 3000).map(lambda n: ".".join(["member", "1"] * n)),
)
forms = st.lists(st.tuples(keys, st.text(max_size=20)), max_size=10).map(
    lambda pairs: "&".join(f"{quote(k, safe='.')}={quote(v, safe='')}" for k, v in pairs)
)


def _well_formed(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return all(_well_formed(item) for item in value)
    return isinstance(value, dict) and all(
        isinstance(k, str) and _well_formed(v) for k, v in value.items()
    )


@given(body=forms.map(str.encode) | st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
@fuzz_settings(max_examples=400)
def test_query_forms(body: bytes) -> None:
    with quick("parse_query_body"):
        result = outcome(lambda: parse_query_body(body), QueryProtocolError)
    if isinstance(result, QueryProtocolError):
        assert result.code in ("MalformedQueryString", "MissingAction") and str(result)
        return
    action, params = result
    assert action and isinstance(action, str) and _well_formed(params)


@given(qs=st.text(max_size=200))
@fuzz_settings(max_examples=200)
def test_query_strings(qs: str) -> None:
    outcome(lambda: parse_query_string(qs), QueryProtocolError)


@given(code=st.text(max_size=30), message=st.text(max_size=200), request_id=st.text(max_size=40))
@fuzz_settings(max_examples=300)
def test_query_errors_are_always_xml(code: str, message: str, request_id: str) -> None:
    document = xml_error(code, message, request_id, service="iam")
    root = ElementTree.fromstring(document)
    assert root.find("{*}Error/{*}Code") is not None


# --- AWS JSON 1.1 ------------------------------------------------------------------------------


@given(
    target=st.none()
    | st.text(max_size=60)
    | st.sampled_from(sorted(OPERATIONS)).map(lambda o: f"{TARGET_PREFIX}.{o}")
)
@fuzz_settings(max_examples=200)
def test_json_protocol_targets(target: str | None) -> None:
    result = outcome(lambda: operation_name(target, TARGET_PREFIX), UnknownOperationError)
    if isinstance(result, UnknownOperationError):
        assert_client_error(result)
    else:
        assert result and isinstance(result, str)


@given(body=json_bodies)
@fuzz_settings(max_examples=300)
def test_json_protocol_bodies(body: bytes) -> None:
    with quick("parse_body"):
        result = outcome(lambda: parse_body(body), SerializationError)
    if isinstance(result, SerializationError):
        assert_client_error(result)
    else:
        assert isinstance(result, dict)


# --- Application Auto Scaling ----------------------------------------------------------------

RID = "endpoint/dogs/variant/AllTraffic"
KEY = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": RID,
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


class FakeEndpoints:
    """``dogs`` serves AllTraffic; nothing else exists."""

    def describe(self, name: str) -> dict[str, Any]:
        if name != "dogs":
            raise NotFoundError(f"Could not find endpoint {name}.")
        return {
            "name": name,
            "config_name": "dogs-config",
            "production_variants": [{"variant_name": "AllTraffic", "desired_instance_count": 1}],
        }

    def describe_config(self, name: str) -> dict[str, Any]:
        return {"name": name, "variants": [{"variant_name": "AllTraffic"}]}


@pytest.fixture(scope="module")
def scaling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScalingService]:
    home: Path = tmp_path_factory.mktemp("scaling")
    db = Database(f"sqlite:///{home / 'kennel.db'}")
    db.upgrade()
    service = ScalingService(
        db,
        FakeEndpoints(),
        Settings(home=home / "home"),
        account_id="123456789012",
        region="us-east-1",
        clock=lambda: datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    )
    service.register_scalable_target({**KEY, "MinCapacity": 1, "MaxCapacity": 3})
    yield service
    db.dispose()


members: dict[str, st.SearchStrategy[Any]] = {
    "ResourceId": st.sampled_from([RID, "endpoint/dogs/variant/Other", "endpoint/x", "", "a/b/c/d"])
    | st.text(max_size=30),
    "ScalableDimension": st.sampled_from([KEY["ScalableDimension"], "ecs:service:DesiredCount"])
    | st.text(max_size=10),
    "ServiceNamespace": st.sampled_from(["sagemaker", "ecs"]) | st.text(max_size=10),
    "MinCapacity": st.integers() | json_values,
    "MaxCapacity": st.integers() | json_values,
    "RoleARN": st.text(max_size=30),
    "SuspendedState": st.fixed_dictionaries(
        {}, optional={"DynamicScalingInSuspended": st.booleans() | json_values}
    )
    | json_values,
    "Tags": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=60) | json_values,
    "TagKeys": st.lists(st.text(max_size=10), max_size=5) | json_values,
    "PolicyName": st.text(min_size=1, max_size=20) | json_values,
    "PolicyType": st.sampled_from(["TargetTrackingScaling", "StepScaling", "PredictiveScaling"])
    | st.text(max_size=10),
    "TargetTrackingScalingPolicyConfiguration": st.fixed_dictionaries(
        {"TargetValue": st.floats() | st.integers(-(2**70), 2**70) | json_values},
        optional={
            "PredefinedMetricSpecification": st.fixed_dictionaries(
                {
                    "PredefinedMetricType": st.sampled_from(
                        [
                            "SageMakerVariantInvocationsPerInstance",
                            "SageMakerVariantProvisionedConcurrencyUtilization",
                        ]
                    )
                    | st.text(max_size=20)
                },
                optional={"ResourceLabel": st.text(max_size=20)},
            ),
            "CustomizedMetricSpecification": st.fixed_dictionaries(
                {},
                optional={
                    "MetricName": st.text(max_size=20),
                    "Namespace": st.sampled_from(["AWS/SageMaker"]) | st.text(max_size=10),
                    "Dimensions": st.lists(
                        st.fixed_dictionaries(
                            {"Name": st.text(max_size=10), "Value": st.text(max_size=10)}
                        ),
                        max_size=3,
                    )
                    | json_values,
                    "Statistic": st.sampled_from(["Average", "Sum", "p99"]) | st.text(max_size=5),
                    "Unit": st.text(max_size=5),
                    "Metrics": json_values,
                },
            ),
            "ScaleOutCooldown": st.integers() | json_values,
            "ScaleInCooldown": st.integers() | json_values,
            "DisableScaleIn": st.booleans() | json_values,
        },
    )
    | json_values,
    "ScheduledActionName": st.text(min_size=1, max_size=20),
    "Schedule": st.sampled_from(
        [
            "at(2030-01-01T00:00:00)",
            "at(9999-12-31T23:59:59)",
            "at(0001-01-01T00:00:00)",
            "at(2030-02-30T00:00:00)",
            "rate(5 minutes)",
            "rate(0 minutes)",
            "rate(99999999999999999999 days)",
            "rate(1 minute)",
            "cron(0 * * * ? *)",
            "cron(99 99 99 99 ? 99999)",
            "at()",
            "rate()",
        ]
    )
    | st.text(max_size=40),
    "Timezone": st.sampled_from(
        ["UTC", "Europe/Paris", "Etc/GMT+14", "../../../../etc/passwd", "\x00", "", "/"]
    )
    | st.text(max_size=20),
    "StartTime": st.floats() | st.integers(-(2**70), 2**70) | json_values,
    "EndTime": st.floats() | st.integers(-(2**70), 2**70) | json_values,
    "ScalableTargetAction": st.fixed_dictionaries(
        {},
        optional={
            "MinCapacity": st.integers() | json_values,
            "MaxCapacity": st.integers() | json_values,
        },
    )
    | json_values,
    "ResourceARN": st.sampled_from(
        ["arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/x"]
    )
    | st.text(max_size=40),
    "MaxResults": st.integers() | json_values,
    "NextToken": st.text(max_size=40)
    | st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode())
    | json_values.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode()),
    "ResourceIds": st.lists(st.text(max_size=20), max_size=60) | json_values,
    "PolicyNames": st.lists(st.text(max_size=10), max_size=60) | json_values,
    "ScheduledActionNames": st.lists(st.text(max_size=10), max_size=60) | json_values,
    "IncludeNotScaledActivities": st.booleans() | json_values,
}


@st.composite
def scaling_calls(draw: st.DrawFn) -> tuple[str, Any]:
    operation = draw(st.sampled_from(sorted(OPERATIONS)))
    if draw(st.integers(0, 9)) == 0:
        return operation, draw(json_values)
    request: dict[str, Any] = dict(KEY) if draw(st.booleans()) else {}
    for member in draw(st.lists(st.sampled_from(sorted(members)), unique=True, max_size=6)):
        request[member] = draw(members[member])
    return operation, request


@given(call=scaling_calls())
@fuzz_settings(max_examples=400)
def test_scaling_operations(scaling: ScalingService, call: tuple[str, Any]) -> None:
    operation, request = call
    with quick(f"{operation}({request!r:.300})"):
        result = outcome(lambda: OPERATIONS[operation].handler(scaling, request), KennelError)
    if isinstance(result, KennelError):
        assert_client_error(result)
    else:
        json.dumps(result, default=str)
