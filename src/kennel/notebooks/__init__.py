"""Notebook instances: ``kennel notebook`` runs JupyterLab; the server records it and its bill.

The server side is ``NotebookService`` (the resource, its states and cost); the command's
side is ``_workspace`` (the folder, the examples, the environment kernels inherit) and
``_jupyter`` (the JupyterLab child process).
"""

from kennel.notebooks._lifecycle import LIVE, STATUSES
from kennel.notebooks._service import NotebookService
from kennel.notebooks._spec import (
    DEFAULT_INSTANCE_TYPE,
    NotebookHeartbeat,
    NotebookInstanceSpec,
    StartNotebookInstance,
)

__all__ = [
    "DEFAULT_INSTANCE_TYPE",
    "LIVE",
    "STATUSES",
    "NotebookHeartbeat",
    "NotebookInstanceSpec",
    "NotebookService",
    "StartNotebookInstance",
]
