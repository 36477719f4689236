"""What a training job's hook and profiler wrote, read back for rules and the report.

The files, JSON lines, one folder per instance (host) of the job. The hook and the
profiler append to them while the script runs; the server copies them as they grow (by
offset, like the log) to ``<home>/jobs/<job>/debug/<host>/`` and, when the job ends,
to the artifact store under ``training-jobs/<job>/debug-output/<host>/``.

``losses.jsonl``     ``{"rank", "step", "mode", "loss"}``; mode ``train``: one per step;
                     mode ``eval``: the mean over one evaluation pass (``count`` samples)
``tensors.jsonl``    every ``save_interval`` train steps: ``{"rank", "step", "mode",
                     "weights": {name: stats}, "gradients": {name: stats},
                     "activations": {module: act}, "labels": {"count": [...],
                     "correct": [...]}}``; a stats dict has ``mean std min max norm
                     abs_mean zero_frac nonfinite``; an ``act`` dict has
                     ``in_mean in_std out_zero_frac dead_frac``; labels are counted
                     over every train step so far (per class: seen, predicted right)
``framework.jsonl``  one per train step: ``{"rank", "step", "start", "data", "forward",
                     "backward", "optimizer", "total", "batch"}`` (seconds; ``start``
                     is the wall clock when the step began, i.e. when it asked for data)
``scalars.jsonl``    ``{"rank", "step", "mode", "name", "value"}`` from ``save_scalar``
``system.jsonl``     every profiling interval, from the instance (not the script):
                     ``{"t", "cpu": [% per core], "proc_cpu": % of one core, summed
                     over the script's processes, "proc_cpu_wait": % of one core its
                     threads were ready to run but waited for one (Linux; a busy
                     shared machine), "cpus": cores the instance has,
                     "mem_pct", "proc_rss_mb", "read_mb_s", "write_mb_s",
                     "gpu": [% per GPU] (absent without one), "gpu_mem_pct": [...]}``

A reader is given lines as they arrive (``add``) or a whole folder (``read_trial``).
A malformed line is counted and skipped, never fatal: a script killed mid-write leaves
half a line, and the rules must still run on the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILES = ("losses.jsonl", "tensors.jsonl", "framework.jsonl", "scalars.jsonl", "system.jsonl")


@dataclass
class HostData:
    """Everything one instance wrote, in the order it was written."""

    losses: list[dict[str, Any]] = field(default_factory=list)
    tensors: list[dict[str, Any]] = field(default_factory=list)
    framework: list[dict[str, Any]] = field(default_factory=list)
    scalars: list[dict[str, Any]] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)

    def series(self, kind: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = getattr(self, kind)
        return records


@dataclass
class Trial:
    """A job's debug and profiler data by host (``algo-1``, ``algo-2``, ...)."""

    hosts: dict[str, HostData] = field(default_factory=dict)
    skipped_lines: int = 0

    def add(self, host: str, filename: str, lines: Iterable[str]) -> None:
        """Parse ``lines`` of ``filename`` (one of ``FILES``) written on ``host``."""
        kind = filename.removesuffix(".jsonl")
        if filename not in FILES:
            return
        records = self.hosts.setdefault(host, HostData()).series(kind)
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                self.skipped_lines += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                self.skipped_lines += 1

    # Views the rules and the report share ------------------------------------------------

    @property
    def main(self) -> HostData:
        """The first host's data (rank 0 under DDP), or an empty one."""
        if not self.hosts:
            return HostData()
        return self.hosts[sorted(self.hosts)[0]]

    def losses(self, mode: str) -> list[tuple[int, float]]:
        """(step, loss) of the first host, in step order, for ``train`` or ``eval``."""
        points = [
            (int(r["step"]), float(r["loss"]))
            for r in self.main.losses
            if r.get("mode") == mode
            and isinstance(r.get("loss"), int | float)
            and isinstance(r.get("step"), int)
        ]
        return sorted(points)

    def tensor_records(self) -> list[dict[str, Any]]:
        """The first host's per-layer statistics records, in the order they were saved."""
        return self.main.tensors

    def steps(self, host: str | None = None) -> list[dict[str, Any]]:
        """Framework step records of ``host`` (default: the first)."""
        data = self.hosts.get(host) if host else self.main
        return data.framework if data else []

    def system(self, host: str | None = None) -> list[dict[str, Any]]:
        """The system monitor's samples of ``host`` (the first host when None)."""
        data = self.hosts.get(host) if host else self.main
        return data.system if data else []

    @property
    def has_gpu(self) -> bool:
        return any(s.get("gpu") for h in self.hosts.values() for s in h.system)


def read_trial(root: Path) -> Trial:
    """Read ``root/<host>/<file>`` for every host folder under ``root``."""
    trial = Trial()
    if not root.is_dir():
        return trial
    for host_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for name in FILES:
            path = host_dir / name
            if path.exists():
                with path.open(encoding="utf-8", errors="replace") as f:
                    trial.add(host_dir.name, name, f)
    return trial
