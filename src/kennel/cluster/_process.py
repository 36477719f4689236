"""Stopping a child process and everything it started (an instance's script or server)."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group ``pid`` leads (children started with a new session)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return


def terminate_group(proc: subprocess.Popen[bytes] | None, grace_seconds: float) -> int | None:
    """SIGTERM the process's group, SIGKILL it after the grace period; its exit code."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is None:
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return proc.returncode


def killed_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when the process starting it
    dies (Linux; None elsewhere).

    Ray ends an actor's worker, not the processes it started, and a child in its own
    session is out of reach of its group: without this it would outlive its instance
    (a server killed outright would leave it running). libc is loaded here, before the
    fork, so the child only makes the one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = _libc().prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))

    return preexec


@functools.cache
def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)
