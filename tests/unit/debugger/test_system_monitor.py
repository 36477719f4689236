"""The system monitor: samples in system.jsonl's format, at its interval, never failing."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from kennel.debugger import read_trial
from kennel.debugger._system import SCHEDSTAT, SystemMonitor

# A script whose child burns a core for a while, then both wait a moment and exit.
BURNING_CHILD = """
import subprocess, sys, time
burn = "import time\\nend = time.monotonic() + 1.0\\nwhile time.monotonic() < end: pass"
subprocess.run([sys.executable, "-c", burn])
time.sleep(0.2)
"""


def samples(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / "system.jsonl").read_text().splitlines()]


def monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kennel-system-monitor"]


@pytest.fixture
def script() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", BURNING_CHILD])
    yield process
    process.kill()
    process.wait()


def test_samples_the_script_and_its_children_at_the_interval(
    tmp_path: Path, script: subprocess.Popen[bytes]
) -> None:
    began = time.monotonic()
    with SystemMonitor(tmp_path / "algo-1", script.pid, cpus=2, interval_s=0.1):
        script.wait(timeout=30)
        time.sleep(0.2)
    intervals = (time.monotonic() - began) / 0.1
    records = samples(tmp_path / "algo-1")
    assert intervals * 0.7 <= len(records) <= intervals + 2
    for record in records:
        assert {"t", "cpu", "cpus", "mem_pct", "read_mb_s", "write_mb_s"} <= record.keys()
        assert len(record["cpu"]) == psutil.cpu_count() and record["cpus"] == 2
        assert len(record.get("gpu", ())) == len(record.get("gpu_mem_pct", ()))
    gaps = [b["t"] - a["t"] for a, b in zip(records, records[1:-1], strict=False)]
    assert 0.08 < sorted(gaps)[len(gaps) // 2] < 0.13
    # The child burns a core: it uses it, or waits for it on a busy machine.
    demand = [r["proc_cpu"] + r.get("proc_cpu_wait", 0) for r in records if "proc_cpu" in r]
    assert max(demand) >= 80
    assert all("proc_cpu_wait" in r for r in records if "proc_cpu" in r) == SCHEDSTAT
    assert all(r["proc_rss_mb"] > 1 for r in records if "proc_rss_mb" in r)
    # Once the script has exited (and been reaped), there is nothing of it to report.
    assert "proc_cpu" not in records[-1]
    assert read_trial(tmp_path).system("algo-1") == records


def test_stop_writes_a_last_sample_and_ends_the_thread(tmp_path: Path) -> None:
    monitor = SystemMonitor(tmp_path, None, cpus=1, interval_s=60, clock=lambda: 123.0)
    began = time.monotonic()
    monitor.start()
    assert len(monitor_threads()) == 1
    monitor.stop()
    assert time.monotonic() - began < 5  # not a whole interval
    assert monitor_threads() == []
    (record,) = samples(tmp_path)
    assert record["t"] == 123.0 and "proc_cpu" not in record
    monitor.stop()  # again: nothing to do
    with pytest.raises(RuntimeError):
        monitor.start()


def test_survives_the_watched_process_exiting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    short = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    with caplog.at_level(logging.WARNING), SystemMonitor(tmp_path, short.pid, 1, 0.05):
        time.sleep(0.2)
        short.wait(timeout=30)
        time.sleep(0.3)
        assert monitor_threads()
    records = samples(tmp_path)
    assert "proc_cpu" in records[0] and "proc_cpu" not in records[-1]
    assert len(records) >= 8 and not caplog.records


def test_a_failing_sample_is_logged_once_and_the_monitor_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = threading.Event()
    real = psutil.virtual_memory

    def virtual_memory() -> Any:
        if broken.is_set():
            raise OSError("no /proc")
        return real()

    monkeypatch.setattr(psutil, "virtual_memory", virtual_memory)
    with caplog.at_level(logging.WARNING), SystemMonitor(tmp_path, None, 1, 0.02):
        broken.set()
        time.sleep(0.2)
        broken.clear()
        time.sleep(0.1)
    assert [r.getMessage() for r in caplog.records] == [
        "system monitor: a sample failed: OSError: no /proc"
    ]
    assert len(samples(tmp_path)) >= 3  # written again once the failure passed


def test_a_non_positive_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        SystemMonitor(tmp_path, None, 1, 0)
