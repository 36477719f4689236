"""examples/quickstart/stack.yaml as a user runs it: ``kennel up`` (every resource checked,
an image classified through the function URL), ``kennel up`` again (nothing changes),
``kennel down`` (nothing left but the jobs' records)."""

from __future__ import annotations

import functools
import http.server
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image
from tests._postgres import PostgresServer
from tests._server import REPO, RunningServer, start_server, stop_server
from tests.conftest import SERVER_SETTINGS

from kennel._client import KennelClient
from kennel._errors import NotFoundError

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

QUICKSTART = REPO / "examples" / "quickstart" / "stack.yaml"
DATABASE = "KENNEL_DATABASE_URL"


def kennel(server: RunningServer, *args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "kennel", *args, "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise AssertionError(f"kennel {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout)


@pytest.fixture
def image_url(tmp_path: Path) -> Iterator[str]:
    """A digit-sized PNG served on 127.0.0.1 (the test server may fetch from loopback)."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="PNG")
    (tmp_path / "digit.png").write_bytes(buffer.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/digit.png"
    httpd.shutdown()
    httpd.server_close()


def check_iam_and_functions(server: RunningServer, outputs: dict[str, Any]) -> None:
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    policy = iam.get_role_policy(RoleName="quickstart-invoker", PolicyName="invoke-endpoint")
    statement = policy["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert statement["Resource"] == outputs["endpoint_arn"]
    lam = server.session.client("lambda", endpoint_url=server.url, region_name="us-east-1")
    concurrency = lam.get_function_concurrency(FunctionName="quickstart-classify")
    assert concurrency["ReservedConcurrentExecutions"] == 5
    provisioned = lam.get_provisioned_concurrency_config(
        FunctionName="quickstart-classify", Qualifier="live"
    )
    assert provisioned["RequestedProvisionedConcurrentExecutions"] == 2


def classify(function_url: str, image_url: str) -> None:
    """The whole chain: function URL -> function (its role) -> endpoint -> model."""
    answer = httpx.post(function_url, json={"url": image_url}, timeout=120)
    assert answer.status_code == 200, answer.text
    (logits,) = answer.json()  # a batch of one image: the 10 digits' logits
    assert len(logits) == 10, logits


def restarted(server: RunningServer) -> tuple[RunningServer, KennelClient]:
    """The server stopped (SIGTERM) and started again: same home, database and port."""
    code = stop_server(server)
    assert code == 0, server.log.read_text()[-4000:]
    extra = {
        k: v
        for k, v in server.env.items()
        if k in SERVER_SETTINGS or k in (DATABASE, "KENNEL_ARTIFACT_URL") or k.startswith("FSSPEC_")
    }
    again = start_server(server.home, port=server.port, **extra)
    return again, again.client()


def up_check_and_down(
    server: RunningServer,
    api: KennelClient,
    image_url: str,
    *,
    restarts: list[RunningServer] | None = None,
) -> None:
    """Bring the quickstart up, check every resource and the whole chain, ``up`` again;
    given ``restarts``, stop the server and start it again on the same home and database
    first (everything must come back from the records), adding the new one to the list;
    then ``down``."""
    try:
        first = kennel(server, "up", str(QUICKSTART))
        resources = first["resources"]
        assert {s["action"] for s in first["steps"]} == {"create"}, first["steps"]
        outputs = first["outputs"]
        assert outputs["endpoint"] == "quickstart"

        train = api.get(f"/api/v1/training-jobs/{resources['training_jobs.train']['physical']}")
        assert (train["status"], train["instance_count"]) == ("Completed", 2)
        tuning = api.get(f"/api/v1/tuning-jobs/{resources['tuning_jobs.hpo']['physical']}")
        declared = yaml.safe_load(QUICKSTART.read_text())
        trials = declared["tuning_jobs"]["hpo"]["max_training_jobs"]
        assert tuning["counters"]["completed"] == trials
        best = tuning["best_training_job"]["hyperparameters"]
        assert train["hyperparameters"]["lr"] == str(best["lr"])  # from the best trial
        epochs = declared["training_jobs"]["train"]["hyperparameters"]["epochs"]
        assert train["hyperparameters"]["epochs"] == str(epochs)  # the block's own wins
        assert api.get("/api/v1/endpoints/quickstart")["status"] == "InService"
        check_iam_and_functions(server, outputs)
        classify(outputs["function_url"], image_url)

        if restarts is not None:
            server, api = restarted(server)
            restarts.append(server)
            # Its instances start again from the records: SystemUpdating, then InService.
            deadline = time.monotonic() + 180
            while (status := api.get("/api/v1/endpoints/quickstart")["status"]) != "InService":
                assert status == "SystemUpdating" and time.monotonic() < deadline, status
                time.sleep(0.5)
            check_iam_and_functions(server, outputs)
            classify(outputs["function_url"], image_url)

        again = kennel(server, "up", str(QUICKSTART))
        assert {s["action"] for s in again["steps"]} == {"none"}, again["steps"]
    finally:
        gone = kennel(server, "down", str(QUICKSTART))
    assert {s["address"] for s in gone["steps"]} == set(first["resources"])
    for path in (
        "/api/v1/endpoints/quickstart",
        f"/api/v1/models/{resources['models.classifier']['physical']}",
        "/api/v1/datasets/quickstart-digits",
        "/api/v1/stacks/quickstart",
    ):
        with pytest.raises(NotFoundError):
            api.get(path)
    lam = server.session.client("lambda", endpoint_url=server.url, region_name="us-east-1")
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]].count(
        "quickstart-classify"
    ) == 0


def test_quickstart_up_again_and_down(
    server: RunningServer, api: KennelClient, image_url: str
) -> None:
    up_check_and_down(server, api, image_url)


@pytest.fixture
def s3_store() -> Iterator[dict[str, str]]:
    """An S3 bucket on moto's local S3 endpoint (AWS itself is not here), as the settings
    that point a server's artifact store at it: fsspec reads FSSPEC_S3_* for s3fs."""
    moto_server = pytest.importorskip("moto.server")
    fsspec = pytest.importorskip("fsspec")
    endpoint = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    endpoint.start()
    host, port = endpoint.get_host_and_port()
    settings = {
        "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}",
        "FSSPEC_S3_KEY": "testing",
        "FSSPEC_S3_SECRET": "testing",
    }
    fs = fsspec.filesystem(
        "s3", endpoint_url=settings["FSSPEC_S3_ENDPOINT_URL"], key="testing", secret="testing"
    )
    fs.mkdir("kennel-artifacts")
    try:
        yield {**settings, "KENNEL_ARTIFACT_URL": "s3://kennel-artifacts/kennel"}
    finally:
        endpoint.stop()


@pytest.mark.slow
def test_quickstart_on_postgresql_and_s3_survives_a_restart(
    postgres: PostgresServer, s3_store: dict[str, str], tmp_path: Path, image_url: str
) -> None:
    """The scale-out set-up: records in PostgreSQL (KENNEL_DATABASE_URL), artifacts in S3
    (KENNEL_ARTIFACT_URL), the server stopped and started again half-way: everything comes
    back from the records, and every artifact was written to and read from the bucket."""
    url = postgres.create_database("quickstart")
    server = start_server(tmp_path / "home", **SERVER_SETTINGS, **s3_store, **{DATABASE: url})
    servers = [server]
    try:
        with server.client() as api:
            status = api.get("/api/v1/status")
            assert "postgresql" in json.dumps(status), status
            up_check_and_down(server, api, image_url, restarts=servers)
        assert not (tmp_path / "home" / "artifacts").exists()  # nothing went to a local folder
    finally:
        codes = [stop_server(s) for s in servers]
    assert codes[-1] == 0, servers[-1].log.read_text()[-4000:]
