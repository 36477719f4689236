"""The profiler's system monitor: what the instance and the training script use, sampled.

A daemon thread beside the training script (in the instance's actor, not in the script)
appends one ``system.jsonl`` line per interval, in the format ``_trial`` documents:
the instance's per-core CPU, the script's CPU, memory and I/O summed over its process
tree (the script and every process it started: DataLoader workers, ``torchrun``'s
ranks), and GPU utilisation when a GPU is visible.

How it measures, and why:

- ``cpu``: ``psutil.cpu_percent(percpu=True)``: busy % of each of the machine's cores
  since the previous sample (psutil keeps the last reading per thread).
- ``proc_cpu``: the tree's CPU seconds (user + system) since the previous sample over
  the wall time between the samples, in % of one core (200 = two cores busy). It reads
  each process's counters rather than ``Process.cpu_percent`` so that a process that
  appeared since the last sample counts from its start instead of from a priming call,
  and a process that exited takes only its last partial interval with it.
- ``proc_cpu_wait`` (Linux; not in ``_trial``'s list yet): likewise, the time the
  tree's threads were ready to run but waited for a core (the scheduler's run-queue
  delay, ``/proc/<pid>/task/<tid>/schedstat``). On a machine busy with other work a
  script gets less CPU than it asks for; use plus wait is what it asked for, which is
  what the profiler rules need to tell a CPU-bound script from one waiting on I/O.
- ``read_mb_s`` / ``write_mb_s``: the tree's ``io_counters`` bytes (what reached the
  storage layer, not page-cache hits) per second; where per-process counters cannot be
  read (another OS, a sandbox), the whole system's disk counters instead.
- ``proc_cpu`` and ``proc_rss_mb`` are left out of a sample when no script is watched
  or it has exited: a zero would read as an idle script to the rules.
- ``gpu`` / ``gpu_mem_pct``: through NVML (``pynvml``) when it imports and finds a
  device, honouring ``CUDA_VISIBLE_DEVICES``; absent otherwise.

A sample costs about 1.5 ms of CPU on a machine running ~100 processes, most of it
psutil listing them all to find the script's children: 1.5% of a core at the 100 ms
interval, 0.3% at the default 500 ms. A failing sample is logged (once per distinct
failure) and skipped; the thread never raises, since it runs beside someone's
training and must not end it.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil

log = logging.getLogger(__name__)

MB = 1024 * 1024
FILENAME = "system.jsonl"

SCHEDSTAT = Path("/proc/self/schedstat").exists()
"""Linux's per-thread scheduler statistics are there: run-queue waits can be measured."""


@dataclass(frozen=True)
class _Usage:
    """A process's cumulative counters, or what a tree used over an interval."""

    cpu_s: float = 0.0
    wait_s: float = 0.0
    read: int = 0
    written: int = 0

    def __add__(self, other: _Usage) -> _Usage:
        return _Usage(
            self.cpu_s + other.cpu_s,
            self.wait_s + other.wait_s,
            self.read + other.read,
            self.written + other.written,
        )

    def since(self, before: _Usage) -> _Usage:
        # Never negative: a thread that exited takes its share of a sum with it.
        return _Usage(
            max(0.0, self.cpu_s - before.cpu_s),
            max(0.0, self.wait_s - before.wait_s),
            max(0, self.read - before.read),
            max(0, self.written - before.written),
        )


