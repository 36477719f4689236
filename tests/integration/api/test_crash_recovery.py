"""A server killed with SIGKILL while a job trains, an update rolls out and traffic flows,
then started again on the same home and port.

What must hold afterwards: the endpoint serves again (on the config it served before the
update the crash cut short, which says it rolled back), the function answers (a cold
start), the training job is Failed with a reason naming the restart, every resource is
still there, clients saw errors only while the server was down and coming back, and no
process of the first server outlives the start of the second.
"""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from botocore.config import Config
from tests._server import RunningServer, start_server, stop_server
from tests._uploads import upload_sources
from tests.integration.endpoints.conftest import unique, wait_status
from tests.integration.functions.conftest import (
    BASIC_EXECUTION,
    code_zip,
    make_role,
    wait_active,
)

from kennel._client import KennelClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# The echo model of the endpoint tests, plus a version whose model_fn never finishes
# loading: an update to it is still rolling out when the server is killed.
HANDLER = """
import json, os, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "version.txt")) as f:
        version = f.read().strip()
    if version == "never-ready":
        time.sleep(3600)
    return {"version": version}

def input_fn(body, content_type):
    return json.loads(body)

def predict_fn(data, model):
    return {"version": model["version"], "pid": os.getpid()}

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""

FUNCTION = """
import os

def handler(event, context):
    return {"pid": os.getpid(), "echo": event.get("n")}
"""

# A training script that runs until stopped and has a child of its own (in its process
# group, not a Ray process): the kind of process that outlives a killed server.
TRAINING_SCRIPT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
for step in range(100000):
    print(f"step {step}", flush=True)
    time.sleep(0.5)
"""

RECOVERY_BOUND_SECONDS = 240.0
"""How long after the kill each kind of traffic may fail (restart, Ray, a new fleet)."""
TRAFFIC_PAUSE_SECONDS = 0.2


