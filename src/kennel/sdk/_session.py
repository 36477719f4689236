"""``Session``: where the SDK's calls go and who signs them (SageMaker's ``Session``).

It is a client of kennel's HTTP API, signed with SigV4 like the CLI and boto3: the
credentials and endpoint come from the AWS profile the server wrote (``kennel`` by
default), or are given. Every SDK object takes ``sagemaker_session=`` (SageMaker's
argument name) and makes a default ``Session()`` when it is left out.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import Any

from kennel._client import KennelClient
from kennel._errors import ValidationError
from kennel._settings import Settings, load_settings


class Session:
    """A signed connection to a kennel server.

    Args:
        endpoint_url: The server (default: the profile's, else ``KENNEL_ENDPOINT_URL``,
            else ``http://127.0.0.1:7733``).
        settings: kennel settings to read the profile from (default: the environment's).
    """

    def __init__(self, endpoint_url: str | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._endpoint_url = endpoint_url
        self._api: KennelClient | None = None

    @property
    def api(self) -> KennelClient:
        """The signed HTTP client (opened on first use)."""
        if self._api is None:
            self._api = KennelClient.from_settings(self.settings, endpoint_url=self._endpoint_url)
        return self._api

    @property
    def region_name(self) -> str:
        return self.api.region

    @property
    def endpoint_url(self) -> str:
        return self.api.endpoint_url

    def account_id(self) -> str:
        """The account's 12-digit id."""
        status: dict[str, Any] = self.api.get("/api/v1/status")
        return str(status["account"]["account_id"])

    def upload_source(self, source: str | Path, entry_point: str | None = None) -> str:
        """Pack a source folder (or one script) as ``sourcedir.tar.gz`` and upload it;
        returns its artifact URI, what a training job's ``source_uri`` takes."""
        return upload_source(self.api, source, entry_point)

    def close(self) -> None:
        """Close the HTTP connection pool (the session reopens it if used again)."""
        if self._api is not None:
            self._api.close()
            self._api = None

    def __repr__(self) -> str:
        return (
            f"Session(endpoint_url={self._endpoint_url or self.settings.resolved_endpoint_url!r})"
        )


def upload_source(api: KennelClient, source: str | Path, entry_point: str | None = None) -> str:
    """Pack a source folder (or one script) as ``sourcedir.tar.gz`` and upload it through
    ``api``; returns its artifact URI, what a training job's ``source_uri`` takes."""
    path = Path(source)
    if not path.exists():
        raise ValidationError(
            f"source_dir {str(path)!r} does not exist.",
            hint="Give the folder that holds your entry point.",
        )
    if entry_point and path.is_dir() and not (path / entry_point).is_file():
        raise ValidationError(
            f"entry_point {entry_point!r} is not in source_dir {str(path)!r}.",
            hint="entry_point is a path inside source_dir.",
        )
    with tempfile.TemporaryDirectory(prefix="kennel-sdk-") as tmp:
        archive = Path(tmp) / "sourcedir.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            if path.is_dir():
                for item in sorted(path.iterdir()):
                    if item.name not in ("__pycache__", ".ipynb_checkpoints"):
                        tar.add(item, arcname=item.name)
            else:
                tar.add(path, arcname=path.name)
        answer = api.request("PUT", "/api/v1/uploads/sourcedir.tar.gz", upload=archive)
    return str(answer.json()["uri"])
