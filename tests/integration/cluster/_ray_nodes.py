"""A real multi-node Ray cluster on this machine: one ``ray start --block`` per node.

Each node is a process (and its process group) the test owns, so it can be killed alone
(a node lost) and stopped without ``ray stop``, which would end every Ray on the machine,
other people's included. ``Network`` puts worker nodes in network namespaces of their own
(root only); without it all nodes share this host (Ray then advertises its outward IP).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from tests._server import free_port

RAY = [str(Path(sys.executable).parent / "ray")]
OBJECT_STORE_BYTES = 100 * 2**20


@dataclass
class RayNode:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    pids: set[int] = field(default_factory=set)

    def descendants(self) -> set[int]:
        """The node's processes now (raylet, workers, the servers they started)."""
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            self.pids |= {root.pid, *(p.pid for p in root.children(recursive=True))}
        return set(self.pids)

    def kill(self) -> None:
        """SIGKILL the whole node at once, as a machine that loses power."""
        pids = self.descendants()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (``ray start --block`` stops its node's processes), then SIGKILL."""
        pids = self.descendants()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):  # then SIGKILL below
                self.process.wait(grace)
        self.pids = {p for p in pids if psutil.pid_exists(p)}
        self.kill()


def _ports() -> list[str]:
    """Free ports for the node's servers, all different (held open until all are found)."""
    names = [
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
    ]
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in names:
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(str(s.getsockname()[1]))
    return [part for pair in zip(names, ports, strict=True) for part in pair]


def auth_env(temp_dir: Path) -> dict[str, str]:
    """Token authentication with this cluster's own token (not ``~/.ray/auth_token``, which
    belongs to whoever made it): every node and every driver, the kennel server too."""
    token = temp_dir / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def start_node(
    name: str,
    logs: Path,
    temp_dir: Path,
    *,
    head_address: str | None,
    cpus: int,
    ip: str,
    namespace: str | None = None,
) -> tuple[RayNode, str]:
    """Start one node; returns it and the cluster's address (``127.0.0.1:<gcs port>``)."""
    common = [
        "--block",
        "--node-ip-address",
        ip,
        "--num-cpus",
        str(cpus),
        "--num-gpus",
        "0",
        "--object-store-memory",
        str(OBJECT_STORE_BYTES),
        "--resources",
        json.dumps({f"kennel-test-{name}": 1}),
        "--disable-usage-stats",
        *_ports(),
    ]
    if head_address is None:
        port = free_port()
        address = f"{ip}:{port}"
        args = [
            *RAY,
            "start",
            "--head",
            "--port",
            str(port),
            "--include-dashboard",
            "false",
            "--temp-dir",
            str(temp_dir),
            *common,
        ]
    else:
        address = head_address
        args = [*RAY, "start", "--address", address, *common]
    if namespace is not None:
        args = ["ip", "netns", "exec", namespace, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "KENNEL_"))}
    env.update(auth_env(temp_dir))
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return RayNode(name, process, log), address


def wait_started(node: RayNode, timeout: float = 180) -> None:
    """Block until ``ray start`` says the node runs (it then blocks, watching it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise RuntimeError(f"{node.name} exited:\n{node.log.read_text()[-3000:]}")
        if "Ray runtime started" in node.log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"{node.name} did not start in {timeout:g} s")


@dataclass
class Network:
    """A bridge in this namespace and one network namespace per worker node behind it:
    the nodes are separate hosts as far as addresses and listening sockets go (they still
    share this machine's file system and process table)."""

    prefix: str
    subnet: str
    namespaces: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    def address(self, index: int) -> str:
        """Host ``index`` (0: the bridge, this namespace; 1..: the namespaces)."""
        return f"{self.subnet}.{index + 1}"

    def create(self, hosts: int) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.address(0)}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index in range(1, hosts + 1):
            ns, outer, inner = f"{self.prefix}-h{index}", f"{self.prefix}h{index}a", "eth0"
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", f"{self.prefix}h{index}b")
            _ip("link", "set", f"{self.prefix}h{index}b", "netns", ns)
            _ip("link", "set", outer, "master", self.bridge, "up")
            _ip("-n", ns, "link", "set", f"{self.prefix}h{index}b", "name", inner)
            _ip("-n", ns, "addr", "add", f"{self.address(index)}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def remove(self) -> None:
        for ns in self.namespaces:  # its veth end goes with it, and so the pair
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)


def make_network(hosts: int) -> Network | None:
    """A fresh private network, or None where namespaces cannot be made (not root)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return None
    taken = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    for _ in range(20):
        subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if f"inet {subnet}." not in taken:
            break
    network = Network(f"kt{secrets.token_hex(3)}", subnet)
    try:
        network.create(hosts)
    except subprocess.CalledProcessError:
        network.remove()
        return None
    return network


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)
