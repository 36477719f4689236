"""``/api/v1/models``: SageMaker-style models (a model.tar.gz, checked and kept)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kennel.api._authz import authorize
from kennel.api._deps import Context
from kennel.endpoints._spec import ModelSpec

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.post("", status_code=201, dependencies=[authorize("sagemaker:CreateModel", body="name")])
def create_model(spec: ModelSpec, ctx: Context) -> dict[str, Any]:
    return ctx.models.create(spec)


@router.get("", dependencies=[authorize("sagemaker:ListModels")])
def list_models(ctx: Context) -> dict[str, Any]:
    return {"models": ctx.models.list_all()}


@router.get("/{name}", dependencies=[authorize("sagemaker:DescribeModel", path="name")])
def describe_model(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.models.describe(name)


@router.delete("/{name}", dependencies=[authorize("sagemaker:DeleteModel", path="name")])
def delete_model(name: str, ctx: Context) -> dict[str, Any]:
    ctx.models.delete(name)
    return {"deleted": name}
