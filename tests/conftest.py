"""Shared fixtures: a real kennel server on a free port with a temporary home."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kennel._client import KennelClient
from tests._server import RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for the session: real SQLite file, real Ray head, real signing."""
    home = tmp_path_factory.mktemp("kennel-home")
    running = start_server(
        home,
        KENNEL_DATASET_MAX_BYTES=str(64 * 2**20),
        KENNEL_DATASET_MAX_FILES="5000",
        KENNEL_ENDPOINT_METRICS_PERIOD_SECONDS="1",
        KENNEL_ENDPOINT_HEALTH_TIMEOUT_SECONDS="120",
        KENNEL_FETCH_ALLOW_NETWORKS="127.0.0.0/8,::1/128",
        KENNEL_STS_MIN_SESSION_SECONDS="1",
        KENNEL_FUNCTION_ASYNC_RETRY_DELAYS="0.3,0.6",
        KENNEL_FUNCTION_METRICS_PERIOD_SECONDS="1",
    )
    yield running
    code = stop_server(running)
    assert code == 0, f"server exit code {code}:\n{running.log.read_text()[-4000:]}"


@pytest.fixture
def api(server: RunningServer) -> Iterator[KennelClient]:
    with server.client() as client:
        yield client
