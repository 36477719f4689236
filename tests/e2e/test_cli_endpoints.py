"""``kennel models``, ``endpoint-configs``, ``endpoints`` and ``invoke`` as a user types them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel
from tests.integration.endpoints.conftest import ECHO_HANDLER

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_model_config_endpoint_invoke_metrics_delete(server: RunningServer, tmp_path: Path) -> None:
    env = server.env
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "version.txt").write_text("cli")
    handler = tmp_path / "inference.py"
    handler.write_text(ECHO_HANDLER)

    made = json.loads(
        kennel(
            env, "models", "create", "cli-echo", "--artifact", str(model_dir),
            "--entry-point", str(handler), "-e", "GREETING=hi", "--json",
        ).stdout
    )  # fmt: skip
    assert made["kind"] == "custom" and made["environment"] == {"GREETING": "hi"}
    assert "cli-echo" in kennel(env, "models", "list").stdout

    config = kennel(
        env, "endpoint-configs", "create", "cli-echo-config",
        "-v", "model=cli-echo,instance-type=ml.t3.medium,count=1",
        "--capture", "100", "--capture-options", "Input", "--capture-max-bytes", "4096",
    )  # fmt: skip
    assert "100% of requests, Input" in config.stdout
    created = kennel(env, "endpoints", "create", "cli-echo-ep", "--config", "cli-echo-config")
    assert "InService" in created.stdout

    request = tmp_path / "request.json"
    request.write_text(json.dumps({"echo": "hello"}))
    answer = json.loads(
        kennel(env, "invoke", "cli-echo-ep", "--file", str(request), "--json").stdout
    )
    assert answer["body"]["echo"] == "hello" and answer["variant"] == "AllTraffic"
    assert answer["latency_ms"] > 0
    human = kennel(env, "invoke", "cli-echo-ep", "--file", str(request)).stdout
    assert "ms, variant AllTraffic" in human

    described = json.loads(kennel(env, "endpoints", "describe", "cli-echo-ep", "--json").stdout)
    assert described["production_variants"][0]["instance_type"] == "ml.t3.medium"
    assert described["data_capture"] == {
        "enable_capture": True,
        "sampling_percentage": 100,
        "capture_options": ["Input"],
        "max_payload_bytes": 4096,
    }
    assert "100% of requests" in kennel(env, "endpoints", "describe", "cli-echo-ep").stdout
    assert "cli-echo-ep" in kennel(env, "endpoints", "list").stdout

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        metrics = json.loads(kennel(env, "endpoints", "metrics", "cli-echo-ep", "--json").stdout)
        series = metrics["variants"].get("AllTraffic", {}).get("Invocations", [])
        if sum(p["value"] for p in series) >= 2:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"no invocations in the metrics: {metrics}")
    table = kennel(env, "endpoints", "metrics", "cli-echo-ep").stdout
    assert "cli-echo-ep / AllTraffic" in table and "│ 1 " in table  # one instance

    refused = kennel(env, "models", "delete", "cli-echo", check=False)
    assert refused.returncode == 1 and "in use" in refused.stderr
    kennel(env, "endpoints", "delete", "cli-echo-ep")
    gone = kennel(env, "endpoints", "describe", "cli-echo-ep", check=False)
    assert gone.returncode == 1 and "Could not find endpoint" in gone.stderr
    kennel(env, "endpoint-configs", "delete", "cli-echo-config")
    kennel(env, "models", "delete", "cli-echo")
