"""The function host as the gateway runs it: a Ray actor (threaded, like the dispatcher's).

One test, marked slow: a local Ray head takes several seconds to start. It checks the
template outlives the actor call that started it (PR_SET_PDEATHSIG follows the *thread*
that forked it, and a threaded actor runs calls on pool threads) and dies with the actor.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.unit.functions.runtime._runtime_support import (
    make_spec,
    run,
    spawn_and_invoke,
    wait_gone,
    write_code,
)

from kennel.functions._host import FunctionHost


@pytest.mark.slow
def test_host_as_a_threaded_ray_actor(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(address="local", include_dashboard=False, num_cpus=1, log_to_driver=False)
    try:
        actor = (
            ray.remote(FunctionHost)
            .options(num_cpus=0, max_concurrency=2)
            .remote("127.0.0.1", str(tmp_path / "work"))
        )
        address, port, pid = ray.get(actor.start.remote(), timeout=120)
        spec = make_spec(
            write_code(tmp_path, {"lambda_function.py": "def handler(e, c):\n    return e\n"})
        )
        for _ in range(3):  # other calls on other pool threads; the template must survive
            assert ray.get(actor.poll.remote(), timeout=30) is None
            time.sleep(0.5)
        _, result = run(spawn_and_invoke((address, port), spec, b'"via ray"'))
        assert result.payload == b'"via ray"'
        ray.kill(actor)
        assert wait_gone(pid, 30, zombie_ok=True)  # PDEATHSIG: gone with the actor's process
    finally:
        ray.shutdown()
