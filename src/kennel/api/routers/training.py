"""``/api/v1/training-jobs``: SageMaker-style training jobs; ``/api/v1/instance-types``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from kennel.api._authz import authorize
from kennel.api._deps import Context
from kennel.training import CATALOG, TrainingJobSpec

router = APIRouter(prefix="/api/v1", tags=["training"])


@router.get("/instance-types", dependencies=[authorize("kennel:ListInstanceTypes")])
def list_instance_types() -> dict[str, Any]:
    return {"instance_types": [t.to_dict() for t in CATALOG.values()]}


@router.post(
    "/training-jobs",
    status_code=201,
    dependencies=[authorize("sagemaker:CreateTrainingJob", body="name")],
)
def create_training_job(spec: TrainingJobSpec, ctx: Context) -> dict[str, Any]:
    return ctx.training.create(spec)


@router.get("/training-jobs", dependencies=[authorize("sagemaker:ListTrainingJobs")])
def list_training_jobs(ctx: Context, status: str | None = None) -> dict[str, Any]:
    return {"training_jobs": ctx.training.list_all(status)}


@router.get(
    "/training-jobs/{name}", dependencies=[authorize("sagemaker:DescribeTrainingJob", path="name")]
)
def describe_training_job(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.training.describe(name)


@router.post(
    "/training-jobs/{name}/stop", dependencies=[authorize("sagemaker:StopTrainingJob", path="name")]
)
def stop_training_job(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.training.stop(name)


@router.get("/training-jobs/{name}/logs", dependencies=[authorize("logs:GetLogEvents")])
def training_job_logs(
    name: str,
    ctx: Context,
    host: str = "algo-1",
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    return ctx.training.logs(name, host, offset)


@router.get("/training-jobs/{name}/metrics", dependencies=[authorize("cloudwatch:GetMetricData")])
def training_job_metrics(name: str, ctx: Context) -> dict[str, Any]:
    return {"metrics": ctx.training.metrics(name)}


@router.get(
    "/training-jobs/{name}/report",
    response_class=HTMLResponse,
    dependencies=[authorize("sagemaker:DescribeTrainingJob", path="name")],
)
def training_job_report(name: str, ctx: Context) -> HTMLResponse:
    """The profiler report: one self-contained page (Plotly inlined)."""
    return HTMLResponse(ctx.training.report(name))
