"""What the notebook-instance routes take, validated where it enters."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from kennel._spec import Spec

DEFAULT_INSTANCE_TYPE = "ml.t3.medium"
"""SageMaker's default notebook instance type (and the cheapest in the catalog)."""


class NotebookClient(Spec):
    """The ``kennel notebook`` process that runs the instance's JupyterLab."""

    host: str = Field(default="", max_length=255)
    pid: int | None = Field(default=None, ge=1)


def _workspace(value: str | None) -> str | None:
    if not value:
        return value
    if any(c in value for c in "\0\n\r"):
        raise ValueError("workspace must be one line of path text")
    if not (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute()):
        raise ValueError(f"workspace {value!r} must be an absolute path")
    return value


class NotebookInstanceSpec(Spec):
    """The body of ``POST /api/v1/notebook-instances``."""

    name: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    workspace: str = Field(default="", max_length=4096)
    """The folder JupyterLab serves, on the machine that runs it (absolute)."""
    client: NotebookClient = Field(default_factory=NotebookClient)

    @field_validator("workspace")
    @classmethod
    def _absolute_workspace(cls, value: str | None) -> str | None:
        return _workspace(value)


class StartNotebookInstance(Spec):
    """The body of ``POST /api/v1/notebook-instances/{name}/start`` (all optional)."""

    instance_type: str | None = None
    """A new instance type (a stopped instance may change it; the bill so far is kept)."""
    workspace: str | None = Field(default=None, max_length=4096)
    client: NotebookClient | None = None

    @field_validator("workspace")
    @classmethod
    def _absolute_workspace(cls, value: str | None) -> str | None:
        return _workspace(value)


class NotebookHeartbeat(Spec):
    """What the running ``kennel notebook`` reports, every few seconds and at its end.

    ``{}`` says "still running"; ``url`` says JupyterLab answers there (Pending ->
    InService); ``stopped`` says JupyterLab was stopped (-> Stopped); ``failure_reason``
    says it could not start or died (-> Failed).
    """

    url: str | None = Field(default=None, max_length=2048)
    stopped: bool = False
    failure_reason: str | None = Field(default=None, min_length=1, max_length=2048)

    @field_validator("url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url {value!r} must be an http(s) URL with a host")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(
                "url must not carry a query, fragment or credentials: leave JupyterLab's "
                "token out (it is a secret of the user who runs it)"
            )
        return value

    @model_validator(mode="after")
    def _one_report(self) -> NotebookHeartbeat:
        given = [self.url is not None, self.stopped, self.failure_reason is not None]
        if sum(given) > 1:
            raise ValueError("give at most one of url, stopped and failure_reason")
        return self
