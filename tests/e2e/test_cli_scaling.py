"""``kennel endpoints scaling`` and ``kennel endpoints activities`` as a user types them.

One echo endpoint for the module, registered 1..3 (so a scaling controller in the server has
nothing to change) and deregistered before it is deleted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel
from tests.integration.endpoints.conftest import Models

from kennel._settings import Settings
from kennel.endpoints._scaling import ScalingService
from kennel.store import Database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def endpoint(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    scaling = server.session.client(
        "application-autoscaling", endpoint_url=server.url, region_name="us-east-1"
    )
    with server.client() as api:
        made = Models(api, tmp_path_factory.mktemp("cli-scaling-models"))
        name = made.simple("v1")
        yield name
        # Normally the test deregistered it; a failed one may not have.
        with contextlib.suppress(scaling.exceptions.ObjectNotFoundException):
            scaling.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=f"endpoint/{name}/variant/AllTraffic",
                ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            )
        made.cleanup()


@pytest.fixture
def env(server: RunningServer) -> dict[str, str]:
    # Wide enough that rich never folds the text asserted on.
    return {**server.env, "COLUMNS": "250"}


def _json(env: dict[str, str], *args: str) -> Any:
    return json.loads(kennel(env, *args, "--json").stdout)


def _fails(env: dict[str, str], *args: str) -> str:
    result = kennel(env, *args, check=False)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_register_policy_apply_describe_activities_deregister(
    server: RunningServer, env: dict[str, str], endpoint: str, tmp_path: Path
) -> None:
    rid = f"endpoint/{endpoint}/variant/AllTraffic"
    registered = kennel(
        env, "endpoints", "scaling", "register", endpoint, "--min", "1", "--max", "3"
    )
    assert f"Registered {rid}: 1..3 instances." in registered.stdout

    put = kennel(
        env, "endpoints", "scaling", "policy", endpoint, "--name", "old",
        "--target", "70", "--scale-in-cooldown", "600",
    )  # fmt: skip
    assert f"Policy old on {rid}: keep invocations-per-instance at 70" in put.stdout
    assert ":policyName/old" in put.stdout

    refused = _fails(
        env, "endpoints", "scaling", "policy", endpoint, "--name", "gpu", "--target", "5",
        "--metric", "GPUUtilization",
    )  # fmt: skip
    assert "Error (ValidationException):" in refused
    assert "does not publish metric 'GPUUtilization'" in refused

    human = kennel(env, "endpoints", "scaling", "describe", endpoint).stdout
    assert rid in human and "1..3 instances" in human and "healthy of 1 desired" in human
    assert "InvocationsPerInstance (per minute)" in human and "300 s / 600 s" in human

    spec = tmp_path / "scaling.yaml"
    spec.write_text(
        "min_capacity: 1\n"
        "max_capacity: 2\n"
        "policies:\n"
        "  - name: invocations\n"
        "    target_value: 50\n"
        "  - name: latency\n"
        "    target_value: 250000\n"
        "    metric: model-latency\n"
        "    disable_scale_in: true\n"
    )
    applied = kennel(env, "endpoints", "scaling", "apply", endpoint, "--file", str(spec)).stdout
    assert f"Applied scaling.yaml to {rid}: 1..2 instances." in applied
    assert "deleted policy old (not in the file)" in applied

    [described] = _json(env, "endpoints", "scaling", "describe", endpoint)
    assert described["ScalableTarget"]["MaxCapacity"] == 2
    policies = {p["PolicyName"]: p for p in described["ScalingPolicies"]}
    assert set(policies) == {"invocations", "latency"}
    latency = policies["latency"]["TargetTrackingScalingPolicyConfiguration"]
    assert latency["CustomizedMetricSpecification"]["MetricName"] == "ModelLatency"
    assert latency["DisableScaleIn"] is True

    # Applying it again changes nothing and deletes nothing.
    again = _json(env, "endpoints", "scaling", "apply", endpoint, "--file", str(spec))
    assert again["DeletedPolicies"] == [] and len(again["PolicyARNs"]) == 2

    assert _json(env, "endpoints", "activities", endpoint) == []
    _record_activities(server, rid)
    activities = _json(env, "endpoints", "activities", endpoint, "--max", "5")
    assert [a["Description"] for a in activities] == [
        "Setting desired instance count to 1.",
        "Setting desired instance count to 2.",
    ]
    assert activities[0]["StatusCode"] == "Failed"
    table = kennel(env, "endpoints", "activities", endpoint, "--variant", "AllTraffic").stdout
    assert "Setting desired instance count to 2." in table and "Successful" in table
    assert "Failed: instance did not start" in table
    assert len(_json(env, "endpoints", "activities", endpoint, "--max", "1")) == 1

    kennel(env, "endpoints", "scaling", "delete-policy", endpoint, "--name", "latency")
    missing = _fails(env, "endpoints", "scaling", "delete-policy", endpoint, "--name", "latency")
    assert "Error (ObjectNotFoundException): No scaling policy found" in missing
    assert f"hint: See `kennel endpoints scaling describe {endpoint}`" in missing

    deregistered = kennel(env, "endpoints", "scaling", "deregister", endpoint).stdout
    assert f"Deregistered {rid}" in deregistered
    gone = _fails(env, "endpoints", "scaling", "describe", endpoint)
    assert f"No scalable target is registered for endpoint {endpoint}" in gone
    assert f"kennel endpoints scaling register {endpoint} --min 1 --max 3" in gone


def test_bad_input_is_one_red_line(env: dict[str, str], endpoint: str, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("min_capacity: 3\nmax_capacity: 2\npolicies: []\n")
    message = _fails(env, "endpoints", "scaling", "apply", endpoint, "--file", str(spec))
    assert "Error (ValidationException): Invalid scaling spec" in message
    assert "min_capacity (3) is above max_capacity (2)" in message

    message = _fails(
        env, "endpoints", "scaling", "register", "no-such-endpoint", "--min", "1", "--max", "2"
    )
    assert "Could not find endpoint no-such-endpoint" in message

    message = _fails(
        env, "endpoints", "scaling", "policy", endpoint, "--name", "p", "--target", "5"
    )
    assert "Error (ObjectNotFoundException): No scalable target registered" in message
    assert f"kennel endpoints scaling register {endpoint}" in message

    message = _fails(
        env, "endpoints", "scaling", "policy", endpoint, "--name", "p", "--target", "0"
    )
    assert "Invalid policy: target_value" in message


def _record_activities(server: RunningServer, rid: str) -> None:
    """What the scaling controller records, through the service's public methods."""
    recorder = ScalingService(
        Database(f"sqlite:///{server.home / 'kennel.db'}"),
        _NoEndpoints(),
        Settings(home=server.home),
        account_id="000000000000",
        region="us-east-1",
    )
    first = recorder.start_activity(
        rid, description="Setting desired instance count to 2.", cause="test scale-out"
    )
    recorder.finish_activity(first, "Successful")
    second = recorder.start_activity(
        rid, description="Setting desired instance count to 1.", cause="test scale-in"
    )
    recorder.finish_activity(second, "Failed", "instance did not start")


class _NoEndpoints:
    def describe(self, name: str) -> dict[str, Any]:
        raise AssertionError("recording activities does not look at endpoints")

    def describe_config(self, name: str) -> dict[str, Any]:
        raise AssertionError("recording activities does not look at endpoints")
