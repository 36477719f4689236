"""An SDK ``Session`` signed as the test server's bootstrap admin, as a user has it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from kennel._settings import load_settings
from kennel.sdk._session import Session
from tests._server import RunningServer

_PROFILE_FILES = ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


@contextmanager
def _profile_files(server: RunningServer) -> Iterator[None]:
    """Point botocore at the server's profile files while the session reads them."""
    old = {k: os.environ.get(k) for k in _PROFILE_FILES}
    os.environ.update({k: server.env[k] for k in _PROFILE_FILES})
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sdk_session(server: RunningServer) -> Session:
    """A ``Session`` for ``server``: its URL, its home, the ``kennel`` profile it wrote.

    The credentials are read now (the profile files are pointed at only meanwhile), so the
    test process's environment is left as it was.
    """
    session = Session(
        endpoint_url=server.url, settings=load_settings(home=server.home, profile="kennel")
    )
    with _profile_files(server):
        assert session.api.endpoint_url == server.url
    return session
