"""Autoscaling on a real endpoint: a step load scales it 1 -> 3 -> 1, nothing fails.

The session server closes a metric period every second, so the high alarm (3 periods
above the target) fires about 3 s into the load and the low alarm (15 periods below
90% of it) about 15 s after the load drops. Requests go through plain boto3 clients.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests._server import RunningServer
from tests.integration.endpoints.conftest import Models, runtime_client, wait_for

from kennel._client import KennelClient

pytestmark = pytest.mark.slow


@dataclass
class StepLoad:
    """Open-loop load at a rate that can change; every answer is kept."""

    client: Any
    endpoint: str
    rps: float = 0.0
    outcomes: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16))

    def _one(self) -> None:
        try:
            answer = self.client.invoke_endpoint(
                EndpointName=self.endpoint,
                ContentType="application/json",
                Body=json.dumps({"sleep": 0.02}),
            )
            answer["Body"].read()
            outcome = "ok"
        except Exception as error:  # noqa: BLE001 - every failure is the test's finding
            outcome = f"{type(error).__name__}: {error}"
        self.outcomes.append((time.monotonic(), outcome))

    def run(self, limit_seconds: float) -> None:
        deadline = time.monotonic() + limit_seconds
        futures: list[Future[None]] = []
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.rps <= 0:
                time.sleep(0.05)
                next_at = time.monotonic()
                continue
            futures.append(self._pool.submit(self._one))
            next_at += 1.0 / self.rps
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        for future in futures:
            future.result(timeout=120)

    def stop(self) -> None:
        self._stop.set()

    def failures(self) -> list[str]:
        return [outcome for _, outcome in self.outcomes if outcome != "ok"]


def scaling_client(server: RunningServer) -> Any:
    return server.session.client(
        "application-autoscaling", endpoint_url=server.url, region_name="us-east-1"
    )


def capacity(api: KennelClient, endpoint: str) -> tuple[int, int]:
    variant = api.get(f"/api/v1/endpoints/{endpoint}")["production_variants"][0]
    return variant["desired_instance_count"], variant["current_instance_count"]


def activities(aas: Any, endpoint: str) -> list[dict[str, Any]]:
    found = aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint}/variant/AllTraffic"
    )["ScalingActivities"]
    return list(reversed(found))  # oldest first


def _settled(found: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The activities once none is in progress (an instance leaving is stopped after the
    route has dropped it)."""
    return None if any(a["StatusCode"] == "InProgress" for a in found) else found


def register(aas: Any, endpoint: str, low: int, high: int) -> None:
    aas.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{endpoint}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=low,
        MaxCapacity=high,
    )


def test_a_step_load_scales_out_to_three_and_back_to_one_without_failures(
    server: RunningServer, api: KennelClient, models: Models
) -> None:
    endpoint = models.simple("v1")
    aas = scaling_client(server)
    register(aas, endpoint, 1, 3)
    aas.put_scaling_policy(
        PolicyName="invocations",
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{endpoint}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            # per instance per minute: 5 requests/s on one instance
            "TargetValue": 300.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleOutCooldown": 5,
            "ScaleInCooldown": 2,
        },
    )
    load = StepLoad(runtime_client(server), endpoint, rps=20.0)
    runner = threading.Thread(target=load.run, args=(150.0,), daemon=True)
    runner.start()
    try:
        wait_for(lambda: capacity(api, endpoint) == (3, 3), 60, "scale-out to 3 in service")
        load.rps = 2.0  # 40 per instance per minute on 3: below 90% of the target
        wait_for(lambda: capacity(api, endpoint) == (1, 1), 90, "scale-in back to 1")
    finally:
        load.stop()
        runner.join(150)
    assert len(load.outcomes) > 100
    assert load.failures() == []
    done = wait_for(lambda: _settled(activities(aas, endpoint)), 30, "the last activity to finish")
    assert [a["StatusCode"] for a in done] == ["Successful"] * len(done)
    out, *ins = done
    assert out["Description"] == "Setting desired instance count to 3."
    assert out["Cause"].endswith("changing the desired capacity from 1 to 3.")
    (policy,) = aas.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint}/variant/AllTraffic"
    )["ScalingPolicies"]
    high = next(a["AlarmName"] for a in policy["Alarms"] if "-AlarmHigh-" in a["AlarmName"])
    assert f"monitor alarm {high} in state ALARM" in out["Cause"]
    assert (
        "AlarmHigh" in out["Cause"]
        and "in state ALARM triggered policy invocations" in (out["Cause"])
    )
    assert [a["Description"] for a in ins] == [
        "Setting desired instance count to 2.",
        "Setting desired instance count to 1.",
    ]
    assert all("AlarmLow" in a["Cause"] for a in ins)
    # The instances' own metrics were published too (policies may track them).
    series = api.get(f"/api/v1/endpoints/{endpoint}/metrics")["variants"]["AllTraffic"]
    assert 0 < max(p["value"] for p in series["CPUUtilization"]) <= 100 * 2 * 3
    assert 0 < max(p["value"] for p in series["MemoryUtilization"]) < 100


def test_at_zero_instances_the_first_request_is_held_and_answered(
    server: RunningServer, api: KennelClient, models: Models
) -> None:
    endpoint = models.simple("v1")
    aas = scaling_client(server)
    register(aas, endpoint, 0, 0)  # the maximum takes the variant down to zero
    wait_for(lambda: capacity(api, endpoint) == (0, 0), 30, "scale-in to zero")
    register(aas, endpoint, 0, 1)
    time.sleep(2.5)  # the autoscaler reads targets once per period
    runtime = runtime_client(server)
    started = time.monotonic()
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Body=json.dumps({"echo": 7})
    )
    waited = time.monotonic() - started
    assert json.loads(answer["Body"].read())["echo"] == 7
    assert waited > 0.2  # it waited for an instance to start
    assert capacity(api, endpoint) == (1, 1)
    causes = [a["Cause"] for a in activities(aas, endpoint)]
    assert "maximum capacity" in causes[0]
    assert "scale from zero" in causes[-1]
