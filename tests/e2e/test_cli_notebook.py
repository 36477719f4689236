"""``kennel notebook`` as a user runs it: a real JupyterLab whose kernels reach a real server."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from jupyter_client import BlockingKernelClient
from tests._server import REPO, RunningServer, free_port, start_server, stop_server
from tests.e2e.test_cli import kennel

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

START_TIMEOUT = 240.0  # JupyterLab on a busy 2-core machine
URL_LINE = re.compile(r"(http://127\.0\.0\.1:(\d+))/lab\?token=([A-Za-z0-9_\-]+)")
KERNEL_CODE = """
import json, os, boto3, kennel
session = kennel.Session()
print(json.dumps({
    "account": session.account_id(),
    "endpoint": session.endpoint_url,
    "sts": boto3.client("sts").get_caller_identity()["Account"],
    "cwd": os.getcwd(),
}))
"""


def notebook_env(server: RunningServer, tmp_path: Path) -> dict[str, str]:
    """The server's client environment, with Jupyter's own folders kept in ``tmp_path``."""
    jupyter = tmp_path / "jupyter"
    return {
        **server.env,
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
    }


class Notebook:
    """A running ``kennel notebook`` subprocess and what it printed."""

    def __init__(self, env: dict[str, str], name: str, tmp_path: Path, *extra: str) -> None:
        self.name = name
        self.env = env
        self.stdout = tmp_path / f"{name}.out"
        self.stderr = tmp_path / f"{name}.err"
        port = free_port()
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kennel", "notebook", "--name", name, "--no-browser"]
                + ["--port", str(port), *extra],
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.stdout.read_text() + "\n--- stderr ---\n" + self.stderr.read_text()

    def wait_url(self) -> tuple[str, str]:
        """JupyterLab's base URL and token, once the command prints them (bounded)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = URL_LINE.search(self.stdout.read_text())
            if found:
                return found.group(1), found.group(3)
            if self.process.poll() is not None:
                raise AssertionError(f"kennel notebook exited early:\n{self.output()}")
            time.sleep(0.25)
        raise AssertionError(f"no JupyterLab URL in {START_TIMEOUT} s:\n{self.output()}")

    def jupyterlab(self) -> psutil.Process:
        children = psutil.Process(self.process.pid).children()
        labs = [p for p in children if "jupyterlab" in " ".join(p.cmdline())]
        assert len(labs) == 1, children
        return labs[0]

    def describe(self) -> dict[str, Any]:
        result = kennel(self.env, "notebooks", "describe", self.name, "--json")
        record: dict[str, Any] = json.loads(result.stdout)
        return record

    def end(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(
                f"kennel notebook did not end in {timeout} s:\n{self.output()}"
            ) from None


def run_in_kernel(base: str, token: str, runtime_dir: Path, code: str) -> dict[str, Any]:
    """Start a kernel through JupyterLab's REST API and run ``code`` in it (bounded)."""
    headers = {"Authorization": f"token {token}"}
    made = httpx.post(f"{base}/api/kernels", headers=headers, json={"name": "python3"}, timeout=60)
    assert made.status_code == 201, made.text
    kernel_id = made.json()["id"]
    client = BlockingKernelClient(connection_file=str(runtime_dir / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    client.start_channels()
    printed: list[str] = []
    try:
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive(
            code,
            timeout=120,
            output_hook=lambda m: printed.append(m["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        httpx.delete(f"{base}/api/kernels/{kernel_id}", headers=headers, timeout=60)
    result: dict[str, Any] = json.loads("".join(printed).strip().splitlines()[-1])
    return result


def wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and not _zombie(p)]
        time.sleep(0.2)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_notebook_serves_examples_reaches_kennel_and_stops_on_sigterm(
    server: RunningServer, tmp_path: Path
) -> None:
    env = notebook_env(server, tmp_path)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    notebook = Notebook(env, name, tmp_path)
    try:
        base, token = notebook.wait_url()
        assert httpx.get(f"{base}/api/status", params={"token": token}, timeout=30).is_success
        assert httpx.get(f"{base}/api/status", timeout=30).status_code == 403  # token needed

        workspace = server.home / "notebooks" / name  # the default: under the kennel home
        for example in ("scaling/dogs.yaml", "functions/dog_breed/lambda_function.py"):
            shipped = (REPO / "examples" / example).read_bytes()
            assert (workspace / "examples" / example).read_bytes() == shipped
        env_file = (workspace / ".kennel" / "env").read_text()
        assert f"export KENNEL_ENDPOINT_URL={server.url}" in env_file

        seen = run_in_kernel(base, token, tmp_path / "jupyter" / "runtime", KERNEL_CODE)
        account = server.session.client("sts", endpoint_url=server.url).get_caller_identity()
        assert seen["account"] == seen["sts"] == account["Account"]
        assert seen["endpoint"] == server.url and seen["cwd"] == str(workspace)

        record = notebook.describe()
        assert record["status"] == "InService" and record["url"] == f"{base}/lab"
        assert token not in json.dumps(record)
        assert record["workspace"] == str(workspace) and record["cost_usd"] > 0
        assert record["client"]["pid"] == notebook.process.pid
        lab = notebook.jupyterlab()
        family = [lab.pid] + [p.pid for p in lab.children(recursive=True)]
    finally:
        code = notebook.end(signal.SIGTERM)

    assert code == 0, notebook.output()
    assert wait_gone(family) == [], "JupyterLab or a kernel outlived kennel notebook"
    stopped = notebook.describe()
    assert stopped["status"] == "Stopped" and stopped["url"] is None
    assert stopped["running_seconds"] > 0 and stopped["cost_usd"] >= record["cost_usd"]
    assert "cost $" in notebook.stdout.read_text()

    kennel(env, "notebooks", "delete", name)
    listed = json.loads(kennel(env, "notebooks", "list", "--json").stdout)
    assert name not in [n["name"] for n in listed]
    assert workspace.is_dir()  # the user's files outlive the record


def test_missing_jupyterlab_names_the_extra_and_records_nothing(
    server: RunningServer, tmp_path: Path
) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    without_lab = (
        "import sys; sys.modules['jupyterlab'] = None; "
        "from kennel.cli import main; sys.argv = ['kennel', 'notebook', '--name', "
        f"{name!r}, '--no-browser']; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_lab],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error (ValidationException): jupyterlab is not installed")
    assert "pip install 'kennel[notebook]'" in result.stderr and "Traceback" not in result.stderr
    listed = json.loads(kennel(server.env, "notebooks", "list", "--json").stdout)
    assert name not in [n["name"] for n in listed]


def test_a_port_in_use_is_refused_before_anything_is_recorded(server: RunningServer) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = kennel(
            server.env, "notebook", "--name", name, "--no-browser", "--port", str(port), check=False
        )
    assert result.returncode == 1 and "cannot listen on 127.0.0.1" in result.stderr
    assert "--port" in result.stderr  # the hint
    listed = json.loads(kennel(server.env, "notebooks", "list", "--json").stdout)
    assert name not in [n["name"] for n in listed]


@pytest.fixture(scope="module")
def short_bound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server that settles silent notebook instances after 6 s."""
    running = start_server(
        tmp_path_factory.mktemp("kennel-nb-kill"), KENNEL_NOTEBOOK_HEARTBEAT_TIMEOUT_SECONDS="6"
    )
    yield running
    assert stop_server(running) == 0, running.log.read_text()[-4000:]


@pytest.mark.slow  # two JupyterLab starts and a server of its own: ~45 s
def test_kill_9_takes_jupyterlab_down_and_the_record_settles_stopped(
    short_bound: RunningServer, tmp_path: Path
) -> None:
    env = notebook_env(short_bound, tmp_path)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    notebook = Notebook(env, name, tmp_path, "--workspace", str(tmp_path / "ws"))
    try:
        notebook.wait_url()
        lab = notebook.jupyterlab()
        assert notebook.describe()["status"] == "InService"
        time.sleep(3)  # a heartbeat or two (every 2 s against a 6 s bound)
    finally:
        notebook.end(signal.SIGKILL)
    assert wait_gone([lab.pid]) == [], "JupyterLab outlived a kill -9 of kennel notebook"

    deadline = time.monotonic() + 60
    record = notebook.describe()
    while record["status"] != "Stopped" and time.monotonic() < deadline:
        time.sleep(0.5)
        record = notebook.describe()
    assert record["status"] == "Stopped", record
    assert "No heartbeat" in record["status_reason"] and record["cost_usd"] > 0
    assert (tmp_path / "ws" / "examples" / "scaling" / "dogs.yaml").is_file()

    # Started again: a new JupyterLab, the same record, the bill so far kept.
    again = Notebook(env, name, tmp_path)
    try:
        again.wait_url()
        restarted = again.describe()
        assert restarted["status"] == "InService"
        assert restarted["workspace"] == str(tmp_path / "ws")  # the recorded one
    finally:
        assert again.end(signal.SIGINT) == 0, again.output()  # Ctrl-C
    final = again.describe()
    assert final["status"] == "Stopped" and final["cost_usd"] > record["cost_usd"]
