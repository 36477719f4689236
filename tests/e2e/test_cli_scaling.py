"""``kennel endpoints scaling`` and ``kennel endpoints activities`` as a user types them.

One echo endpoint for the module, registered 1..3 (so a scaling controller in the server has
nothing to change) and deregistered before it is deleted.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel
from tests.integration.endpoints.conftest import Models, runtime_client, wait_for

from kennel._settings import Settings
from kennel.endpoints._scaling import ScalingService
from kennel.store import Database

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]


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


def _registered_max(env: dict[str, str], endpoint: str) -> int | None:
    """The variant's registered MaxCapacity, None when no target is registered."""
    result = kennel(env, "endpoints", "scaling", "describe", endpoint, "--json", check=False)
    if result.returncode == 1 and "No scalable target is registered" in result.stderr:
        return None
    (target,) = json.loads(result.stdout)
    return int(target["MaxCapacity"])


def test_a_spec_is_applied_whole_or_not_at_all(
    env: dict[str, str], endpoint: str, tmp_path: Path
) -> None:
    spec = tmp_path / "half-bad.yaml"
    spec.write_text(
        "min_capacity: 1\nmax_capacity: 2\npolicies:\n"
        "  - {name: fine, target_value: 100}\n"
        "  - {name: bad, target_value: 5, metric: DiskUtilization}\n"
    )
    message = _fails(env, "endpoints", "scaling", "apply", endpoint, "--file", str(spec))
    assert "DiskUtilization" in message
    assert _registered_max(env, endpoint) != 2  # nothing was written

    spec.write_text(
        "min_capacity: 1\nmax_capacity: 2\npolicies:\n  - {name: fine, target_value: 100}\n"
    )
    said = kennel(env, "endpoints", "scaling", "apply", endpoint, "--file", str(spec), "--dry-run")
    assert "would apply to endpoint/" in said.stdout and "Nothing was changed." in said.stdout
    assert _registered_max(env, endpoint) != 2


def test_simulate_charts_what_a_spec_would_have_done(
    server: RunningServer, env: dict[str, str], endpoint: str, tmp_path: Path
) -> None:
    _send_load(server, endpoint, seconds=4.0)
    spec = tmp_path / "busy.yaml"
    spec.write_text(
        "min_capacity: 1\n"
        "max_capacity: 3\n"
        "policies:\n"
        "  - name: busy\n"
        "    target_value: 30\n"  # per instance per minute: the ~600 sent is far above
    )
    page = tmp_path / "replay.html"
    simulate = ("endpoints", "scaling", "simulate", endpoint, "--policy", str(spec))
    human = kennel(env, *simulate, "--from", "15m", "--html", str(page)).stdout
    rid = f"endpoint/{endpoint}/variant/AllTraffic"
    # A long window is drawn with several periods per column: "…periods of 1 s, 2 per column".
    assert f"{rid}: " in human
    assert re.search(r"periods of 1 s(, \d+ per column)?; capacity 1\.\.3", human), human
    assert "recorded capacity (InstanceCount)" in human and "simulated desired capacity" in human
    assert "▲ 1 -> 3  busy (AlarmHigh" in human
    assert "Setting desired instance count to 3." in human
    assert "in state ALARM triggered policy busy" in human
    assert f"Wrote the interactive chart to {page}." in human
    assert "Plotly.newPlot" in page.read_text()

    result = _json(env, *simulate, "--startup-periods", "2")
    assert result["resource_id"] == rid and result["max_capacity"] == 3
    assert result["decisions"][0]["description"] == "Setting desired instance count to 3."

    message = _fails(env, *simulate, "--from", "soon")
    assert "Error (ValidationException): --from 'soon' is not a duration." in message


def test_describe_shows_each_policys_alarms_with_their_state(
    env: dict[str, str], endpoint: str
) -> None:
    kennel(env, "endpoints", "scaling", "register", endpoint, "--min", "1", "--max", "3")
    kennel(
        env, "endpoints", "scaling", "policy", endpoint, "--name", "calm", "--target", "100000",
    )  # fmt: skip
    time.sleep(2)  # a metric period or two: the autoscaler reads the policy and evaluates
    described = wait_for(lambda: _evaluated(env, endpoint), 15, "the policy's alarms")
    alarms = {alarm["alarm"]: alarm for alarm in described["Alarms"]}
    assert set(alarms) == {"AlarmHigh", "AlarmLow"}
    assert alarms["AlarmHigh"]["state"] == "OK" and alarms["AlarmHigh"]["threshold"] == 100000
    assert alarms["AlarmLow"]["threshold"] == 90000  # 0 a minute is below: counting periods
    assert {alarm["policy_name"] for alarm in alarms.values()} == {"calm"}
    assert alarms["AlarmHigh"]["alarm_name"].startswith(
        f"TargetTracking-endpoint/{endpoint}/variant/AllTraffic-AlarmHigh-"
    )

    human = kennel(env, "endpoints", "scaling", "describe", endpoint).stdout
    high = next(line for line in human.splitlines() if "AlarmHigh" in line)
    assert "calm" in high and " OK " in high
    assert "InvocationsPerInstance > 100000 for 3 periods" in high
    assert "InvocationsPerInstance < 90000 for 15 periods" in human
    kennel(env, "endpoints", "scaling", "deregister", endpoint)


def _evaluated(env: dict[str, str], endpoint: str) -> dict[str, Any] | None:
    """The described target once its alarms have seen a period, else None."""
    [described] = _json(env, "endpoints", "scaling", "describe", endpoint)
    alarms = described["Alarms"]
    return described if alarms and all(a["recent_values"] for a in alarms) else None


def _send_load(server: RunningServer, endpoint: str, seconds: float) -> None:
    """About ten requests a second, then wait until the server recorded every one."""
    runtime = runtime_client(server)
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Body=b"{}"
        )
        answer["Body"].read()
        sent += 1
        time.sleep(0.1)
    with server.client() as api:

        def recorded() -> bool:
            metrics = api.get(f"/api/v1/endpoints/{endpoint}/metrics")
            series = metrics["variants"].get("AllTraffic", {}).get("Invocations", [])
            return sum(point["value"] for point in series) >= sent

        wait_for(recorded, 10, "the load's last metric period")


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
