"""One real template process for the runtime tests, started as the function host does.

The template is started with host variables that must never reach a function (a kennel
setting, an AWS profile, host credentials), so the isolation tests can look for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kennel.functions._host import FunctionHost

LEAKY_HOST_VARIABLES = {
    "KENNEL_RUNTIME_TEST_SECRET": "host-only",
    "AWS_PROFILE": "host-profile",
    "AWS_ACCESS_KEY_ID": "AKIAHOSTKEY000000000",
    "AWS_SECRET_ACCESS_KEY": "host-secret",
    "AWS_ENDPOINT_URL_S3": "http://host-only.invalid",
}


@pytest.fixture(scope="session")
def runtime_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fn-runtime")


@pytest.fixture(scope="session")
def function_host(runtime_root: Path) -> Iterator[FunctionHost]:
    host = FunctionHost("127.0.0.1", str(runtime_root / "work"))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in LEAKY_HOST_VARIABLES.items():
            patch.setenv(key, value)
        host.start()
    yield host
    host.terminate(2.0)


@pytest.fixture(scope="session")
def template(function_host: FunctionHost) -> tuple[str, int]:
    """(address, port) of the running template."""
    return function_host.address, function_host.port


@pytest.fixture(scope="session")
def template_pid(function_host: FunctionHost) -> int:
    assert function_host.process is not None
    return function_host.process.pid
