"""``/api/v1/endpoints/{name}/monitoring...``: model monitoring of an endpoint's traffic.

The schedule (and its alarm), on-demand runs, executions with their HTML reports, ground
truth for captured inferences, and a model's baseline (``/api/v1/models/{name}/baseline``).
Runs call the worker process and take seconds: the routes are sync (FastAPI's threadpool).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from kennel._errors import PayloadTooLargeError
from kennel.api._authz import authorize
from kennel.api._deps import Context, RawBody
from kennel.monitoring._schedule import BaselineSpec, RunSpec, ScheduleSpec

router = APIRouter(prefix="/api/v1", tags=["monitoring"])

MAX_LABELS_BYTES = 64 * 2**20


@router.put(
    "/endpoints/{name}/monitoring-schedule",
    dependencies=[authorize("sagemaker:CreateMonitoringSchedule", path="name")],
)
def put_schedule(name: str, spec: ScheduleSpec, ctx: Context) -> dict[str, Any]:
    return ctx.monitoring.put_schedule(name, spec)


@router.get(
    "/monitoring-schedules",
    dependencies=[authorize("sagemaker:ListMonitoringSchedules")],
)
def list_schedules(
    ctx: Context, endpoint: str | None = Query(default=None, min_length=1, max_length=63)
) -> dict[str, Any]:
    """The schedules (one per monitored endpoint); ``?endpoint=`` keeps that endpoint's, so
    a caller learns whether it is monitored without a 404."""
    return {"schedules": ctx.monitoring.list_schedules(endpoint)}


@router.get(
    "/endpoints/{name}/monitoring-schedule",
    dependencies=[authorize("sagemaker:DescribeMonitoringSchedule", path="name")],
)
def describe_schedule(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.monitoring.describe_schedule(name)


@router.delete(
    "/endpoints/{name}/monitoring-schedule",
    dependencies=[authorize("sagemaker:DeleteMonitoringSchedule", path="name")],
)
def delete_schedule(name: str, ctx: Context) -> dict[str, Any]:
    ctx.monitoring.delete_schedule(name)
    return {"deleted": name}


@router.post(
    "/endpoints/{name}/monitoring/run",
    dependencies=[authorize("sagemaker:StartMonitoringSchedule", path="name")],
)
def run_monitoring(name: str, ctx: Context, spec: RunSpec | None = None) -> dict[str, Any]:
    """Compare the window (default: since the last run, else the last hour) now, with
    the captures still queued in the gateway written first."""
    ctx.capture.flush()
    return ctx.monitoring.run(name, spec)


@router.get(
    "/endpoints/{name}/monitoring/executions",
    dependencies=[authorize("sagemaker:ListMonitoringExecutions")],
)
def list_executions(
    name: str, ctx: Context, limit: int = Query(default=20, ge=1, le=1000)
) -> dict[str, Any]:
    return {"executions": ctx.monitoring.list_executions(name, limit=limit)}


@router.get(
    "/endpoints/{name}/monitoring/executions/{execution_id}",
    dependencies=[authorize("sagemaker:DescribeMonitoringSchedule", path="name")],
)
def describe_execution(name: str, execution_id: str, ctx: Context) -> dict[str, Any]:
    return ctx.monitoring.describe_execution(name, execution_id)


@router.get(
    "/endpoints/{name}/monitoring/executions/{execution_id}/report",
    dependencies=[authorize("sagemaker:DescribeMonitoringSchedule", path="name")],
    response_class=HTMLResponse,
)
def execution_report(name: str, execution_id: str, ctx: Context) -> HTMLResponse:
    return HTMLResponse(ctx.monitoring.report(name, execution_id))


@router.post(
    "/endpoints/{name}/labels",
    dependencies=[authorize("kennel:PutGroundTruth", path="name")],
)
def put_labels(name: str, body: RawBody, ctx: Context) -> dict[str, Any]:
    """JSON Lines of ground truth: kennel's ``{"inference_id", "label"}`` or SageMaker's."""
    if body.size > MAX_LABELS_BYTES:
        raise PayloadTooLargeError(
            f"The labels are {body.size} bytes; at most {MAX_LABELS_BYTES} go in one request.",
            hint="Send them in several files.",
        )
    body.file.seek(0)
    return ctx.monitoring.put_labels(name, body.file.read())


@router.post(
    "/models/{name}/baseline",
    status_code=202,
    dependencies=[authorize("kennel:CreateModelBaseline", path="name")],
)
def create_baseline(name: str, ctx: Context, spec: BaselineSpec | None = None) -> dict[str, Any]:
    """(Re)compute the model's baseline in the background; watch ``details.baseline``."""
    return ctx.monitoring.request_baseline(name, spec or BaselineSpec())
