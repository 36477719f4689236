"""One endpoint instance: a Ray actor that runs a model server process.

The actor holds the instance type's CPUs on its node, fetches the model from the artifact
store, unpacks it as SageMaker does (into the instance's model dir) and starts
``python -m kennel serve-model`` on a free port with the hosting contract's environment.
The model server is a child process in its own session, so an instance's process can be
killed (and is replaced) without taking the actor's bookkeeping with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from kennel._settings import without_server_secrets
from kennel.cluster._process import terminate_group

WORK_ROOT_ENV = "KENNEL_ENDPOINT_WORK_ROOT"
MAX_LOG_TAIL = 8 * 2**10
NODE_ADDRESS = "node"
"""A ``bind_host`` that means this node's Ray IP: the address the gateway reaches it on
(the model server is not offered on the node's other interfaces)."""


class EndpointInstance:
    """Lives on a Ray worker; ``start`` is the slow call (download, unpack, spawn)."""

    def __init__(self, endpoint: str, instance_id: str, artifact_url: str) -> None:
        root = Path(
            os.environ.get(WORK_ROOT_ENV) or Path(tempfile.gettempdir()) / "kennel-endpoints"
        )
        self.work = root / endpoint / instance_id
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.model_dir = self.work / "model"
        self.log_path = self.work / "server.log"
        self.artifact_url = artifact_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(
        self,
        model_uri: str,
        onnx_uri: str | None,
        environment: dict[str, str],
        bind_host: str,
    ) -> tuple[str, int, int]:
        """Fetch and unpack the model, start its server; returns (address, port, pid)."""
        from kennel.datasets import safe_extract

        archive = self.work / "model.tar.gz"
        _copy(model_uri, archive)
        self.model_dir.mkdir()
        safe_extract(archive, self.model_dir)
        archive.unlink()
        if onnx_uri:
            _copy(onnx_uri, self.model_dir / "model.onnx")
        if bind_host == NODE_ADDRESS:
            bind_host = _node_ip()
        port = _free_port(bind_host)
        env = {
            **without_server_secrets(os.environ),
            **environment,
            "SAGEMAKER_BIND_TO_PORT": str(port),
        }
        env.setdefault("PYTHONUNBUFFERED", "1")
        command = [
            sys.executable,
            "-m",
            "kennel",
            "serve-model",
            "--model-dir",
            str(self.model_dir),
            "--host",
            bind_host,
            "--port",
            str(port),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=str(self.work),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        address = "127.0.0.1" if bind_host == "127.0.0.1" else _node_ip()
        return address, port, self.process.pid

    def node(self) -> dict[str, str]:
        """The Ray node this instance runs on: its id and IP address."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "node_ip": _node_ip()}

    def poll(self) -> int | None:
        """None while the model server runs, else its exit code."""
        return None if self.process is None else self.process.poll()

    def usage(self) -> tuple[float, int]:
        """The model server's CPU seconds so far and resident bytes (with its children)."""
        import psutil

        if self.process is None or self.process.poll() is not None:
            return 0.0, 0
        try:
            root = psutil.Process(self.process.pid)
            processes = [root, *root.children(recursive=True)]
            cpu = 0.0
            rss = 0
            for process in processes:
                with contextlib.suppress(psutil.Error):  # a child may exit meanwhile
                    times = process.cpu_times()
                    cpu += times.user + times.system
                    rss += process.memory_info().rss
        except psutil.Error:
            return 0.0, 0
        return cpu, rss

    def log_tail(self, limit: int = MAX_LOG_TAIL) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(max(0, self.log_path.stat().st_size - limit))
            return f.read().decode("utf-8", errors="replace")

    def terminate(self, grace_seconds: float = 5.0) -> int | None:
        """SIGTERM the server's process group; SIGKILL after the grace period."""
        return terminate_group(self.process, grace_seconds)

    def cleanup(self) -> None:
        self.terminate(2.0)
        shutil.rmtree(self.work, ignore_errors=True)
        with contextlib.suppress(OSError):  # the endpoint's folder goes with its last instance
            self.work.parent.rmdir()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the actor's process dies (Linux).

    Ray kills an actor's worker process, not the processes it started; without this a
    model server would outlive its instance (and a server killed with SIGKILL would leave
    every model server running).
    """
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _copy(uri: str, target: Path) -> None:
    import fsspec

    with fsspec.open(uri, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 2**20)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _node_ip() -> str:
    import ray

    return str(ray.util.get_node_ip_address())
