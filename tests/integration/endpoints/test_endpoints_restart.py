"""A server restart brings its endpoints back; a killed server leaves no model server behind."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from tests._server import start_server, stop_server
from tests.integration.endpoints.conftest import Models, runtime_client, wait_for, wait_status

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_endpoints_come_back_after_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    try:
        with first.client() as api:
            endpoint = Models(api, tmp_path).simple("v1")
            pid = api.get(f"/api/v1/endpoints/{endpoint}")["production_variants"][0]["instances"][
                0
            ]["pid"]
    finally:
        assert stop_server(first) == 0
    assert wait_for(lambda: not _pid_alive(pid), 10, "the old model server to stop")

    second = start_server(home)
    try:
        with second.client() as api:
            info = api.get(f"/api/v1/endpoints/{endpoint}")
            assert info["status"] in ("SystemUpdating", "InService")
            info = wait_status(api, endpoint, ("InService",), timeout=120)
            assert info["last_deployment"]["status"] == "Recovered"
            runtime = runtime_client(second)
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="application/json", Body=b"{}"
            )
            assert json.loads(answer["Body"].read())["version"] == "v1"
            pid = info["production_variants"][0]["instances"][0]["pid"]
        second.process.send_signal(signal.SIGKILL)  # no clean shutdown at all
        second.process.wait(30)
        assert wait_for(lambda: not _pid_alive(pid), 30, "the orphaned model server to die")
    finally:
        stop_server(second)
