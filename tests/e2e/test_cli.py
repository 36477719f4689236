"""The ``kennel`` command as a user types it, against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests._server import RunningServer, free_port, kennel_env

pytestmark = pytest.mark.e2e


def kennel(
    env: dict[str, str],
    *args: str,
    check: bool = True,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kennel``; ``stdin`` is what is typed (none: no standard input)."""
    result = subprocess.run(
        [sys.executable, "-m", "kennel", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kennel {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def test_datasets_commands(server: RunningServer, tmp_path: Path) -> None:
    env = server.env
    made = json.loads(kennel(env, "datasets", "make-demo", "cli-digits", "--json").stdout)
    assert made["status"] == "Available" and made["num_classes"] == 10

    listed = json.loads(kennel(env, "datasets", "list", "--json").stdout)
    assert "cli-digits" in [d["name"] for d in listed]

    human = kennel(env, "datasets", "describe", "cli-digits").stdout
    assert "cli-digits" in human and "001.zero" in human and "train" in human

    folder = tmp_path / "rendered"
    kennel(env, "datasets", "make-demo", "--output", str(folder), "--image-size", "16")
    assert (folder / "train" / "001.zero").is_dir()
    uploaded = json.loads(
        kennel(env, "datasets", "create", "cli-folder", "--from", str(folder), "--json").stdout
    )
    assert uploaded["total_images"] == made["total_images"]

    kennel(env, "datasets", "delete", "cli-folder")
    kennel(env, "datasets", "delete", "cli-digits")
    assert json.loads(kennel(env, "datasets", "list", "--json").stdout) == [
        d for d in listed if d["name"] != "cli-digits"
    ]


def test_errors_are_one_red_line_with_a_hint(server: RunningServer) -> None:
    result = kennel(server.env, "datasets", "describe", "no-such-set", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error (ResourceNotFound): Data set 'no-such-set' does not exist")
    assert lines[1].strip().startswith("hint:")
    assert "Traceback" not in result.stderr


def test_missing_local_path_is_a_clear_error(server: RunningServer, tmp_path: Path) -> None:
    result = kennel(
        server.env, "datasets", "create", "x", "--from", str(tmp_path / "nope"), check=False
    )
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_status_json(server: RunningServer) -> None:
    info = json.loads(kennel(server.env, "status", "--json").stdout)
    assert info["server"]["state"] == "running"
    assert info["store"]["schema_revision"]


def test_background_server_status_and_stop(tmp_path: Path) -> None:
    env = kennel_env(tmp_path / "home", free_port())
    assert kennel(env, "status", check=False).returncode == 1

    started = kennel(env, "server", "--background")
    assert "running at http://127.0.0.1:" in started.stdout
    try:
        again = kennel(env, "server", "--background")
        assert "already running" in again.stdout
        info = json.loads(kennel(env, "status", "--json").stdout)
        assert info["ray"]["state"] == "running"
        assert kennel(env, "status").stdout.count("running") >= 2
    finally:
        stopped = kennel(env, "server", "stop")
    assert "stopped" in stopped.stdout
    assert not (tmp_path / "home" / "server.json").exists()
    assert "Traceback" not in (tmp_path / "home" / "logs" / "server.log").read_text()
    status = kennel(env, "status", "--json", check=False)
    assert status.returncode == 1
    assert json.loads(status.stdout)["server"]["state"] == "not running"


SCRIPTS = Path(__file__).resolve().parent.parent / "integration" / "training" / "scripts"


@pytest.mark.slow
def test_train_and_jobs_commands(server: RunningServer) -> None:
    env = server.env
    kennel(env, "datasets", "make-demo", "cli-train", "--image-size", "16", "--json")
    run = kennel(
        env,
        "train",
        "--name",
        "cli-job",
        "--dataset",
        "cli-train",
        "--entry-point",
        "sagemaker_style.py",
        "--source-dir",
        str(SCRIPTS),
        "-H",
        "lr=0.2",
        "--metric",
        "test:loss=Test set: Average loss: ([0-9.]+)",
    )
    assert "Test set: Average loss: 0.1250" in run.stdout  # the log was followed
    assert "Completed" in run.stdout and "test:loss" in run.stdout

    described = json.loads(kennel(env, "jobs", "describe", "cli-job", "--json").stdout)
    assert described["status"] == "Completed"
    assert described["hyperparameters"] == {"lr": "0.2"}
    assert "cli-job" in kennel(env, "jobs", "list").stdout
    assert "classes=10 lr=0.2" in kennel(env, "jobs", "logs", "cli-job").stdout
    metrics = json.loads(kennel(env, "jobs", "metrics", "cli-job", "--json").stdout)
    assert [p["value"] for p in metrics["test:loss"]] == [0.5, 0.25, 0.125]

    failed = kennel(
        env,
        "train",
        "--name",
        "cli-fail",
        "--dataset",
        "cli-train",
        "--entry-point",
        "sagemaker_style.py",
        "--source-dir",
        str(SCRIPTS),
        "-H",
        "fail=yes",
        check=False,
    )
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stdout

    refused = kennel(
        env, "train", "--dataset", "cli-train", "--instance-type", "ml.nope", check=False
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error (ValidationException): Unknown instance type")
    assert "ml.m5.xlarge" in kennel(env, "instance-types").stdout


@pytest.mark.slow
def test_train_local_runs_with_no_server(tmp_path: Path) -> None:
    """The EC2 path: the built-in trainer in the foreground, no server anywhere."""
    env = kennel_env(tmp_path / "home", free_port())
    data = tmp_path / "data"
    kennel(env, "datasets", "make-demo", "--output", str(data), "--image-size", "16")
    run = kennel(
        env,
        "train",
        "--local",
        "-c",
        f"train={data / 'train'}",
        "-c",
        f"valid={data / 'valid'}",
        "-H",
        "arch=small-cnn",
        "-H",
        "epochs=1",
        "-H",
        "image-size=16",
        cwd=tmp_path,
    )
    assert "the model is in" in run.stdout
    assert (tmp_path / "model" / "model.pth").exists()
    assert (tmp_path / "model" / "code" / "inference.py").exists()
    assert not (tmp_path / "home" / "server.json").exists()
    serve_and_predict(env, tmp_path / "model", next((data / "test").rglob("*.jpg")))

    bad = kennel(
        env,
        "train",
        "--local",
        "-c",
        f"train={data / 'train'}",
        "-H",
        "lr=-1",
        cwd=tmp_path,
        check=False,
    )
    assert bad.returncode == 2 and "--lr" in bad.stderr


def serve_and_predict(env: dict[str, str], model_dir: Path, image: Path) -> None:
    """`kennel serve-model` alone: the SageMaker hosting contract on a free port."""
    import httpx

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kennel",
            "serve-model",
            "--model-dir",
            str(model_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            if _healthy(f"{url}/ping"):
                break
            assert time.monotonic() < deadline, "the model server never became healthy"
            time.sleep(0.2)
        response = httpx.post(
            f"{url}/invocations",
            content=image.read_bytes(),
            headers={"Content-Type": "image/jpeg", "Accept": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        scores = response.json()
        assert len(scores) == 1 and len(scores[0]) == 10
    finally:
        process.terminate()
        assert process.wait(30) == 0


def _healthy(ping_url: str) -> bool:
    import httpx

    try:
        return httpx.get(ping_url, timeout=2).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False
