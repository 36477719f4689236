"""``server.json``: which server runs on this home, and what it started.

Written when the server starts (pid, URL, port and its run: see
``kennel.cluster._leftovers``), extended with the processes under it once Ray is up, and
removed on a clean stop. A server killed outright leaves it behind: the next one reads
it to stop what the dead one left running.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from kennel._settings import Settings
from kennel.cluster._leftovers import ServerRun, mark_this_run, stop_leftovers

log = logging.getLogger(__name__)


def begin_run(settings: Settings) -> ServerRun:
    """Stop what a previous, uncleanly stopped server left running; mark this run."""
    previous = read(settings.server_file)
    before = ServerRun.from_record(previous) if previous is not None else None
    if before is not None and before.pid != os.getpid():
        stop_leftovers(before)
    run_id = uuid.uuid4().hex
    mark_this_run(run_id)
    return ServerRun.current(run_id)


def write(settings: Settings, run: ServerRun) -> None:
    info = {"url": settings.resolved_endpoint_url, "port": settings.port, **run.record()}
    tmp = settings.server_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(settings.server_file)


def read(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def remember_processes(path: Path) -> None:
    """Add the processes now under this server to its record (Ray's head and agents)."""
    info = read(path)
    run = ServerRun.from_record(info) if info is not None else None
    if info is None or run is None or run.pid != os.getpid():
        return  # not started by ``serve`` (an app built in a test), or not ours any more
    info.update(run.with_descendants().record())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


def remove(path: Path) -> None:
    info = read(path)
    if info is not None and info.get("pid") == os.getpid():
        path.unlink(missing_ok=True)
