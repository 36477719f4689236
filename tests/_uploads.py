"""Uploading a source directory (a SageMaker-style ``sourcedir.tar.gz``) to a test server."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any


def upload_sources(server: Any, folder: Path, *scripts: Path) -> str:
    """Pack ``scripts`` (flat) into ``folder``/sourcedir.tar.gz, upload it, return its URI."""
    archive = folder / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for script in scripts:
            tar.add(script, arcname=script.name)
    with server.client() as api:
        answer = api.request("PUT", "/api/v1/uploads/sourcedir.tar.gz", upload=archive)
    return str(answer.json()["uri"])
