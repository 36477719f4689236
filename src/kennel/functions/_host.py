"""The function host: one per node, it keeps the template process running.

Used as a Ray actor (like ``endpoints._instance.EndpointInstance``) so a cluster gets a
template on every node, placed and restarted by Ray; it works as a plain object too.
The template runs in its own session (so ``terminate`` can stop it and its forked
environments as one process group) and dies with the actor's process (PDEATHSIG), so a
killed actor never leaves a template or environments behind.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from kennel._settings import without_server_secrets
from kennel.cluster._process import terminate_group
from kennel.functions._environment import WORK_ROOT_ENV, work_root
from kennel.functions._template import libc, set_death_signal

START_TIMEOUT_SECONDS = 60.0
LOG_TAIL_BYTES = 8 * 2**10


class TemplateStartError(RuntimeError):
    """The template exited or stayed silent instead of printing READY."""


class FunctionHost:
    """Starts and stops a node's template; ``start`` answers where environments are spawned."""

    def __init__(self, bind_host: str = "127.0.0.1", work_dir: str | None = None) -> None:
        self.bind_host = bind_host
        self.work = Path(work_dir) if work_dir else work_root()
        self.log_path = self.work / "template.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.port = 0

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> tuple[str, int, int]:
        """Start the template; returns (address, port, pid) once it is accepting spawns."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"the template is already running (pid {self.process.pid})")
        self.work.mkdir(parents=True, exist_ok=True)
        # Environments clear their variables, but /proc/<pid>/environ keeps the template's.
        env = {
            **without_server_secrets(os.environ),
            WORK_ROOT_ENV: str(self.work),
            "MALLOC_ARENA_MAX": "2",
        }
        command = [sys.executable, "-m", "kennel.functions._template", "--host", self.bind_host]
        # Load libc here: preexec_fn runs between fork and exec in a process that may have
        # threads (Ray's), where a dlopen could wait forever on a lock another thread held.
        libc()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                preexec_fn=set_death_signal if sys.platform.startswith("linux") else None,
            )
        self.port = self._read_ready(timeout)
        self.address = "127.0.0.1" if self.bind_host == "127.0.0.1" else _node_ip()
        return self.address, self.port, self.process.pid

    def _read_ready(self, timeout: float) -> int:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        deadline = time.monotonic() + timeout
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.terminate(1.0)
                    raise TemplateStartError(
                        f"the function template printed no READY line within {timeout:g} s; "
                        f"its log:\n{self.log_tail()}"
                    )
                chunk = os.read(stdout.fileno(), 256)
                if not chunk:
                    code = self.process.wait(5)
                    raise TemplateStartError(
                        f"the function template exited with code {code} before it was ready; "
                        f"its log:\n{self.log_tail()}"
                    )
                line += chunk
        stdout.close()
        text = line.decode(errors="replace").strip()
        if not text.startswith("READY "):
            self.terminate(1.0)
            raise TemplateStartError(f"the function template said {text!r} instead of READY")
        return int(text.split()[1])

    def poll(self) -> int | None:
        """None while the template runs, else its exit code."""
        return None if self.process is None else self.process.poll()

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(max(0, self.log_path.stat().st_size - limit))
            return f.read().decode("utf-8", errors="replace")

    def terminate(self, grace_seconds: float = 5.0) -> int | None:
        """Stop the template and every environment it forked (one process group)."""
        return terminate_group(self.process, grace_seconds)


def _node_ip() -> str:
    import ray

    return str(ray.util.get_node_ip_address())
