"""The server's first start, restart, status and clean shutdown."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import httpx
import pytest
from tests._server import RunningServer, start_server, stop_server

from kennel._client import KennelClient
from kennel._errors import KennelError


def wait_for_ray(api: KennelClient, timeout: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = api.get("/api/v1/status")
        if info["ray"]["state"] != "starting":
            return dict(info)
        time.sleep(0.5)
    raise AssertionError("Ray did not start")


def test_status_reports_server_ray_and_store(server: RunningServer, api: KennelClient) -> None:
    info = wait_for_ray(api)
    ray = info["ray"]
    assert isinstance(ray, dict)
    assert ray["state"] == "running", ray
    assert ray["mode"] == "local"
    assert ray["nodes"] == 1 and ray["resources"]["CPU"] >= 1
    store = info["store"]
    assert isinstance(store, dict)
    assert store["database"].startswith("sqlite:///")
    assert store["schema_revision"] == store["schema_head"] is not None


def test_bootstrap_writes_a_private_profile(server: RunningServer) -> None:
    creds_file = Path(server.env["AWS_SHARED_CREDENTIALS_FILE"])
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    text = creds_file.read_text()
    key, secret = server.credentials()
    assert "[kennel]" in text and key in text and secret in text
    config = Path(server.env["AWS_CONFIG_FILE"]).read_text()
    assert "[profile kennel]" in config and server.url in config
    assert key.startswith("AKIA") and len(key) == 20 and len(secret) == 40


def test_secret_is_not_stored_in_plain_text(server: RunningServer) -> None:
    _, secret = server.credentials()
    db = server.home / "kennel.db"
    with sqlite3.connect(db) as conn:
        dumped = "\n".join(conn.iterdump())
    assert secret not in dumped
    for path in server.home.rglob("kennel.db*"):
        assert secret.encode() not in path.read_bytes()
    assert stat.S_IMODE((server.home / "master.key").stat().st_mode) == 0o600


@pytest.mark.slow
def test_restart_keeps_account_and_keys_and_sigterm_is_clean(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    try:
        with first.client() as api:
            before = api.get("/api/v1/status")["account"]
        key, secret = first.credentials()
    finally:
        code = stop_server(first)
        assert code == 0, first.log.read_text()[-4000:]
    assert not (home / "server.json").exists()

    second = start_server(home)
    try:
        with KennelClient(second.url, first.session.get_credentials(), "us-east-1") as api:
            after = api.get("/api/v1/status")["account"]
        assert after == before
        assert second.credentials() == (key, secret)
    finally:
        code = stop_server(second)
        assert code == 0, second.log.read_text()[-4000:]
    log = second.log.read_text()
    assert "Traceback" not in log, log[-3000:]


def test_unknown_route_is_an_aws_shaped_404(server: RunningServer, api: KennelClient) -> None:
    response = httpx.get(server.url + "/nowhere")
    assert response.status_code == 403  # unsigned: rejected before routing
    with pytest.raises(KennelError) as caught:
        api.get("/api/v1/nowhere")
    assert caught.value.status == 404
    assert caught.value.aws_code == "UnknownOperationException"
