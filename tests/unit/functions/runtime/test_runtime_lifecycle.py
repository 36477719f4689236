"""Starting, killing and cleaning up templates and environments: no process is left over."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
from tests.unit.functions.runtime._runtime_support import (
    children_of,
    invoke_meta,
    make_spec,
    process_state,
    run,
    wait_gone,
    write_code,
)

from kennel.functions._envclient import EnvironmentLost, kill, ping, spawn
from kennel.functions._host import FunctionHost, TemplateStartError

CODE = "import time\n\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 'ok'\n"


def test_kill_ends_an_environment(
    template: tuple[str, int], function_host: FunctionHost, tmp_path: Path
) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": CODE}))

    async def scenario() -> int:
        client = await spawn(*template, spec, timeout=30)
        invocation = asyncio.create_task(client.invoke(invoke_meta(spec), b'{"sleep": 30}'))
        await asyncio.sleep(0.2)
        await kill(*template, client.pid)
        with pytest.raises(EnvironmentLost):
            await invocation
        assert not client.alive
        await kill(*template, client.pid)  # already gone: a no-op
        return client.pid

    pid = run(scenario())
    assert process_state(pid) is None  # killed and reaped by the template
    assert function_host.poll() is None


def test_closing_the_client_ends_the_environment(template: tuple[str, int], tmp_path: Path) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": CODE}))

    async def scenario() -> int:
        client = await spawn(*template, spec, timeout=30)
        await client.invoke(invoke_meta(spec), b"{}")
        await client.close()
        with pytest.raises(EnvironmentLost):
            await client.invoke(invoke_meta(spec), b"{}")
        return client.pid

    pid = run(scenario())
    assert wait_gone(pid)


def test_spawn_timeout_kills_a_slow_init(template: tuple[str, int], tmp_path: Path) -> None:
    code = "import time\ntime.sleep(30)\n\ndef handler(e, c):\n    return 1\n"
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": code}))

    async def scenario() -> None:
        await spawn(*template, spec, timeout=0.5)

    with pytest.raises(TimeoutError, match=r"\(pid \d+, killed\)") as caught:
        run(scenario())
    pid = int(re.search(r"pid (\d+)", str(caught.value))[1])  # type: ignore[index]
    assert wait_gone(pid)


def test_template_reaps_its_children(
    template: tuple[str, int], template_pid: int, tmp_path: Path
) -> None:
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": CODE}))

    async def scenario() -> list[int]:
        clients = [await spawn(*template, spec, timeout=30) for _ in range(4)]
        for client in clients[:2]:
            await client.close()
        for client in clients[2:]:
            await client.kill()
        return [c.pid for c in clients]

    pids = run(scenario())
    assert all(wait_gone(pid) for pid in pids)  # gone, not zombies
    children = children_of(template_pid)
    assert "Z" not in children.values()
    # ping counts environments; the prepared spare (if one is up) is not one yet
    assert len(children) - run(ping(*template)) in (0, 1)


def test_host_start_poll_terminate_kills_everything(tmp_path: Path) -> None:
    host = FunctionHost("127.0.0.1", str(tmp_path / "work"))
    address, port, pid = host.start()
    assert (address, port) == (host.address, host.port) and address == "127.0.0.1"
    assert host.poll() is None
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": CODE}))

    async def scenario() -> list[int]:
        clients = [await spawn(address, port, spec, timeout=30) for _ in range(2)]
        assert await ping(address, port) == 2
        return [c.pid for c in clients]

    pids = run(scenario())
    assert host.terminate(2.0) is not None
    assert host.poll() is not None
    assert all(wait_gone(p, zombie_ok=True) for p in pids)


def test_killing_the_template_kills_its_environments(tmp_path: Path) -> None:
    host = FunctionHost("127.0.0.1", str(tmp_path / "work"))
    address, port, pid = host.start()
    spec = make_spec(write_code(tmp_path, {"lambda_function.py": CODE}))

    async def scenario() -> list[int]:
        return [(await spawn(address, port, spec, timeout=30)).pid for _ in range(2)]

    pids = run(scenario())
    time.sleep(0.1)  # let the template prepare a spare: it must die too
    pids += list(children_of(pid))
    assert len(set(pids)) == 3
    os.kill(pid, signal.SIGKILL)  # no chance to clean up: PDEATHSIG must do it
    assert host.process is not None
    host.process.wait(5)
    # orphans are reparented to init; "dead" may briefly mean a zombie there
    assert all(wait_gone(p, zombie_ok=True) for p in pids)


def test_template_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    host = FunctionHost("256.0.0.1", str(tmp_path / "work"))  # not an address
    with pytest.raises(TemplateStartError, match="exited with code"):
        host.start(timeout=60)
    assert host.poll() is not None
