"""Failures and updates: a killed instance, a broken update, a canary that trips its alarm."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.integration.endpoints.conftest import Models, wait_for, wait_status

from kennel._client import KennelClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _call(runtime: Any, endpoint: str, payload: dict[str, Any] | None = None) -> str:
    """One invocation's outcome: the model version, or the AWS error code."""
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            ContentType="application/json",
            Body=json.dumps(payload or {}).encode(),
        )
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return str(json.loads(response["Body"].read())["version"])


class Load:
    """Invokes an endpoint in a loop (bounded in count and time) and tallies outcomes."""

    def __init__(self, runtime: Any, endpoint: str, *, limit: int = 5000, seconds: float = 240):
        self.runtime, self.endpoint = runtime, endpoint
        self.outcomes: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limit, seconds), daemon=True)

    def _run(self, limit: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and len(self.outcomes) < limit:
            if time.monotonic() > deadline:
                break
            started = time.monotonic()
            outcome = _call(self.runtime, self.endpoint)
            self.outcomes.append((time.monotonic() - started, outcome))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()

    def tally(self) -> Counter[str]:
        return Counter(outcome for _, outcome in self.outcomes)


def test_a_killed_instance_is_replaced_and_its_request_fails_fast(
    models: Models, runtime: Any, api: KennelClient
) -> None:
    endpoint = models.simple("v1", count=2)
    before = api.get(f"/api/v1/endpoints/{endpoint}")["production_variants"][0]["instances"]
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        slow = pool.submit(_call, runtime, endpoint, {"sleep": 30})
        busy = wait_for(lambda: _busy_instance(api, endpoint), 10, "the slow request to start")
        os.kill(busy["pid"], signal.SIGKILL)
        outcome = slow.result(timeout=20)
        elapsed = time.monotonic() - started
    assert outcome == "ServiceUnavailable"  # a 5xx, at once: not after the model's 30 s
    assert elapsed < 10
    # The other instance goes on serving while the dead one is replaced.
    assert {_call(runtime, endpoint) for _ in range(10)} == {"v1"}

    def replaced() -> list[dict[str, Any]] | None:
        variant = api.get(f"/api/v1/endpoints/{endpoint}")["production_variants"][0]
        healthy = [i for i in variant["instances"] if i["healthy"]]
        return healthy if len(healthy) == 2 else None

    now = wait_for(replaced, 120, "a replacement instance")
    assert busy["id"] not in {i["id"] for i in now}
    assert {i["id"] for i in before} & {i["id"] for i in now}  # the survivor stayed
    assert Counter(_call(runtime, endpoint) for _ in range(20)) == {"v1": 20}


def _busy_instance(api: KennelClient, endpoint: str) -> dict[str, Any] | None:
    variant = api.get(f"/api/v1/endpoints/{endpoint}")["production_variants"][0]
    busy = [i for i in variant["instances"] if i["outstanding"]]
    return busy[0] if busy else None


def test_an_update_to_a_broken_model_rolls_back_and_keeps_serving(
    models: Models, runtime: Any, api: KennelClient
) -> None:
    endpoint = models.simple("v1")
    old_config = api.get(f"/api/v1/endpoints/{endpoint}")["config_name"]
    broken = models.config({"model_name": models.model("broken")})
    with Load(runtime, endpoint) as load:
        api.post(f"/api/v1/endpoints/{endpoint}/update", {"config_name": broken})
        info = wait_status(api, endpoint, ("InService",), timeout=120)
    assert info["config_name"] == old_config
    assert info["pending_config_name"] is None
    assert "rolled back" in info["failure_reason"]
    assert "broken on purpose" in info["failure_reason"]
    assert info["last_deployment"]["status"] == "RolledBack"
    assert load.tally() == {"v1": len(load.outcomes)}, load.tally()
    assert len(load.outcomes) > 5


def test_a_canary_that_returns_errors_is_rolled_back_by_its_alarm(
    models: Models, runtime: Any, api: KennelClient
) -> None:
    endpoint = models.simple("v1")
    old_config = api.get(f"/api/v1/endpoints/{endpoint}")["config_name"]
    failing = models.config({"model_name": models.model("failing")})
    deployment = {
        "type": "canary",
        "canary_percent": 30,
        "wait_seconds": 60,
        "alarms": {"max_error_rate": 0.1, "min_invocations": 3},
    }
    with Load(runtime, endpoint) as load:
        api.post(
            f"/api/v1/endpoints/{endpoint}/update",
            {"config_name": failing, "deployment": deployment},
        )
        info = wait_status(api, endpoint, ("InService",), timeout=120)
        rolled_back_at = len(load.outcomes)
        wait_for(lambda: len(load.outcomes) >= rolled_back_at + 20, 30, "traffic after rollback")
    story = info["last_deployment"]
    assert story["status"] == "RolledBack"
    assert any("30% of traffic" in e["message"] for e in story["events"])
    assert "5XX rate" in info["failure_reason"]
    assert info["config_name"] == old_config
    tally = load.tally()
    # Every request got an answer: v1's, or the canary's own error while it had traffic.
    assert set(tally) <= {"v1", "ModelError"}, tally
    assert tally["ModelError"] >= 3
    assert all(seconds < 10 for seconds, _ in load.outcomes)
    after = [outcome for _, outcome in load.outcomes[rolled_back_at:]]
    assert after and set(after) == {"v1"}


def test_a_linear_update_moves_all_traffic_to_the_new_model(
    models: Models, runtime: Any, api: KennelClient
) -> None:
    endpoint = models.simple("v1")
    new = models.config({"model_name": models.model("v2")})
    deployment = {
        "type": "linear",
        "linear_step_percent": 50,
        "wait_seconds": 1.5,
        "alarms": {"max_error_rate": 0.1},
    }
    with Load(runtime, endpoint) as load:
        api.post(
            f"/api/v1/endpoints/{endpoint}/update", {"config_name": new, "deployment": deployment}
        )
        info = wait_status(api, endpoint, ("InService",), timeout=120)
        done_at = len(load.outcomes)
        wait_for(lambda: len(load.outcomes) >= done_at + 10, 30, "traffic after the update")
    assert info["config_name"] == new
    assert info["failure_reason"] is None
    assert info["last_deployment"]["status"] == "Succeeded"
    messages = [e["message"] for e in info["last_deployment"]["events"]]
    assert any("50% of traffic" in m for m in messages)
    assert set(load.tally()) == {"v1", "v2"}  # both served during the shift, nothing failed
    assert {outcome for _, outcome in load.outcomes[done_at:]} == {"v2"}