@dataclass
class Traffic:
    """One kind of request sent in a loop in a thread: when each was sent and answered,
    and how it ended ("ok" or the error)."""

    name: str
    send: Callable[[int], None]
    outcomes: list[tuple[float, float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self, max_requests: int = 5000, max_seconds: float = 900.0) -> None:
        def loop() -> None:
            deadline = time.monotonic() + max_seconds
            for n in range(max_requests):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                sent = time.monotonic()
                try:
                    self.send(n)
                    outcome = "ok"
                except Exception as error:  # noqa: BLE001 - every failure is counted
                    outcome = f"{type(error).__name__}: {str(error)[:160]}"
                self.outcomes.append((sent, time.monotonic(), outcome))
                self.stop.wait(TRAFFIC_PAUSE_SECONDS)

        self.thread = threading.Thread(target=loop, name=f"traffic-{self.name}", daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(60)

    def errors(self) -> list[tuple[float, float, str]]:
        return [e for e in self.outcomes if e[2] != "ok"]

    def first_ok_after(self, moment: float) -> float | None:
        """When the first request sent after ``moment`` that succeeded was sent."""
        return next((t for t, _, o in self.outcomes if t >= moment and o == "ok"), None)


def _archive(path: Path, version: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (("version.txt", version), ("code/inference.py", HANDLER)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _model(api: KennelClient, tmp: Path, version: str) -> str:
    name = unique(f"m-{version}")
    archive = _archive(tmp / f"{name}.tar.gz", version)
    uri = api.request("PUT", "/api/v1/uploads/model.tar.gz", upload=archive).json()["uri"]
    api.post("/api/v1/models", {"name": name, "artifact_uri": uri})
    return name


def _config(api: KennelClient, model: str) -> str:
    name = unique("cfg")
    api.post(
        "/api/v1/endpoint-configs",
        {"name": name, "variants": [{"model_name": model, "initial_instance_count": 1}]},
    )
    return name


def _client(server: RunningServer, service: str) -> Any:
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=60)
    return server.session.client(
        service, endpoint_url=server.url, region_name="us-east-1", config=config
    )


def _inventory(server: RunningServer) -> dict[str, list[str]]:
    """Every resource by kind, as names (with the fields a restart must not change)."""
    with server.client() as api:
        found = {
            "datasets": [d["name"] for d in api.get("/api/v1/datasets")["datasets"]],
            "training-jobs": [j["name"] for j in api.get("/api/v1/training-jobs")["training_jobs"]],
            "models": [m["name"] for m in api.get("/api/v1/models")["models"]],
            "endpoint-configs": [
                c["name"] for c in api.get("/api/v1/endpoint-configs")["endpoint_configs"]
            ],
            "endpoints": [
                f"{e['name']} on {e['config_name']}"
                for e in api.get("/api/v1/endpoints")["endpoints"]
            ],
        }
    functions = _client(server, "lambda").list_functions()["Functions"]
    found["functions"] = [f"{f['FunctionName']} {f['Handler']}" for f in functions]
    roles = _client(server, "iam").list_roles()["Roles"]
    found["roles"] = [r["RoleName"] for r in roles]
    return {kind: sorted(names) for kind, names in found.items()}


def _descendants(pid: int) -> set[tuple[int, float]]:
    """(pid, start time) of every process under ``pid``: a pid alone may be reused."""
    found = set()
    for child in psutil.Process(pid).children(recursive=True):
        try:
            found.add((child.pid, child.create_time()))
        except psutil.NoSuchProcess:
            continue
    return found


def _survivors(processes: set[tuple[int, float]]) -> list[str]:
    alive = []
    for pid, started in sorted(processes):
        try:
            process = psutil.Process(pid)
            if process.create_time() != started or process.status() == psutil.STATUS_ZOMBIE:
                continue
            alive.append(f"{pid} {' '.join(process.cmdline())[:100] or process.name()}")
        except psutil.NoSuchProcess:
            continue
    return alive


def _gone(processes: set[tuple[int, float]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _survivors(processes):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {value})")


def _training(api: KennelClient, name: str) -> dict[str, Any]:
    job: dict[str, Any] = api.get(f"/api/v1/training-jobs/{name}")
    return job


def test_a_killed_server_comes_back_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # Work folders inside the test's own: a killed server's instances leave theirs behind.
    env = {
        "KENNEL_ENDPOINT_METRICS_PERIOD_SECONDS": "1",
        "KENNEL_JOB_WORK_ROOT": str(tmp_path / "work" / "jobs"),
        "KENNEL_ENDPOINT_WORK_ROOT": str(tmp_path / "work" / "endpoints"),
        "KENNEL_FUNCTION_WORK_ROOT": str(tmp_path / "work" / "functions"),
    }
    first = start_server(home, **env)
    traffic: list[Traffic] = []
    try:
        with first.client() as api:
            api.post("/api/v1/datasets", {"name": "digits", "demo": {"image_size": 16}})
            script = tmp_path / "forever.py"
            script.write_text(TRAINING_SCRIPT)
            source = upload_sources(first, tmp_path, script)
            job = unique("crash-job")
            api.post(
                "/api/v1/training-jobs",
                {
                    "name": job,
                    "dataset": "digits",
                    "entry_point": "forever.py",
                    "source_uri": source,
                },
            )
            serving_config = _config(api, _model(api, tmp_path, "v1"))
            endpoint = unique("ep")
            api.post("/api/v1/endpoints", {"name": endpoint, "config_name": serving_config})
            wait_status(api, endpoint, ("InService",), timeout=180)
            role = make_role(_client(first, "iam"), unique("fn-role"), BASIC_EXECUTION)
            function = unique("fn")
            _client(first, "lambda").create_function(
                FunctionName=function,
                Runtime="python3.11",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": code_zip({"app.py": FUNCTION})},
            )
            wait_active(_client(first, "lambda"), function)
            _wait(
                lambda: (
                    "step 3"
                    in api.get(f"/api/v1/training-jobs/{job}/logs", params={"host": "algo-1"})[
                        "data"
                    ]
                ),
                180,
                "the training script to run",
            )
            # An update that can never finish: its new fleet never answers /ping.
            next_config = _config(api, _model(api, tmp_path, "never-ready"))
            api.post(f"/api/v1/endpoints/{endpoint}/update", {"config_name": next_config})
            assert api.get(f"/api/v1/endpoints/{endpoint}")["status"] == "Updating"

        runtime, lambdas = _client(first, "sagemaker-runtime"), _client(first, "lambda")
        traffic += [
            Traffic(
                "invoke_endpoint",
                lambda n: runtime.invoke_endpoint(
                    EndpointName=endpoint, ContentType="application/json", Body=b"{}"
                )["Body"].read(),
            ),
            Traffic(
                "lambda_invoke",
                lambda n: _lambda_ok(
                    lambdas.invoke(FunctionName=function, Payload=json.dumps({"n": n}))
                ),
            ),
        ]
        for kind in traffic:
            kind.start()
        _wait(lambda: all(len(k.outcomes) >= 5 for k in traffic), 60, "traffic to flow")
        before = _inventory(first)
        old_processes = _descendants(first.process.pid)

        killed_at = time.monotonic()
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
        second = start_server(home, port=first.port, **env)
        try:
            # The new server stopped what the killed one left before starting its own.
            assert _gone(old_processes, 15), _survivors(old_processes)
            recovered_at = {
                kind.name: _wait(
                    lambda k=kind: k.first_ok_after(killed_at),
                    RECOVERY_BOUND_SECONDS,
                    f"{kind.name} to succeed after the restart",
                )
                for kind in traffic
            }
            time.sleep(3)  # traffic keeps flowing on the recovered server
            for kind in traffic:
                kind.finish()
            _check_traffic(traffic, killed_at, recovered_at)

            with second.client() as api:
                info = wait_status(api, endpoint, ("InService", "Failed"), timeout=60)
                assert info["status"] == "InService", info
                assert info["config_name"] == serving_config
                assert info["pending_config_name"] is None
                assert "rolled back" in info["failure_reason"], info
                assert "server stopped during the update" in info["failure_reason"]
                assert info["last_deployment"]["status"] == "RolledBack"
                assert info["last_deployment"]["serving_config_name"] == serving_config
                assert info["production_variants"][0]["current_instance_count"] == 1

                failed = _training(api, job)
                assert failed["status"] == "Failed", failed
                reason = failed["failure_reason"]
                assert "server stopped while the job ran (restarted at" in reason, reason
                assert failed["secondary_status"] == "Failed"
                assert failed["status_transitions"][-1]["status"] == "Failed"
                assert failed["ended_at"] is not None
            answer = json.loads(
                _client(second, "sagemaker-runtime")
                .invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=b"{}")[
                    "Body"
                ]
                .read()
            )
            assert answer["version"] == "v1"
            config = _client(second, "lambda").get_function_configuration(FunctionName=function)
            assert config["State"] == "Active"

            after = _inventory(second)
            assert after == before
        finally:
            code = stop_server(second)
        log = second.log.read_text()
        assert code == 0, log[-4000:]
        assert "stopped" in log and "left running by the previous kennel server" in log
        assert "Traceback" not in log, log[-4000:]
    finally:
        for kind in traffic:
            kind.finish()
        stop_server(first)  # only when the test failed before the kill: cleanly
    assert _gone(old_processes, 15), _survivors(old_processes)
    with sqlite3.connect(home / "kennel.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _lambda_ok(response: dict[str, Any]) -> None:
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        raise RuntimeError(f"function error: {payload[:200]!r}")


def _check_traffic(
    traffic: list[Traffic], killed_at: float, recovered_at: dict[str, float]
) -> None:
    """Errors only between the kill and each kind's first success after it, few of them."""
    for kind in traffic:
        errors = kind.errors()
        early = [e for e in errors if e[1] < killed_at]  # answered before the kill
        late = [e for e in errors if e[0] > recovered_at[kind.name]]
        assert not early, f"{kind.name} failed before the kill: {early[:3]}"
        assert not late, f"{kind.name} failed after it had recovered: {late[:3]}"
        outage = recovered_at[kind.name] - killed_at
        assert outage < RECOVERY_BOUND_SECONDS
        assert len(errors) <= outage / TRAFFIC_PAUSE_SECONDS + 5, (kind.name, len(errors))
        ok_after = sum(1 for t, _, o in kind.outcomes if t > recovered_at[kind.name] and o == "ok")
        assert ok_after >= 3, f"{kind.name}: too little traffic after recovery"
        print(
            f"{kind.name}: {len(kind.outcomes)} requests, {len(errors)} failed, "
            f"outage {outage:.1f} s; errors seen: {sorted({o.split(':')[0] for _, _, o in errors})}"
        )
