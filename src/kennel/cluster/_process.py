"""Stopping a child process and everything it started (an instance's script or server)."""

from __future__ import annotations

import os
import signal
import subprocess
import time


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
