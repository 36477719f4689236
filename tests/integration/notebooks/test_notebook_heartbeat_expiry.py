"""A notebook instance whose heartbeats stop is shown Stopped once the configured bound
passes, and its bill stops: on a real server with a 2-second bound."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tests._server import RunningServer, start_server, stop_server

from kennel._client import KennelClient
from kennel._errors import ConflictError

BASE = "/api/v1/notebook-instances"
BOUND = 2.0


@pytest.fixture(scope="module")
def short_bound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("kennel-nb-bound"),
        KENNEL_NOTEBOOK_HEARTBEAT_TIMEOUT_SECONDS=str(BOUND),
    )
    yield running
    assert stop_server(running) == 0, running.log.read_text()[-4000:]


@pytest.fixture
def api(short_bound: RunningServer) -> Iterator[KennelClient]:
    with short_bound.client() as client:
        yield client


def wait_status(api: KennelClient, name: str, status: str, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    record: dict[str, object] = api.get(f"{BASE}/{name}")
    while record["status"] != status and time.monotonic() < deadline:
        time.sleep(0.2)
        record = api.get(f"{BASE}/{name}")
    return record


def test_heartbeats_keep_it_in_service_and_silence_stops_it_and_its_bill(
    api: KennelClient,
) -> None:
    made = api.post(BASE, {"name": "silent", "client": {"host": "h", "pid": 4242}})
    assert made["heartbeat_timeout_seconds"] == BOUND
    api.post(f"{BASE}/silent/heartbeat", {"url": "http://127.0.0.1:9999/lab"})
    began = time.monotonic()
    while time.monotonic() - began < 2 * BOUND:  # alive well past one bound
        assert api.post(f"{BASE}/silent/heartbeat", {})["status"] == "InService"
        time.sleep(BOUND / 4)

    # Now it goes quiet, as when `kennel notebook` is killed with -9.
    settled = wait_status(api, "silent", "Stopped", timeout=10 * BOUND)
    assert settled["status"] == "Stopped", settled
    assert "No heartbeat from `kennel notebook` (pid 4242 on h)" in str(settled["status_reason"])
    assert settled["stopped_at"] == settled["last_heartbeat_at"]
    # Billed to the last heartbeat, sent within the last quarter bound of the loop.
    assert float(settled["running_seconds"]) >= 1.5 * BOUND  # type: ignore[arg-type]
    assert float(settled["cost_usd"]) > 0  # type: ignore[arg-type]
    time.sleep(0.5)
    later = api.get(f"{BASE}/silent")
    assert (later["running_seconds"], later["cost_usd"]) == (
        settled["running_seconds"],
        settled["cost_usd"],
    )
    listed = {n["name"]: n["status"] for n in api.get(BASE)["notebook_instances"]}
    assert listed["silent"] == "Stopped"

    with pytest.raises(ConflictError, match="is Stopped"):
        api.post(f"{BASE}/silent/heartbeat", {})  # a late heartbeat is told to end
    assert api.post(f"{BASE}/silent/start", {})["status"] == "Pending"
    assert (
        wait_status(api, "silent", "Stopped", timeout=10 * BOUND)["cost_usd"]
        == (
            settled["cost_usd"]  # a start that never answered adds nothing
        )
    )
