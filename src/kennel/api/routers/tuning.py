"""``/api/v1/tuning-jobs``: SageMaker-style tuning jobs, whose trials are training jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from kennel.api._authz import authorize
from kennel.api._deps import Context
from kennel.tuning import TuningJobSpec, tuning_report

router = APIRouter(prefix="/api/v1", tags=["tuning"])


@router.post(
    "/tuning-jobs",
    status_code=201,
    dependencies=[authorize("sagemaker:CreateHyperParameterTuningJob", body="name")],
)
def create_tuning_job(spec: TuningJobSpec, ctx: Context) -> dict[str, Any]:
    return ctx.tuning.create(spec)


@router.get("/tuning-jobs", dependencies=[authorize("sagemaker:ListHyperParameterTuningJobs")])
def list_tuning_jobs(ctx: Context, status: str | None = None) -> dict[str, Any]:
    return {"tuning_jobs": ctx.tuning.list_all(status)}


@router.get(
    "/tuning-jobs/{name}",
    dependencies=[authorize("sagemaker:DescribeHyperParameterTuningJob", path="name")],
)
def describe_tuning_job(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.tuning.describe(name)


@router.get(
    "/tuning-jobs/{name}/report",
    # The same facts as describe, drawn: reading them needs what describe needs.
    dependencies=[authorize("sagemaker:DescribeHyperParameterTuningJob", path="name")],
    response_class=HTMLResponse,
)
def tuning_job_report(name: str, ctx: Context) -> HTMLResponse:
    """A self-contained HTML page: objective over trials, parameter importance, trials."""
    return HTMLResponse(tuning_report(ctx.tuning, name))


@router.post(
    "/tuning-jobs/{name}/stop",
    dependencies=[authorize("sagemaker:StopHyperParameterTuningJob", path="name")],
)
def stop_tuning_job(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.tuning.stop(name)


@router.get(
    "/tuning-jobs/{name}/training-jobs",
    dependencies=[authorize("sagemaker:ListTrainingJobsForHyperParameterTuningJob", path="name")],
)
def list_training_jobs_for_tuning_job(name: str, ctx: Context) -> dict[str, Any]:
    return {"training_jobs": ctx.tuning.trials(name)}
