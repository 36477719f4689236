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


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_make_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = kennel_env(tmp_path / "home", free_port())
    kennel = str(REPO / ".venv" / "bin" / "kennel")
    try:
        result = make_demo(env)
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert "running at http://127.0.0.1:" in out
        # The quickstart stack, planned and brought up: seven resources made.
        assert "Stack quickstart: 7 changes." in out
        assert "Stack quickstart is up (7 changed)." in out
        assert re.search(r"function_url\s+http://127\.0\.0\.1:\d+/fn/quickstart-classify", out)
        # Ten test images through the function URL, each answered with a class, and timed.
        rows = re.findall(
            r"│ \d+\.jpg\s+│ (\d{3}\.\w+)\s+│ (\d{3}\.\w+)\s+│ -?[\d.]+\s+│ [\d.]+", out
        )
        assert len(rows) == 10, out
        timing = re.search(r"│ 10\s+│ (\d+)/10\s+│", out)
        assert timing is not None, out
        # A second run finds the server and the stack as the file says, and changes nothing.
        again = make_demo(env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already running" in again.stdout
        assert "Stack quickstart is up (0 changed)." in again.stdout
        # The tear-down the demo prints works.
        down = subprocess.run(
            [kennel, "down", "examples/quickstart/stack.yaml", "--yes"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert "Stack quickstart is down" in down.stdout
    finally:
        subprocess.run(
            [kennel, "server", "stop"],
            env=env,
            timeout=120,
            capture_output=True,
        )
    assert not (tmp_path / "home" / "server.json").exists()
