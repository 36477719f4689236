"""What ``kennel notebook`` runs: record the instance, run JupyterLab, keep the record true.

Order of events: the workspace and environment are prepared and JupyterLab's presence is
checked before anything is recorded; the instance is created (or started again) Pending;
JupyterLab starts; heartbeats begin; once it answers, the instance is InService with its
URL. It ends on Ctrl-C/SIGTERM/SIGHUP, when JupyterLab exits, or when the server answers
a heartbeat with Stopping (``kennel notebooks stop``) or refuses it; JupyterLab is then
stopped and the instance reported Stopped (or Failed, with the reason).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from kennel._client import KennelClient, path_segment
from kennel._errors import ConflictError, InternalError, KennelError, NotFoundError
from kennel.notebooks._jupyter import (
    JupyterLab,
    last_line,
    start_jupyterlab,
    stop_jupyterlab,
    wait_ready,
)
from kennel.notebooks._workspace import STATE

BASE = "/api/v1/notebook-instances"
MIN_HEARTBEAT_SECONDS = 0.2


class Reporter(Protocol):
    """How the run tells its user what happens (the CLI prints it with rich)."""

    def step(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def ready(self, lab: JupyterLab, record: dict[str, Any]) -> None: ...

    def waiting(self, text: str) -> Any:
        """A context manager shown while JupyterLab starts."""


@dataclass(frozen=True)
class RunOptions:
    name: str
    workspace: Path
    env: dict[str, str]
    ip: str
    port: int
    heartbeat_seconds: float
    start_timeout: float


def heartbeat_interval(configured: float, server_timeout: float) -> float:
    """The configured interval, but at least three heartbeats per server timeout."""
    return max(MIN_HEARTBEAT_SECONDS, min(configured, server_timeout / 3))


class Heartbeats(threading.Thread):
    """Reports "still running" every ``interval`` s; calls ``on_end(reason)`` when the
    server says Stopping or refuses (the instance was stopped, settled or deleted)."""

    def __init__(
        self,
        open_client: Callable[[], KennelClient],
        name: str,
        interval: float,
        on_end: Callable[[str], None],
        warn: Callable[[str], None],
    ) -> None:
        super().__init__(name=f"heartbeats-{name}", daemon=True)
        self.open_client = open_client
        self.path = f"{BASE}/{path_segment(name)}/heartbeat"
        self.interval = interval
        self.on_end = on_end
        self.warn = warn
        self._halt = threading.Event()

    def run(self) -> None:
        with self.open_client() as api:
            while not self._halt.wait(self.interval):
                try:
                    record = api.post(self.path, {})
                except (ConflictError, NotFoundError) as err:
                    self.on_end(err.message)
                    return
                except KennelError as err:  # the server is away: keep JupyterLab, retry
                    self.warn(f"Heartbeat not delivered ({err.message}); retrying.")
                    continue
                if record["status"] == "Stopping":
                    self.on_end(record["status_reason"])
                    return

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)


@contextmanager
def ending_signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP end the run cleanly (handlers restored afterwards)."""
    names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}

    def handle(signum: int, _frame: FrameType | None) -> None:
        on_signal(names.get(signal.Signals(signum), f"signal {signum}"))

    previous = {sig: signal.signal(sig, handle) for sig in names}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class NotebookRun:
    """One run of JupyterLab for a notebook instance that is already recorded (Pending)."""

    def __init__(
        self,
        api: KennelClient,
        open_client: Callable[[], KennelClient],
        options: RunOptions,
        reporter: Reporter,
    ) -> None:
        self.api = api
        self.open_client = open_client
        self.options = options
        self.reporter = reporter
        self.path = f"{BASE}/{path_segment(options.name)}"
        self._ended = threading.Event()
        self._exit_code: int | None = None
        """JupyterLab's exit code when it ended by itself (not stopped by this run)."""
        self.end_reason = ""

    def end(self, reason: str) -> None:
        if not self._ended.is_set():
            self.end_reason = reason
            self._ended.set()

    def run(self) -> dict[str, Any]:
        """Run until told to end; returns the final record (Stopped or Failed)."""
        opts = self.options
        with ending_signals(self.end):
            # Started before any thread of ours exists: the child's preexec_fn runs safely.
            try:
                lab = start_jupyterlab(
                    opts.workspace,
                    opts.env,
                    ip=opts.ip,
                    port=opts.port,
                    log=opts.workspace / STATE / "jupyterlab.log",
                )
            except OSError as error:
                reason = f"JupyterLab could not be started: {error}"
                self._report_end(reason)
                raise InternalError(reason, hint="Check the Python kennel runs with.") from None
            self.reporter.step(f"JupyterLab starting (pid {lab.pid}; log {lab.log}).")
            heartbeats = Heartbeats(
                self.open_client, opts.name, opts.heartbeat_seconds, self.end, self.reporter.warn
            )
            heartbeats.start()
            failure: str | None = None
            try:
                self._serve(lab)
            except KennelError as err:
                failure = err.message
                raise
            finally:
                heartbeats.stop()
                stop_jupyterlab(lab)
                if failure is None and self._exit_code not in (None, 0):
                    failure = f"{self.end_reason} Last log line: {last_line(lab.log)}"
                final = self._report_end(failure)
        return final

    def _serve(self, lab: JupyterLab) -> None:
        with self.reporter.waiting("Waiting for JupyterLab to answer..."):
            wait_ready(lab, self.options.start_timeout, cancelled=self._ended.is_set)
        if self._ended.is_set():
            return
        record = self.api.post(f"{self.path}/heartbeat", {"url": lab.url})
        if record["status"] != "InService":
            self.end(record["status_reason"] or f"The instance is {record['status']}.")
            return
        self.reporter.ready(lab, record)
        while not self._ended.wait(0.5):
            code = lab.process.poll()
            if code is not None:  # shut down from its own menu (0), or crashed
                self._exit_code = code
                self.end(f"JupyterLab exited with code {code}.")

    def _report_end(self, failure: str | None) -> dict[str, Any]:
        """Tell the server JupyterLab stopped (or failed); if it cannot be told, it settles
        the instance Stopped by itself once the heartbeats are overdue."""
        body: dict[str, Any] = {"failure_reason": failure[-2000:]} if failure else {"stopped": True}
        try:
            record: dict[str, Any] = self.api.post(f"{self.path}/heartbeat", body)
        except KennelError as err:
            self.reporter.warn(
                f"Could not record the end with the server ({err.message}); it shows the "
                "instance Stopped once its heartbeats are overdue."
            )
            return {"name": self.options.name, "status": "Unknown", "status_reason": err.message}
        return record
