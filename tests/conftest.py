"""Shared fixtures: a real kennel server on a free port with a temporary home."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kennel._client import KennelClient
from tests._postgres import PostgresServer, running_postgres
from tests._server import RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server for the session (Debian's binaries, a free port).

    Skipped where PostgreSQL is not installed, except in CI (CI=true), where the test
    command installs it and the storage suite must run on it."""
    try:
        context = running_postgres()
        server = context.__enter__()
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL is not available: {exc}")
    try:
        yield server
    finally:
        context.__exit__(None, None, None)


SERVER_SETTINGS = {
    "KENNEL_DATASET_MAX_BYTES": str(64 * 2**20),
    "KENNEL_DATASET_MAX_FILES": "5000",
    "KENNEL_ENDPOINT_METRICS_PERIOD_SECONDS": "1",
    "KENNEL_ENDPOINT_HEALTH_TIMEOUT_SECONDS": "120",
    "KENNEL_FETCH_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
    "KENNEL_STS_MIN_SESSION_SECONDS": "1",
    "KENNEL_FUNCTION_ASYNC_RETRY_DELAYS": "0.3,0.6",
    "KENNEL_FUNCTION_METRICS_PERIOD_SECONDS": "1",
}
"""The test servers' settings: small limits, fast metric periods, loopback image URLs."""


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for the session: real SQLite file, real Ray head, real signing."""
    home = tmp_path_factory.mktemp("kennel-home")
    running = start_server(home, **SERVER_SETTINGS)
    yield running
    code = stop_server(running)
    assert code == 0, f"server exit code {code}:\n{running.log.read_text()[-4000:]}"


@pytest.fixture
def api(server: RunningServer) -> Iterator[KennelClient]:
    with server.client() as client:
        yield client
