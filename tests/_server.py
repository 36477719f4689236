"""A real kennel server in a subprocess, on a free port, with a temporary home."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.credentials import Credentials

from kennel._client import KennelClient

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kennel_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    """An environment that points kennel and boto3 at a private home and profile files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KENNEL_", "AWS_"))}
    env.pop("RAY_ADDRESS", None)
    env.update(
        KENNEL_HOME=str(home),
        KENNEL_PORT=str(port),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws" / "credentials"),
        AWS_CONFIG_FILE=str(home / "aws" / "config"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class RunningServer:
    url: str
    port: int
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    _session: boto3.Session | None = field(default=None, repr=False)

    @property
    def session(self) -> boto3.Session:
        """A boto3 session with the bootstrap admin's profile, as a user would have."""
        if self._session is None:
            old = {k: os.environ.get(k) for k in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")}
            os.environ["AWS_SHARED_CREDENTIALS_FILE"] = self.env["AWS_SHARED_CREDENTIALS_FILE"]
            os.environ["AWS_CONFIG_FILE"] = self.env["AWS_CONFIG_FILE"]
            try:
                self._session = boto3.Session(profile_name="kennel")
                self._session.get_credentials()  # read the files now, while they are pointed at
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        return self._session

    def credentials(self) -> tuple[str, str]:
        creds = self.session.get_credentials().get_frozen_credentials()
        return creds.access_key, creds.secret_key

    def client(self) -> KennelClient:
        """kennel's own signed client, as the CLI uses it."""
        key, secret = self.credentials()
        return KennelClient(self.url, Credentials(key, secret), "us-east-1")


def start_server(
    home: Path, *, timeout: float = 120.0, port: int | None = None, **extra_env: str
) -> RunningServer:
    """A server on ``port`` (a free one by default: give the old one to restart a server
    where its clients expect it)."""
    port = port or free_port()
    env = kennel_env(home, port, **extra_env)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "test-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kennel", "server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", port, home, env, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()[-4000:]}")
        if (home / "server.json").exists() and _port_open(port):
            return server
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start in {timeout} s:\n{log.read_text()[-4000:]}")


def stop_server(server: RunningServer, timeout: float = 60.0) -> int:
    """SIGTERM, as an init system would; returns the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)
            raise
    return int(server.process.returncode)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
