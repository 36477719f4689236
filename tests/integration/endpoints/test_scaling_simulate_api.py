"""``/api/v1/endpoints/{name}/scaling``: kennel's view of a variant's scaling, and simulations.

One echo endpoint for the module gets ~6 s of requests through boto3; the session server
closes a metric period every second, so that is six periods of recorded load to replay.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests._server import RunningServer
from tests.integration.endpoints.conftest import Models, runtime_client, wait_for
from tests.integration.endpoints.test_autoscaling_step_load import register, scaling_client

from kennel._client import KennelClient
from kennel._errors import KennelError

LOAD_SECONDS = 6.0
RESOURCE = "endpoint/{}/variant/AllTraffic"


@pytest.fixture(scope="module")
def loaded(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An endpoint that served ~10 requests a second for six metric periods."""
    with server.client() as api:
        made = Models(api, tmp_path_factory.mktemp("simulate-models"))
        endpoint = made.simple("v1")
        runtime = runtime_client(server)
        sent, deadline = 0, time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="application/json", Body=json.dumps({})
            )["Body"].read()
            sent += 1
            time.sleep(0.1)
        wait_for(lambda: _recorded(api, endpoint) >= sent, 10, "the load's last period")
        yield endpoint
        made.cleanup()


def _recorded(api: KennelClient, endpoint: str) -> float:
    series = api.get(f"/api/v1/endpoints/{endpoint}/metrics")["variants"].get("AllTraffic", {})
    return sum(point["value"] for point in series.get("Invocations", []))


def _spec(**policy: Any) -> dict[str, Any]:
    """A spec scaling 1..3 on one policy: by default, 30 invocations per instance per minute
    (the recorded ~600 a minute is far above it)."""
    return {
        "min_capacity": 1,
        "max_capacity": 3,
        "policies": [{"name": "busy", "target_value": 30, **policy}],
    }


def _simulate(api: KennelClient, endpoint: str, body: dict[str, Any]) -> Any:
    return api.post(f"/api/v1/endpoints/{endpoint}/scaling/simulate", body)


def _refusal(api: KennelClient, endpoint: str, body: dict[str, Any]) -> KennelError:
    with pytest.raises(KennelError) as caught:
        _simulate(api, endpoint, body)
    return caught.value


def test_a_low_target_scales_the_replayed_load_out_to_the_maximum(
    api: KennelClient, loaded: str
) -> None:
    answer = _simulate(api, loaded, {"spec": _spec(), "since_seconds": 600})
    result = answer["result"]
    assert result["resource_id"] == RESOURCE.format(loaded)
    assert result["period_seconds"] == 1
    points = result["points"]
    assert len(points) >= LOAD_SECONDS - 1
    assert points[0]["desired"] == 1  # the recorded InstanceCount it starts from
    assert max(point["desired"] for point in points) == 3
    assert max(point["in_service"] for point in points) == 3
    out = result["decisions"][0]
    assert (out["direction"], out["previous"], out["desired"]) == ("out", 1, 3)
    assert out["description"] == "Setting desired instance count to 3."
    alarm = re.escape(f"TargetTracking-{RESOURCE.format(loaded)}-AlarmHigh-")
    assert re.fullmatch(
        f"monitor alarm {alarm}[0-9a-f-]{{36}} in state ALARM triggered policy busy",
        out["cause"],
    )
    assert "simulated desired capacity" in answer["chart"]
    assert "▲ 1 -> 3  busy (AlarmHigh" in answer["chart"]


def test_the_html_format_is_a_plotly_page(api: KennelClient, loaded: str) -> None:
    response = api.request(
        "POST",
        f"/api/v1/endpoints/{loaded}/scaling/simulate",
        json_body={"spec": _spec(), "since_seconds": 600, "startup_periods": 2},
        params={"format": "html"},
    )
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"<title>Scaling simulation: {RESOURCE.format(loaded)}</title>" in page
    assert "Plotly.newPlot" in page and "plotly" in page.lower()


