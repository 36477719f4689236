"""What a killed server left running is found by its run's mark and stopped; nothing else is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from kennel._settings import Settings
from kennel.cluster._leftovers import RUN_ENV, ServerRun, processes_of, stop_leftovers

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever is left of them is killed afterwards."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _sleeper(started: list[subprocess.Popen[bytes]], run_id: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != RUN_ENV}
    if run_id is not None:
        env[RUN_ENV] = run_id
    process = subprocess.Popen(SLEEPER, env=env)
    started.append(process)
    return process.pid


def _dead_run(run_id: str, processes: tuple[tuple[int, float], ...] = ()) -> ServerRun:
    """A run whose server is gone: a process that has exited (its pid may be reused)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    return ServerRun(gone.pid, run_id, time.time() - 3600, processes)


def test_a_dead_runs_marked_processes_are_stopped_and_no_others(
    started: list[subprocess.Popen[bytes]],
) -> None:
    marked = _sleeper(started, "dead-run")
    other_run = _sleeper(started, "another-run")
    unmarked = _sleeper(started, None)
    recorded = _sleeper(started, None)  # as Ray's agents: no readable mark, but recorded
    record = ((recorded, psutil.Process(recorded).create_time()),)
    run = _dead_run("dead-run", record)
    assert [p.pid for p in processes_of(run)] == sorted([marked, recorded])

    assert sorted(stop_leftovers(run, grace_seconds=2.0)) == sorted([marked, recorded])
    codes = {p.pid: p.poll() for p in started}
    assert codes[marked] is not None and codes[recorded] is not None
    assert codes[other_run] is None and codes[unmarked] is None


def test_a_recorded_pid_now_used_by_another_process_is_left_alone(
    started: list[subprocess.Popen[bytes]],
) -> None:
    reused = _sleeper(started, None)
    run = _dead_run("dead-run", ((reused, psutil.Process(reused).create_time() - 100),))
    assert stop_leftovers(run) == []
    assert started[0].poll() is None


def test_nothing_is_stopped_while_the_recorded_server_still_runs(
    started: list[subprocess.Popen[bytes]],
) -> None:
    server = psutil.Process()
    marked = _sleeper(started, "live-run")
    run = ServerRun(server.pid, "live-run", server.create_time())
    assert run.alive()
    assert stop_leftovers(run) == []
    assert started[0].poll() is None and psutil.pid_exists(marked)


def test_a_record_round_trips_and_old_records_have_no_run() -> None:
    run = ServerRun.current("abc").with_descendants()
    assert ServerRun.from_record(run.record()) == run
    assert ServerRun.from_record({"pid": 12, "url": "http://127.0.0.1:1", "port": 1}) is None


def test_the_cli_takes_a_dead_servers_record_for_no_server_and_keeps_it(
    tmp_path: Path,
) -> None:
    from kennel.cli.server import _running_pid

    settings = Settings(home=tmp_path)
    me = psutil.Process()
    live = ServerRun(me.pid, "live", me.create_time())
    settings.server_file.write_text(json.dumps(live.record()))
    assert _running_pid(settings) == me.pid
    reused = ServerRun(me.pid, "old", me.create_time() - 100)  # same pid, another process
    settings.server_file.write_text(json.dumps(reused.record()))
    assert _running_pid(settings) is None
    assert settings.server_file.exists()  # for the next server to clean up after
