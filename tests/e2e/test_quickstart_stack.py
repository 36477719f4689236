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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image
from tests._server import REPO, RunningServer

from kennel._client import KennelClient
from kennel._errors import NotFoundError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

QUICKSTART = REPO / "examples" / "quickstart" / "stack.yaml"


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


def test_quickstart_up_again_and_down(
    server: RunningServer, api: KennelClient, image_url: str
) -> None:
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

        # The whole chain: function URL -> function (its role) -> endpoint -> model.
        answer = httpx.post(outputs["function_url"], json={"url": image_url}, timeout=120)
        assert answer.status_code == 200, answer.text
        (logits,) = answer.json()  # a batch of one image: the 10 digits' logits
        assert len(logits) == 10, logits

        again = kennel(server, "up", str(QUICKSTART))
        assert {s["action"] for s in again["steps"]} == {"none"}, again["steps"]
        assert again["outputs"] == outputs
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
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]].count(
        "quickstart-classify"
    ) == 0
