"""What a server that died without shutting down (SIGKILL, OOM, power) left running.

A server marks every process it starts, directly or through Ray, with its run's id in the
environment (:data:`RUN_ENV`; children inherit it: the local Ray head, its workers, model
servers, function environments, training scripts). Its ``server.json`` records the id
with its pid and start time, and, once Ray is up, the processes under it then: Ray's
agents rewrite their process title over their environment, so the id cannot be read back
from them. The next server on the same home reads that record before it starts anything;
if that server is gone, whatever still carries its id or is one of its recorded processes
is an orphan: Ray's agents outlive a killed head by a minute or more (holding a port and
~100 MB each), and a process that lost its parent (a training script's own children) may
never end. They are stopped before the new server starts its own Ray head.

Only processes on this machine can be found this way; on a cluster, Ray ends a dead
driver's actors and their processes die with them (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import psutil

log = logging.getLogger(__name__)

RUN_ENV = "KENNEL_SERVER_RUN"
"""The environment variable that carries a server run's id to every process it starts."""
_SAME_START = 0.05
"""Seconds two readings of a process's start time may differ and still be one process."""


@dataclass(frozen=True)
class ServerRun:
    """One run of a server, as its ``server.json`` records it."""

    pid: int
    run_id: str
    started: float
    """The process's start time (epoch seconds, as psutil reads it): a pid is reused."""
    processes: tuple[tuple[int, float], ...] = ()
    """Processes it started, as (pid, start time), recorded once Ray was up."""

    @classmethod
    def current(cls, run_id: str) -> ServerRun:
        return cls(os.getpid(), run_id, psutil.Process().create_time())

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ServerRun | None:
        """The run a ``server.json`` describes; None for a record without a run id (an
        older server's) or a malformed one."""
        try:
            processes = tuple((int(p), float(t)) for p, t in record.get("processes", ()))
            return cls(
                int(record["pid"]), str(record["run_id"]), float(record["started"]), processes
            )
        except (KeyError, TypeError, ValueError):
            return None

    def record(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "run_id": self.run_id,
            "started": self.started,
            "processes": [list(p) for p in self.processes],
        }

    def with_descendants(self) -> ServerRun:
        """This run (of this process) with the processes now under it recorded."""
        found = dict(self.processes)
        for child in psutil.Process(self.pid).children(recursive=True):
            try:
                found[child.pid] = child.create_time()
            except psutil.NoSuchProcess:
                continue
        return replace(self, processes=tuple(sorted(found.items())))

    def alive(self) -> bool:
        """True while the run's server process still exists (not merely its pid)."""
        return _same_process(self.pid, self.started, if_hidden=True)


def _same_process(pid: int, started: float, *, if_hidden: bool) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (and not a zombie);
    ``if_hidden`` when we may not look (another user's process)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - started) < _SAME_START
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return if_hidden


def mark_this_run(run_id: str) -> None:
    """Put the run id in this process's environment, for every process started later."""
    os.environ[RUN_ENV] = run_id


def processes_of(run: ServerRun) -> list[psutil.Process]:
    """The processes on this machine, other than this one, that belong to ``run``: they
    carry its id, or they are processes it recorded (same pid, same start time)."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(RUN_ENV) == run.run_id:
                found[process.pid] = process
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # another user's, or gone meanwhile
    for pid, started in run.processes:
        if pid not in found and pid != os.getpid() and _same_process(pid, started, if_hidden=False):
            with contextlib.suppress(psutil.NoSuchProcess):
                found[pid] = psutil.Process(pid)
    return sorted(found.values(), key=lambda p: p.pid)


def stop_leftovers(previous: ServerRun, grace_seconds: float = 3.0) -> list[int]:
    """Stop what a dead server's run left running; the pids stopped.

    Nothing is done while that server still runs (two servers on one home is a mistake
    to report, not to repair by killing one's processes).
    """
    if previous.alive():
        log.warning(
            "the kennel server recorded in this home (pid %d) is still running; "
            "its processes are left alone",
            previous.pid,
        )
        return []
    began = time.monotonic()
    orphans = processes_of(previous)
    if not orphans:
        return []
    # Recorded processes are kennel's and Ray's own (Ray's agents wait a minute on a
    # SIGTERM for a head that is gone): they are killed at once. The rest may be a job's
    # own processes, which get the grace period.
    recorded = {pid for pid, _ in previous.processes}
    for process in orphans:
        _signal(process, "kill" if process.pid in recorded else "terminate")
    _, alive = psutil.wait_procs(orphans, timeout=grace_seconds)
    for process in alive:
        _signal(process, "kill")
    _, stuck = psutil.wait_procs(alive, timeout=5.0)
    pids = [p.pid for p in orphans]
    log.warning(
        "stopped %d process(es) left running by the previous kennel server (pid %d, "
        "which did not shut down cleanly) in %.1f s: %s",
        len(pids),
        previous.pid,
        time.monotonic() - began,
        ", ".join(map(str, pids)),
    )
    for process in stuck:
        log.error("process %d of the previous server did not stop on SIGKILL", process.pid)
    return pids


def _signal(process: psutil.Process, how: str) -> None:
    try:
        process.terminate() if how == "terminate" else process.kill()
    except psutil.NoSuchProcess:
        return
    except psutil.AccessDenied:
        log.warning("not allowed to stop process %d of the previous server", process.pid)
