"""One training instance: a Ray actor that runs the entry script in its own process.

The actor holds the instance type's resources on its node; the script runs as a child
process in a fresh session (so a stop reaches the whole process tree) that dies with the
actor's process, its output goes to a log file the server reads by offset.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from kennel._settings import without_server_secrets
from kennel.cluster._process import killed_with_parent, terminate_group

WORK_ROOT_ENV = "KENNEL_JOB_WORK_ROOT"
PYTHON = "{python}"
"""Stands for the node's Python in a command (nodes may install kennel in different places)."""
MAX_LOG_READ = 256 * 2**10
MAX_DEBUG_READ = 2**20


class TrainingInstance:
    """Lives on a Ray worker; every method returns quickly except prepare and upload."""

    monitor: Any = None
    """The profiler's system monitor while the script runs (``start_monitor``)."""

    def __init__(self, job_name: str, host: str, artifact_url: str) -> None:
        root = Path(os.environ.get(WORK_ROOT_ENV) or Path(tempfile.gettempdir()) / "kennel-jobs")
        self.work = root / job_name / host
        shutil.rmtree(self.work, ignore_errors=True)
        for sub in ("input/data", "input/config", "model", "output/data", "checkpoints", "code"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        self.host = host
        self.artifact_url = artifact_url
        self.log_path = self.work / "output" / "log.txt"
        self.log_path.touch()
        self.process: subprocess.Popen[bytes] | None = None

    # Where things are ---------------------------------------------------------

    def paths(self) -> dict[str, str]:
        return {
            "model": str(self.work / "model"),
            "output": str(self.work / "output"),
            "output_data": str(self.work / "output" / "data"),
            "input": str(self.work / "input"),
            "input_config": str(self.work / "input" / "config"),
            "checkpoints": str(self.work / "checkpoints"),
            "code": str(self.work / "code"),
        }

    def node_address(self) -> tuple[str, int]:
        """This node's IP and a free port: what rank 0 offers as MASTER_ADDR/PORT."""
        import ray

        ip = ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind(("", 0))
            port = int(s.getsockname()[1])
        return ip, port

    def network_interface(self) -> str | None:
        """The interface that holds this node's Ray IP: where the other nodes reach it."""
        import psutil
        import ray

        ip = ray.util.get_node_ip_address()
        for name, addresses in psutil.net_if_addrs().items():
            if any(a.address == ip for a in addresses):
                return str(name)
        return None

    # Input ----------------------------------------------------------------------

    def prepare(self, channels: dict[str, str], source_uri: str | None) -> dict[str, str]:
        """Make each channel a local folder and unpack the source; returns the channel paths."""
        return prepare_inputs(self.work, channels, source_uri)

    def write_config(self, hyperparameters: dict[str, str], resource: dict[str, Any]) -> None:
        config = self.work / "input" / "config"
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "resourceconfig.json").write_text(json.dumps(resource))

    # The process ----------------------------------------------------------------

    def start(self, command: list[str], env: dict[str, str], cwd: str | None) -> int:
        full_env = {**without_server_secrets(os.environ), **env}
        command = [sys.executable if part == PYTHON else part for part in command]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=cwd or str(self.work / "code"),
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=killed_with_parent(),
            )
        return self.process.pid

    def poll(self) -> int | None:
        code = None if self.process is None else self.process.poll()
        if code is not None:
            self.stop_monitor()
        return code

    def script_pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    # The profiler and the hook's output ------------------------------------------

    @property
    def debug_dir(self) -> Path:
        """Where the script's hook and this instance's system monitor write."""
        return self.work / "output" / "debug"

    def start_monitor(self, interval_s: float, cpus: int) -> None:
        """Sample this node's and the script's CPU, memory and I/O beside it."""
        from kennel.debugger._system import SystemMonitor

        self.stop_monitor()
        self.debug_dir.mkdir(parents=True, exist_ok=True)
        self.monitor = SystemMonitor(self.debug_dir, self.script_pid(), cpus, interval_s)
        self.monitor.start()

    def stop_monitor(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None

    def read_debug(self, offsets: dict[str, int]) -> dict[str, tuple[bytes, int]]:
        """What each debug file gained past ``offsets`` (by file name), a bounded chunk."""
        chunks: dict[str, tuple[bytes, int]] = {}
        if not self.debug_dir.is_dir():
            return chunks
        for path in sorted(self.debug_dir.glob("*.jsonl")):
            offset = offsets.get(path.name, 0)
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read(MAX_DEBUG_READ)
            if data:
                chunks[path.name] = (data, offset + len(data))
        return chunks

    def read_log(self, offset: int) -> tuple[bytes, int]:
        with self.log_path.open("rb") as f:
            f.seek(offset)
            data = f.read(MAX_LOG_READ)
        return data, offset + len(data)

    def terminate(self, grace_seconds: float) -> int | None:
        """SIGTERM the script's process group, SIGKILL it after the grace period."""
        code = terminate_group(self.process, grace_seconds)
        self.stop_monitor()
        return code

    def failure_file(self) -> str | None:
        """SageMaker's convention: the script's /opt/ml/output/failure becomes FailureReason."""
        path = self.work / "output" / "failure"
        if path.exists():
            text = path.read_text(errors="replace").strip()
            return text[-4000:] or None
        return None

    # Output ----------------------------------------------------------------------

    def upload_model(self, key: str) -> str | None:
        """Pack the model folder as model.tar.gz (files at its root) into the artifact store."""
        model_dir = self.work / "model"
        if not any(model_dir.iterdir()):
            return None
        archive = self.work / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for item in sorted(model_dir.iterdir()):
                tar.add(item, arcname=item.name)
        from kennel.store import ArtifactStore

        store = ArtifactStore(self.artifact_url)
        with archive.open("rb") as src, store.open(key, "wb") as dst:
            shutil.copyfileobj(src, dst, 2**20)
        return store.uri(key)

    def cleanup(self) -> None:
        self.terminate(1.0)
        self.stop_monitor()
        shutil.rmtree(self.work, ignore_errors=True)
        with contextlib.suppress(OSError):  # the job's folder goes once its last host has
            self.work.parent.rmdir()


def prepare_inputs(root: Path, channels: dict[str, str], source_uri: str | None) -> dict[str, str]:
    """Channels into ``root``/input/data/<name>, the source unpacked into ``root``/code (the
    SageMaker layout); returns each channel's local path."""
    local: dict[str, str] = {}
    for name, uri in channels.items():
        target = root / "input" / "data" / name
        _materialize(uri, target)
        local[name] = str(target)
    if source_uri:
        from kennel.datasets import safe_extract

        archive = root / "sourcedir.tar.gz"
        _copy_file(source_uri, archive)
        safe_extract(archive, root / "code")
        archive.unlink()
    return local


def _materialize(uri: str, target: Path) -> None:
    """A local folder is linked (no copy); anything else is fetched through fsspec."""
    if "://" not in uri and Path(uri).is_dir():
        target.symlink_to(Path(uri).resolve(), target_is_directory=True)
        return
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        raise FileNotFoundError(f"input channel {uri} does not exist")
    fs.get(path.rstrip("/") + "/", str(target), recursive=True)


def _copy_file(uri: str, target: Path) -> None:
    import fsspec

    with fsspec.open(uri, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 2**20)
