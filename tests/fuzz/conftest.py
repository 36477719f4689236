"""A server of the fuzz tests' own: what they create (users, policies, stacks with odd
names) must not show up in the other tests' listings.

It is shared by this folder's HTTP tests and stopped as soon as the last test of the
folder is done (a fixture scope cannot say "this folder" without an ``__init__.py``): the
rest of a run should not share 2 cores with a second server and its Ray head.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.credentials import Credentials
from tests._server import RunningServer, start_server, stop_server
from tests.fuzz._fuzz import SignedClient, server_log_tail

HERE = Path(__file__).resolve().parent
_running: list[RunningServer] = []
_exit_codes: list[int] = []


def _stop_all() -> None:
    while _running:
        # Generous: a server stopped while its local Ray head is still starting (slow on
        # a loaded machine) first waits for that start, up to 120 s.
        _exit_codes.append(stop_server(_running.pop(), timeout=180))


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("kennel-fuzz-home"))
    _running.append(running)
    yield running
    _stop_all()
    assert _exit_codes == [0], f"server exit code {_exit_codes}:\n{server_log_tail(running.log)}"


@pytest.fixture(scope="session")
def signed(fuzz_server: RunningServer) -> Iterator[SignedClient]:
    client = SignedClient(fuzz_server.url, Credentials(*fuzz_server.credentials()))
    yield client
    client.close()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After this folder's last test, stop the server (its exit code is checked above)."""
    if nextitem is None or HERE not in nextitem.path.parents:
        _stop_all()