def test_a_policy_on_a_metric_the_variant_does_not_publish_is_refused(
    api: KennelClient, loaded: str
) -> None:
    refused = _refusal(api, loaded, {"spec": _spec(metric="GPUUtilization")})
    assert (refused.status, refused.aws_code) == (400, "ValidationException")
    assert "does not publish metric 'GPUUtilization'" in refused.message


def test_bad_input_says_what_to_fix(api: KennelClient, loaded: str) -> None:
    bounds = _refusal(api, loaded, {"spec": {**_spec(), "min_capacity": 4}})
    assert bounds.status == 400
    assert "min_capacity (4) is above max_capacity (3)" in bounds.message

    window = _refusal(api, loaded, {"spec": _spec(), "since_seconds": 0})
    assert window.status == 400 and "since_seconds" in window.message

    variant = _refusal(api, loaded, {"spec": {**_spec(), "variant": "Blue"}})
    assert variant.status == 400
    assert f"Endpoint {loaded} has no variant Blue" in variant.message

    empty = _refusal(api, loaded, {"spec": {**_spec(), "policies": []}})
    assert empty.status == 400 and "add at least one" in empty.message


def test_an_endpoint_without_recorded_metrics_has_nothing_to_replay(
    api: KennelClient, models: Models
) -> None:
    # A model that cannot load: the endpoint never serves, so it never records a period.
    endpoint = models.endpoint(models.config({"model_name": models.model("broken")}), wait=False)
    nothing = _refusal(api, endpoint, {"spec": _spec()})
    assert nothing.status == 404
    assert "has no recorded metrics in the last 3600 s" in nothing.message
    assert "nothing to replay yet" in nothing.message

    unknown = _refusal(api, "no-such-endpoint", {"spec": _spec()})
    assert unknown.status == 404 and "Could not find endpoint" in unknown.message


def test_scaling_view_shows_the_alarms_as_the_autoscaler_holds_them(
    server: RunningServer, api: KennelClient, loaded: str
) -> None:
    aas = scaling_client(server)
    resource = RESOURCE.format(loaded)
    register(aas, loaded, 1, 1)  # nothing to change, whatever the alarms say
    try:
        aas.put_scaling_policy(**_put_request(resource, disable_scale_in=True))
        view = wait_for(lambda: _with_alarms(api, loaded), 10, "the policy's alarms")
    finally:
        aas.deregister_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )
    assert view["resource_id"] == resource
    assert (view["min_capacity"], view["max_capacity"]) == (1, 1)
    assert (view["desired_instances"], view["in_service_instances"]) == (1, 1)
    [policy] = view["policies"]
    assert policy["policy_name"] == "quiet" and policy["metric"] == "InvocationsPerInstance"
    [high] = policy["alarms"]  # scale-in disabled: no low alarm, as on AWS
    assert high["alarm"] == "AlarmHigh" and high["threshold"] == 100000
    assert high["alarm_name"].startswith(f"TargetTracking-{resource}-AlarmHigh-")
    assert high["state"] == "OK"  # the load is over: 0 per minute, far below the target
    assert 1 <= len(high["recent_values"]) <= high["evaluation_periods"] == 3
    assert view["activities"] == []
    assert api.get(f"/api/v1/endpoints/{loaded}/scaling")["variants"] == []


def _with_alarms(api: KennelClient, endpoint: str) -> dict[str, Any] | None:
    status = api.get(f"/api/v1/endpoints/{endpoint}/scaling")
    assert status["period_seconds"] == 1
    [view] = status["variants"]
    alarms = view["policies"][0]["alarms"] if view["policies"] else []
    # Alarms appear when the autoscaler reads the policy, values when it next evaluates.
    return view if alarms and alarms[0]["recent_values"] else None


def _put_request(resource: str, *, disable_scale_in: bool) -> dict[str, Any]:
    return {
        "PolicyName": "quiet",
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 100000.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "DisableScaleIn": disable_scale_in,
        },
    }
