"""Endpoints end to end: real server, real Ray actors, real model servers, real boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import send_signed
from tests.integration.endpoints.conftest import Models, wait_for

from kennel._client import KennelClient
from kennel._errors import ConflictError, ValidationError

pytestmark = pytest.mark.timeout(300)


def _invoke(runtime: Any, endpoint: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = runtime.invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(payload).encode(),
        **extra,
    )
    response["decoded"] = json.loads(response["Body"].read())
    return dict(response)


def test_boto3_invokes_an_endpoint_with_the_users_handlers(
    models: Models, runtime: Any, api: KennelClient
) -> None:
    endpoint = models.simple("v1")
    answer = _invoke(runtime, endpoint, {"echo": "woof"}, CustomAttributes="top_k=3")
    assert answer["decoded"]["echo"] == "woof"
    assert answer["decoded"]["version"] == "v1"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ContentType"] == "application/json"
    assert answer["CustomAttributes"] == "seen=top_k=3"
    described = api.get(f"/api/v1/endpoints/{endpoint}")
    assert described["status"] == "InService"
    assert described["arn"].endswith(f":endpoint/{endpoint.lower()}")
    [variant] = described["production_variants"]
    assert variant["current_instance_count"] == variant["desired_instance_count"] == 1


def test_errors_come_back_in_aws_shape(
    models: Models, runtime: Any, server: RunningServer, api: KennelClient
) -> None:
    endpoint = models.simple("v1")
    account = api.get("/api/v1/status")["account"]["account_id"]

    with pytest.raises(ClientError) as missing:
        _invoke(runtime, "no-such-endpoint", {})
    error = missing.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == f"Endpoint no-such-endpoint of account {account} not found."

    with pytest.raises(runtime.exceptions.ModelError) as failed:
        _invoke(runtime, endpoint, {"fail": True})
    error = failed.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert "asked to fail" in error["OriginalMessage"]
    assert "Received server error (500)" in error["Error"]["Message"]
    assert error["LogStreamArn"].endswith(f"/aws/sagemaker/Endpoints/{endpoint}")

    with pytest.raises(runtime.exceptions.ModelError) as unsupported:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"1,2")
    assert unsupported.value.response["OriginalStatusCode"] == 415
    assert "Received client error (415)" in unsupported.value.response["Error"]["Message"]

    with pytest.raises(ClientError) as variant:
        _invoke(runtime, endpoint, {}, TargetVariant="Nope")
    assert variant.value.response["Error"]["Code"] == "ValidationError"
    assert "AllTraffic" in variant.value.response["Error"]["Message"]

    too_long = send_signed(
        server, "POST", f"/endpoints/{endpoint}/invocations", b"{}", service="sagemaker"
    )
    assert too_long.status_code == 200  # the plain signed request works ...
    big = send_signed(server, "POST", f"/endpoints/{endpoint}/invocations", b"x" * (6 * 2**20 + 1))
    assert big.status_code == 413  # ... and a body over InvokeEndpoint's 6 MB does not
    assert big.headers["x-amzn-ErrorType"]


def test_weights_split_traffic_and_target_variant_wins(models: Models, runtime: Any) -> None:
    a, b = models.model("alpha"), models.model("beta")
    config = models.config(
        {"variant_name": "A", "model_name": a, "initial_weight": 3},
        {"variant_name": "B", "model_name": b, "initial_weight": 1},
    )
    endpoint = models.endpoint(config)
    seen = {"A": 0, "B": 0}
    for _ in range(200):
        answer = _invoke(runtime, endpoint, {})
        variant = answer["InvokedProductionVariant"]
        assert answer["decoded"]["version"] == {"A": "alpha", "B": "beta"}[variant]
        seen[variant] += 1
    assert 110 <= seen["A"] <= 185, seen  # 150 expected
    for _ in range(5):
        assert _invoke(runtime, endpoint, {}, TargetVariant="B")["decoded"]["version"] == "beta"


def test_least_outstanding_requests_avoids_a_busy_instance(
    models: Models, runtime: Any, server: RunningServer
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    endpoint = models.simple("v1", count=2)
    pids = {_invoke(runtime, endpoint, {})["decoded"]["pid"] for _ in range(20)}
    assert len(pids) == 2  # both instances serve
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_invoke, runtime, endpoint, {"sleep": 3})
        wait_for(lambda: _outstanding(server, endpoint) == 1, 5, "the slow request to start")
        fast = {_invoke(runtime, endpoint, {})["decoded"]["pid"] for _ in range(10)}
        busy = slow.result(timeout=30)["decoded"]["pid"]
    assert busy not in fast and len(fast) == 1


def _outstanding(server: RunningServer, endpoint: str) -> int:
    with server.client() as api:
        info = api.get(f"/api/v1/endpoints/{endpoint}")
    return sum(i["outstanding"] for v in info["production_variants"] for i in v["instances"])


def test_model_and_config_requests_are_checked(models: Models, api: KennelClient) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        api.post("/api/v1/models", {"name": "m-nojob", "training_job": "no-such-job"})
    with pytest.raises(ValidationError, match="does not exist or cannot be read"):
        api.post("/api/v1/models", {"name": "m-nofile", "artifact_uri": "/no/such/model.tar.gz"})
    with pytest.raises(ValidationError, match="Could not find model"):
        api.post(
            "/api/v1/endpoint-configs",
            {"name": "c-bad", "variants": [{"model_name": "no-such-model"}]},
        )
    with pytest.raises(ValidationError, match="instance type"):
        model = models.model("v1")
        api.post(
            "/api/v1/endpoint-configs",
            {"name": "c-bad2", "variants": [{"model_name": model, "instance_type": "ml.x9.huge"}]},
        )
    endpoint = models.simple("v1")
    config = api.get(f"/api/v1/endpoints/{endpoint}")["config_name"]
    in_use = api.get(f"/api/v1/endpoint-configs/{config}")["variants"][0]["model_name"]
    with pytest.raises(ConflictError, match="in use"):
        api.delete(f"/api/v1/models/{in_use}")
    with pytest.raises(ConflictError, match="in use"):
        api.delete(f"/api/v1/endpoint-configs/{config}")
    with pytest.raises(ConflictError, match="already existing endpoint"):
        api.post("/api/v1/endpoints", {"name": endpoint, "config_name": config})


def test_a_model_that_cannot_load_fails_the_endpoint_with_its_reason(
    models: Models, api: KennelClient
) -> None:
    config = models.config({"model_name": models.model("broken")})
    endpoint = models.endpoint(config, wait=False)
    info = wait_for(
        lambda: (i := api.get(f"/api/v1/endpoints/{endpoint}"))["status"] == "Failed" and i,
        120,
        "the endpoint to fail",
    )
    assert "broken on purpose" in info["failure_reason"]


def test_metrics_are_recorded_per_variant(models: Models, runtime: Any, api: KennelClient) -> None:
    endpoint = models.simple("v1")
    for _ in range(7):
        _invoke(runtime, endpoint, {})
    with pytest.raises(runtime.exceptions.ModelError):
        _invoke(runtime, endpoint, {"fail": True})

    def counted() -> dict[str, Any] | None:
        data = api.get(f"/api/v1/endpoints/{endpoint}/metrics")
        series = data["variants"].get("AllTraffic", {})
        total = sum(p["value"] for p in series.get("Invocations", []))
        return series if total >= 8 else None

    series = wait_for(counted, 20, "8 invocations in the metrics")
    assert sum(p["value"] for p in series["Invocation5XXErrors"]) == 1
    assert sum(p["value"] for p in series["ModelErrors"]) == 1
    assert max(p["value"] for p in series["InstanceCount"]) == 1
    assert max(p["value"] for p in series["ModelLatency"]) > 0  # microseconds
    assert set(series) >= {
        "Invocations",
        "InvocationsPerInstance",
        "ModelLatency",
        "OverheadLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "InstanceCount",
    }
