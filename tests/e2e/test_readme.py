"""The README's own commands are run, so the docs cannot rot."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tests._server import REPO, free_port, kennel_env

pytestmark = pytest.mark.e2e


def test_readme_has_exactly_the_two_setup_commands() -> None:
    setup = re.search(r"## Set up.*?```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert setup is not None
    assert [line.strip() for line in setup.group(1).splitlines() if line.strip()] == [
        "make demo",
        "make test",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()


def make_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_make_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = kennel_env(tmp_path / "home", free_port())
    try:
        result = make_demo(env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "running at http://127.0.0.1:" in result.stdout
        assert "demo-digits" in result.stdout and "001.zero" in result.stdout
        assert "epoch=3 train_loss=" in result.stdout  # the training log was followed
        assert "Completed (Completed)" in result.stdout
        assert "InService" in result.stdout  # deployed
        assert re.search(r"\d+\.\d ms, variant AllTraffic", result.stdout)  # and invoked
        # It may scale 1..3 on invocations per instance, and a short load found no fault.
        assert "Applied dogs.yaml to endpoint/demo-digits/variant/AllTraffic: 1..3" in (
            result.stdout
        )
        assert re.search(r"sent\W+15 of 15 planned", result.stdout)
        assert re.search(r"failed\W+0\b", result.stdout)
        # ... and called through the dog-breed function with an image URL.
        assert re.search(r"statusCode 200, 10 scores; top class: 0\d\d\.\w+", result.stdout)
        # A second run finds the server and the data set and still succeeds.
        again = make_demo(env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already running" in again.stdout
        assert "InService" in again.stdout  # the second deploy updated the endpoint
    finally:
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "kennel"), "server", "stop"],
            env=env,
            timeout=120,
            capture_output=True,
        )
    assert not (tmp_path / "home" / "server.json").exists()
