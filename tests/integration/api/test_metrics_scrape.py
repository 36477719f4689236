"""``GET /metrics`` on a real server: signed scrapes, parsed as Prometheus parses them,
counting exactly what an endpoint and a function were sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from prometheus_client.parser import text_string_to_metric_families
from tests._server import RunningServer
from tests.integration.endpoints.conftest import Models, runtime_client, wait_for
from tests.integration.functions.conftest import (
    BASIC_EXECUTION,
    code_zip,
    make_role,
    no_retries,
    unique,
    wait_active,
)

from kennel._client import KennelClient
from kennel._errors import AccessDeniedError

pytestmark = pytest.mark.timeout(300)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HANDLER = """
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"echo": event.get("echo")}
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: KennelClient) -> Samples:
    """One signed scrape, parsed by Prometheus' own parser (so it is valid exposition)."""
    response = api.request("GET", "/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE
    text = response.text
    families = list(text_string_to_metric_families(text))
    assert len({f.name for f in families}) == len(families)  # one HELP/TYPE per family
    for family in families:
        assert f"# HELP {family.name}" in text and family.type in ("counter", "gauge", "histogram")
    samples = [s for family in families for s in family.samples]
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def models(api: KennelClient, tmp_path: Path) -> Iterator[Models]:
    made = Models(api, tmp_path)
    yield made
    made.cleanup()


def test_endpoint_invocations_are_counted_exactly(
    server: RunningServer, api: KennelClient, models: Models
) -> None:
    endpoint = models.simple("v1")
    runtime = runtime_client(server)
    ok = {"endpoint": endpoint, "variant": "AllTraffic"}

    before = scrape(api)
    assert value(before, "kennel_endpoint_invocations_total", **ok) == 0
    assert value(before, "kennel_endpoint_instances", **ok) == 1

    for i in range(5):
        runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Body=json.dumps({"echo": i})
        )
    for _ in range(2):
        with pytest.raises(runtime.exceptions.ModelError):
            runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="application/json", Body=b'{"fail": true}'
            )
    with pytest.raises(runtime.exceptions.ModelError):  # the model answers 415
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"1,2")

    after = scrape(api)
    assert value(after, "kennel_endpoint_invocations_total", **ok) == 8
    assert value(after, "kennel_endpoint_invocation_5xx_errors_total", **ok) == 2
    assert value(after, "kennel_endpoint_invocation_4xx_errors_total", **ok) == 1
    assert value(after, "kennel_endpoint_model_errors_total", **ok) == 3
    for latency in ("model", "overhead"):
        name = f"kennel_endpoint_{latency}_latency_seconds"
        assert value(after, f"{name}_count", **ok) == 8
        assert value(after, f"{name}_bucket", le="+Inf", **ok) == 8
        assert (value(after, f"{name}_sum", **ok) or 0) > 0
    assert value(after, "kennel_endpoint_desired_instances", **ok) == 1
    assert value(after, "kennel_endpoint_outstanding_requests", **ok) == 0
    assert (value(after, "kennel_endpoints", status="InService") or 0) >= 1

    # The same invocations reach the stored series (1 s periods here), and the latest
    # period's values are exposed too.
    def stored() -> float | None:
        series = api.get(f"/api/v1/endpoints/{endpoint}/metrics")["variants"].get("AllTraffic")
        total = sum(p["value"] for p in (series or {}).get("Invocations", []))
        return total if total >= 8 else None

    assert wait_for(stored, 20, "8 invocations in the stored series") == 8
    latest = scrape(api)
    assert value(latest, "kennel_endpoint_invocations_total", **ok) == 8
    assert value(latest, "kennel_endpoint_invocations_per_instance", **ok) is not None
    assert value(latest, "kennel_endpoint_cpu_utilization_percent", **ok) is not None


@pytest.fixture
def lambda_client(server: RunningServer) -> Any:
    return server.session.client(
        "lambda", endpoint_url=server.url, region_name="us-east-1", config=no_retries()
    )


@pytest.fixture
def function(server: RunningServer, lambda_client: Any) -> Iterator[str]:
    iam = server.session.client(
        "iam", endpoint_url=server.url, region_name="us-east-1", config=no_retries()
    )
    role = make_role(iam, unique("fn-metrics"), BASIC_EXECUTION)
    name = unique("fn-metrics")
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code_zip({"app.py": HANDLER})},
    )
    wait_active(lambda_client, name)
    yield name
    lambda_client.delete_function(FunctionName=name)


def test_function_invocations_errors_and_throttles_are_counted_exactly(
    api: KennelClient, lambda_client: Any, function: str
) -> None:
    labels = {"function": function}
    assert value(scrape(api), "kennel_function_invocations_total", **labels) is None

    for i in range(4):
        answer = lambda_client.invoke(FunctionName=function, Payload=json.dumps({"echo": i}))
        assert "FunctionError" not in answer
    failed = lambda_client.invoke(FunctionName=function, Payload=b'{"fail": true}')
    assert failed["FunctionError"] == "Unhandled"
    lambda_client.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    for _ in range(3):
        with pytest.raises(lambda_client.exceptions.TooManyRequestsException):
            lambda_client.invoke(FunctionName=function, Payload=b"{}")

    samples = scrape(api)
    assert value(samples, "kennel_function_invocations_total", **labels) == 5
    assert value(samples, "kennel_function_errors_total", **labels) == 1
    assert value(samples, "kennel_function_throttles_total", **labels) == 3
    assert (value(samples, "kennel_function_cold_starts_total", **labels) or 0) >= 1
    assert value(samples, "kennel_function_duration_seconds_count", **labels) == 5
    assert value(samples, "kennel_function_duration_seconds_bucket", le="+Inf", **labels) == 5
    assert value(samples, "kennel_function_reserved_concurrency", **labels) == 0
    assert value(samples, "kennel_function_concurrent_executions", **labels) == 0
    assert (value(samples, "kennel_functions", state="Active") or 0) >= 1
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0


def test_unsigned_scrapes_are_refused(server: RunningServer) -> None:
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.headers["x-amzn-RequestId"]


def test_scraping_takes_kennel_get_metrics(server: RunningServer, api: KennelClient) -> None:
    iam = server.session.client(
        "iam", endpoint_url=server.url, region_name="us-east-1", config=no_retries()
    )
    user = unique("scraper")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    status_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kennel:GetServerStatus", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="status", PolicyDocument=json.dumps(status_only))
    credentials = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    with KennelClient(server.url, credentials, "us-east-1") as scraper:
        scraper.get("/api/v1/status")
        with pytest.raises(AccessDeniedError) as denied:
            scraper.request("GET", "/metrics")
        assert denied.value.status == 403
        assert denied.value.aws_code == "AccessDeniedException"
        assert "kennel:GetMetrics" in denied.value.message

        allow = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "kennel:GetMetrics", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="scrape", PolicyDocument=json.dumps(allow))
        assert value(scrape(scraper), "kennel_ray_up") == 1
