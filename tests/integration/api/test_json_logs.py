"""``KENNEL_LOG_FORMAT=json``: the server's whole log is JSON lines, and the request ids
clients get back are the ones in the log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config
from tests._server import start_server, stop_server

from kennel._client import KennelClient

pytestmark = pytest.mark.timeout(300)


def _wait_for_ray(api: KennelClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get("/api/v1/status")["ray"]["state"] != "starting":
            return
        time.sleep(0.25)
    raise AssertionError("Ray did not start")


def test_every_line_is_json_and_request_ids_match_the_clients(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", KENNEL_LOG_FORMAT="json")
    try:
        with server.client() as api:
            _wait_for_ray(api)  # Ray's own log lines are in the log too
            status_id = api.request("GET", "/api/v1/status").headers["x-amzn-RequestId"]
            api.request("GET", "/metrics")
        sts = server.session.client(
            "sts",
            endpoint_url=server.url,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}),
        )
        boto_id = sts.get_caller_identity()["ResponseMetadata"]["RequestId"]
        unsigned = httpx.get(server.url + "/api/v1/status?X-Amz-Security-Token=not-logged")
        unsigned_id = unsigned.headers["x-amzn-RequestId"]
        key, secret = server.credentials()
    finally:
        code = stop_server(server)
    text = server.log.read_text()
    assert code == 0, text[-4000:]

    entries: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"line {number} of the server log is not JSON: {line!r}") from None
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    assert any(e["logger"].startswith("ray") for e in entries)  # Ray's lines are JSON too

    def access(request_id: str) -> dict[str, Any]:
        found = [e for e in entries if e.get("request_id") == request_id]
        assert found, f"request {request_id} is not in the log"
        [line] = [e for e in found if e["logger"] == "kennel.access"]
        return line

    assert access(status_id)["path"] == "/api/v1/status"
    assert access(status_id)["status"] == 200
    assert access(status_id)["principal"].endswith(":user/admin")
    assert access(boto_id)["path"] == "/"
    assert access(unsigned_id)["status"] == 403
    assert access(unsigned_id)["principal"] is None

    # No secret reaches the log: neither the key's secret, nor a signature, nor a token.
    assert key in text  # the bootstrap line names the access key id (not a secret)
    for secret_part in (secret, "Signature=", "AWS4-HMAC-SHA256", "not-logged"):
        assert secret_part not in text
