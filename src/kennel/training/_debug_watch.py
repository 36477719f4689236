"""A job's debugger and profiler output, on the server's side: copy, evaluate, keep.

The job runner calls ``drain`` on each poll: it reads what the hook and the instance's
system monitor appended since last time (by offset, like the log), appends it to the
server's copy (``<home>/jobs/<job>/debug/<host>/``) and feeds complete lines to the
``Trial`` the rules read. ``evaluate`` runs the rules at most every ``RULE_SECONDS``
(and once more, final, when the job ends); statuses go to the job's row when they
change. ``upload`` puts the copy into the artifact store beside the job's output, so the
data outlives the server's folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from kennel.debugger._engine import RuleEngine, RuleState
from kennel.debugger._spec import DebuggerConfig, ProfilerConfig
from kennel.debugger._trial import Trial, read_trial

log = logging.getLogger(__name__)

RULE_SECONDS = 2.0
DEBUG_FOLDER = "debug"
"""Under an instance's ``output`` folder, where the hook and the monitor write."""


def debug_configs(job: dict[str, Any]) -> tuple[DebuggerConfig | None, ProfilerConfig]:
    """The job's stored configuration (jobs older than the debugger have none: off)."""
    debugger = DebuggerConfig(**job["debugger"]) if job.get("debugger") else None
    profiler = (
        ProfilerConfig(**job["profiler"]) if job.get("profiler") else ProfilerConfig(enabled=False)
    )
    return debugger, profiler


class DebugWatch:
    def __init__(self, job: dict[str, Any], local_root: Path) -> None:
        debugger, profiler = debug_configs(job)
        self.engine = RuleEngine(debugger.rules if debugger else [], profiler.rules)
        self.enabled = debugger is not None or profiler.enabled
        self.root = local_root
        self.trial = Trial()
        self.offsets: dict[str, dict[str, int]] = {}
        self.partial: dict[tuple[str, str], str] = {}
        self._last_evaluation = 0.0

    def drain(self, hosts: list[str], actors: list[Any]) -> None:
        """Copy every host's new output; a failure to read one is logged, not fatal."""
        import ray

        if not self.enabled or not actors:
            return
        refs = [
            a.read_debug.remote(self.offsets.get(h, {})) for h, a in zip(hosts, actors, strict=True)
        ]
        for host, ref in zip(hosts, refs, strict=True):
            try:
                chunks: dict[str, tuple[bytes, int]] = ray.get(ref, timeout=30)
            except Exception as exc:  # noqa: BLE001 - debug data must never fail a job
                log.warning("reading debug output of %s failed: %s", host, exc)
                continue
            for filename, (data, offset) in chunks.items():
                self._append(host, filename, data)
                self.offsets.setdefault(host, {})[filename] = offset

    def _append(self, host: str, filename: str, data: bytes) -> None:
        if not data:
            return
        folder = self.root / host
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / filename).open("ab") as f:
            f.write(data)
        buffered = self.partial.get((host, filename), "") + data.decode("utf-8", "replace")
        *lines, rest = buffered.split("\n")
        self.partial[(host, filename)] = rest
        self.trial.add(host, filename, lines)

    def evaluate(self, *, final: bool = False) -> tuple[bool, list[RuleState]]:
        """(statuses changed, rules that fired now with StopTraining)."""
        now = time.monotonic()
        if not self.engine or (not final and now - self._last_evaluation < RULE_SECONDS):
            return False, []
        self._last_evaluation = now
        before = [(s["status"], s["status_details"]) for s in self.engine.statuses()]
        stop = self.engine.evaluate(self.trial, final=final)
        after = [(s["status"], s["status_details"]) for s in self.engine.statuses()]
        return before != after, stop

    def statuses(self) -> list[dict[str, Any]]:
        return self.engine.statuses()

    def upload(self, artifacts: Any, key: str) -> None:
        """The server's copy into the artifact store under ``key`` (folders by host)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*.jsonl")):
            relative = path.relative_to(self.root).as_posix()
            with path.open("rb") as src, artifacts.open(f"{key}/{relative}", "wb") as dst:
                dst.write(src.read())


def job_trial(local_root: Path) -> Trial:
    """What a job saved, from the server's copy (for the report)."""
    return read_trial(local_root)
