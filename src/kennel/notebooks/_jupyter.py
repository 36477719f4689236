"""JupyterLab as a child process: started on a free port with a random token, waited for,
stopped with its kernels.

The token travels in ``JUPYTER_TOKEN`` (the environment is private to the user; a command
line is not). JupyterLab gets its own session, so a Ctrl-C in the terminal reaches
``kennel notebook`` alone, which then stops it with SIGTERM (JupyterLab's clean shutdown:
kernels first). On Linux it is also told to receive SIGTERM when ``kennel notebook`` dies,
so a ``kill -9`` of the command does not leave JupyterLab running unrecorded.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from kennel._errors import InternalError, ValidationError

PR_SET_PDEATHSIG = 1
WILDCARDS = ("0.0.0.0", "::", "")


def require_jupyterlab() -> None:
    """Refuse early, naming the extra to install, when JupyterLab or ipykernel is missing."""
    for module in ("jupyterlab", "ipykernel"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValidationError(
                f"{module} is not installed in this Python ({sys.executable}); "
                "kennel notebook needs JupyterLab and a Python kernel.",
                hint="Install them with: pip install 'kennel[notebook]'",
            ) from exc


def url_host(ip: str) -> str:
    """How a browser on this machine reaches a server bound to ``ip``."""
    if ip in WILDCARDS:
        return "127.0.0.1"
    return f"[{ip}]" if ":" in ip else ip


@dataclass
class JupyterLab:
    process: subprocess.Popen[bytes]
    base_url: str
    """``http://host:port`` (no path, no token)."""
    token: str
    log: Path

    @property
    def url(self) -> str:
        """The lab's URL without its token: what the server records."""
        return f"{self.base_url}/lab"

    @property
    def url_with_token(self) -> str:
        return f"{self.url}?token={self.token}"

    @property
    def pid(self) -> int:
        return self.process.pid


def start_jupyterlab(
    workspace: Path,
    env: Mapping[str, str],
    *,
    ip: str,
    port: int,
    log: Path,
    python: str = sys.executable,
) -> JupyterLab:
    """Start JupyterLab serving ``workspace``; it is not ready until ``wait_ready``."""
    token = secrets.token_urlsafe(32)
    command = [
        python,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # the port asked for, or a clear failure
        f"--ServerApp.root_dir={workspace}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # JupyterLab refuses root unless told; whoever runs kennel as root chose to.
        command.append("--allow-root")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env={**env, "JUPYTER_TOKEN": token},
            cwd=workspace,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent() if sys.platform == "linux" else None,
        )
    return JupyterLab(process, f"http://{url_host(ip)}:{port}", token, log)


def _die_with_parent() -> Callable[[], None]:
    """A preexec_fn asking Linux to SIGTERM the child when this process dies.

    libc is loaded here, before the fork: the child only makes one call.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request was made
            os._exit(1)

    return arm


def wait_ready(
    lab: JupyterLab,
    timeout: float,
    *,
    cancelled: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.25,
) -> None:
    """Block until JupyterLab answers ``GET /api/status`` with its token.

    Raises when it exits first, when ``timeout`` passes, or returns early (quietly) when
    ``cancelled()`` turns true.
    """
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"token {lab.token}"}
    with httpx.Client(timeout=httpx.Timeout(5.0)) as http:
        while time.monotonic() < deadline and not cancelled():
            code = lab.process.poll()
            if code is not None:
                raise InternalError(
                    f"JupyterLab exited with code {code} while starting: {last_line(lab.log)}",
                    hint=f"See its log: {lab.log}",
                )
            try:
                if http.get(f"{lab.base_url}/api/status", headers=headers).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(poll_seconds)
    if not cancelled():
        raise InternalError(
            f"JupyterLab did not answer within {timeout:g} s.",
            hint=f"See its log: {lab.log} (KENNEL_NOTEBOOK_START_TIMEOUT_SECONDS sets the wait).",
        )


def stop_jupyterlab(lab: JupyterLab, timeout: float = 20.0) -> int:
    """SIGTERM (JupyterLab shuts its kernels down), then SIGKILL its process group.

    Kernels run in sessions of their own and also end when JupyterLab does (ipykernel
    watches its parent), so the group kill is only for a JupyterLab that hangs.
    """
    process = lab.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)  # its group id is its pid (start_new_session)
            process.wait(10)
    return int(process.returncode)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def last_line(log: Path, limit: int = 400) -> str:
    """The last non-empty line of a log, for an error message."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][-limit:] if lines else "(empty log)"