class SystemMonitor:
    """Samples the instance and the process tree rooted at ``pid`` every ``interval_s``."""

    def __init__(
        self,
        out_dir: Path,
        pid: int | None,
        cpus: int,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.path = out_dir / FILENAME
        self.pid = pid
        self.cpus = cpus
        self.interval_s = interval_s
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: IO[str] | None = None
        self._last_tick: float | None = None  # monotonic time of the previous sample
        self._root: psutil.Process | None = None
        self._procs: dict[tuple[int, float], _Usage] = {}
        self._process_io = hasattr(psutil.Process, "io_counters")
        self._disk: tuple[int, int] | None = None
        self._gpus = _Gpus.open()
        self._last_error = ""

    # Lifecycle ----------------------------------------------------------------------

    def start(self) -> SystemMonitor:
        if self._thread is not None or self._stopping.is_set():
            raise RuntimeError("a SystemMonitor starts once")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._thread = threading.Thread(target=self._run, name="kennel-system-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread after one last sample (of the partial interval since the last)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> SystemMonitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        # Primes every counter, in this thread: psutil keeps cpu_percent's last reading
        # per thread. The first line written then covers a whole interval.
        self._safely(self.sample)
        due = time.monotonic() + self.interval_s
        # Deadlines, not sleeps of interval_s: the time a sample takes must not add up.
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            self._safely(self._record)
            due = max(due + self.interval_s, time.monotonic())
        self._safely(self._record)
        if self._file is not None:
            self._file.close()
            self._file = None

    def _safely(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - a sample lost must not end the training
            message = f"{type(exc).__name__}: {exc}"
            if message != self._last_error:  # once per distinct failure, not per interval
                log.warning("system monitor: a sample failed: %s", message)
            self._last_error = message

    def _record(self) -> None:
        line = json.dumps(self.sample()) + "\n"
        if self._file is not None:
            self._file.write(line)  # flushed line by line: the server copies it as it grows
            self._file.flush()

    # One sample -----------------------------------------------------------------------

    def sample(self) -> dict[str, Any]:
        """Usage since the previous call (zeros on the first), as one ``system.jsonl`` record."""
        first = self._last_tick is None
        procs = self._tree()
        # The clock is read right before the counters: a monitor held up between the two
        # (on a busy machine) would put CPU time of one interval into another.
        now = time.monotonic()
        tree = self._tree_usage(procs, first)
        elapsed = now - self._last_tick if self._last_tick is not None else 0.0
        self._last_tick = now
        record: dict[str, Any] = {
            "t": round(self._clock(), 3),
            "cpu": psutil.cpu_percent(percpu=True),
            "cpus": self.cpus,
            "mem_pct": psutil.virtual_memory().percent,
        }
        read, write = 0, 0
        if tree is not None:
            usage, rss = tree
            record["proc_cpu"] = round(_rate(usage.cpu_s, elapsed) * 100, 1)
            if SCHEDSTAT:
                record["proc_cpu_wait"] = round(_rate(usage.wait_s, elapsed) * 100, 1)
            record["proc_rss_mb"] = round(rss / MB, 1)
            read, write = usage.read, usage.written
        if not self._process_io or tree is None:
            read, write = self._disk_usage()
        record["read_mb_s"] = round(_rate(read / MB, elapsed), 3)
        record["write_mb_s"] = round(_rate(write / MB, elapsed), 3)
        if self._gpus is not None:
            record["gpu"], record["gpu_mem_pct"] = self._gpus.read()
        return record

    def _tree(self) -> list[psutil.Process]:
        """The watched process and its descendants now; empty once it has exited."""
        if self.pid is None:
            return []
        try:
            if self._root is None:
                self._root = psutil.Process(self.pid)
            if not self._root.is_running() or self._root.status() == psutil.STATUS_ZOMBIE:
                return []  # exited (perhaps not yet reaped), or its pid was reused
            return [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []

    def _tree_usage(self, procs: list[psutil.Process], first: bool) -> tuple[_Usage, int] | None:
        """What the tree used since the last call, and its resident memory in bytes."""
        if not procs:
            self._procs = {}
            return None
        counters: dict[tuple[int, float], _Usage] = {}
        used = _Usage()
        rss = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    times = proc.cpu_times()
                    memory = proc.memory_info().rss
                    read, written = self._process_io_bytes(proc)
            except psutil.Error:
                continue  # it exited between the listing and the reading
            now = _Usage(times.user + times.system, _run_queue_wait(proc.pid), read, written)
            # A process first seen now started since the last sample (or this is the
            # priming sample, whose numbers are discarded): all it used is this interval's.
            counters[key] = now
            rss += memory
            if not first:
                used += now.since(self._procs.get(key, _Usage()))
        self._procs = counters
        return used, rss

    def _process_io_bytes(self, proc: psutil.Process) -> tuple[int, int]:
        if not self._process_io:
            return 0, 0
        try:
            io = proc.io_counters()
        except (psutil.AccessDenied, NotImplementedError, AttributeError):
            if proc.pid == self.pid:
                self._process_io = False  # the script's own are unreadable: the disks instead
            return 0, 0
        return io.read_bytes, io.write_bytes

    def _disk_usage(self) -> tuple[int, int]:
        """System-wide bytes read and written since the last call (zeros the first time)."""
        disk = psutil.disk_io_counters()
        if disk is None:
            return 0, 0
        now = (disk.read_bytes, disk.write_bytes)
        before, self._disk = self._disk or now, now
        return max(0, now[0] - before[0]), max(0, now[1] - before[1])


def _run_queue_wait(pid: int) -> float:
    """Seconds the process's threads spent ready to run while no core was free for them.

    CPU use alone cannot tell a script that needs little CPU from one that gets little
    on a busy machine; use plus this wait is what it asked for. Linux keeps it per
    thread, in nanoseconds (the second field of ``schedstat``).
    """
    if not SCHEDSTAT:
        return 0.0
    task = f"/proc/{pid}/task"
    try:
        threads = os.listdir(task)
    except OSError:
        return 0.0
    total = 0
    for tid in threads:
        try:
            with open(f"{task}/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9


def _rate(amount: float, elapsed: float) -> float:
    return amount / elapsed if elapsed > 0 else 0.0


class _Gpus:
    """NVML's view of the visible GPUs (no GPU on most kennel machines: kept small)."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles

    @classmethod
    def open(cls) -> _Gpus | None:
        try:
            nvml: Any = importlib.import_module("pynvml")
            nvml.nvmlInit()
            indices = list(range(nvml.nvmlDeviceGetCount()))
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            wanted = [v.strip() for v in (visible or "").split(",") if v.strip()]
            if visible is not None and all(v.isdigit() for v in wanted):  # not UUIDs
                indices = [int(v) for v in wanted if int(v) in indices]
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
        except Exception:  # noqa: BLE001 - no pynvml, no driver, no device: no GPU metrics
            return None
        return cls(nvml, handles) if handles else None

    def read(self) -> tuple[list[float], list[float]]:
        util: list[float] = []
        memory: list[float] = []
        for handle in self.handles:
            util.append(float(self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            info = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            memory.append(round(100.0 * info.used / info.total, 1) if info.total else 0.0)
        return util, memory
