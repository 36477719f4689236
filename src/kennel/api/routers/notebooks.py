"""``/api/v1/notebook-instances``: SageMaker-style notebook instances (``kennel notebook``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from kennel.api._authz import authorize
from kennel.api._deps import Context
from kennel.notebooks import NotebookHeartbeat, NotebookInstanceSpec, StartNotebookInstance

router = APIRouter(prefix="/api/v1/notebook-instances", tags=["notebooks"])


@router.post(
    "", status_code=201, dependencies=[authorize("sagemaker:CreateNotebookInstance", body="name")]
)
def create_notebook_instance(spec: NotebookInstanceSpec, ctx: Context) -> dict[str, Any]:
    return ctx.notebooks.create(spec)


@router.get("", dependencies=[authorize("sagemaker:ListNotebookInstances")])
def list_notebook_instances(ctx: Context, status: str | None = None) -> dict[str, Any]:
    return {"notebook_instances": ctx.notebooks.list_all(status)}


@router.get("/{name}", dependencies=[authorize("sagemaker:DescribeNotebookInstance", path="name")])
def describe_notebook_instance(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.notebooks.describe(name)


@router.post(
    "/{name}/start", dependencies=[authorize("sagemaker:StartNotebookInstance", path="name")]
)
def start_notebook_instance(
    name: str, ctx: Context, spec: StartNotebookInstance | None = None
) -> dict[str, Any]:
    return ctx.notebooks.start(name, spec or StartNotebookInstance())


@router.post(
    "/{name}/stop", dependencies=[authorize("sagemaker:StopNotebookInstance", path="name")]
)
def stop_notebook_instance(name: str, ctx: Context, request: Request) -> dict[str, Any]:
    return ctx.notebooks.stop(name, requested_by=request.state.identity.principal)


@router.post(
    "/{name}/heartbeat",
    dependencies=[authorize("sagemaker:UpdateNotebookInstance", path="name")],
)
def notebook_instance_heartbeat(name: str, beat: NotebookHeartbeat, ctx: Context) -> dict[str, Any]:
    """The running ``kennel notebook`` reports; the answer carries the state it must follow."""
    return ctx.notebooks.heartbeat(name, beat)


@router.delete("/{name}", dependencies=[authorize("sagemaker:DeleteNotebookInstance", path="name")])
def delete_notebook_instance(name: str, ctx: Context) -> dict[str, Any]:
    ctx.notebooks.delete(name)
    return {"deleted": name}
