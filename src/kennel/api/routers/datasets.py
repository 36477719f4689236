"""``/api/v1/datasets``: labelled image sets in the train/valid/test layout."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from pydantic import Field, model_validator

from kennel._errors import ValidationError
from kennel._spec import Spec
from kennel.api._authz import authorize
from kennel.api._deps import Context, RawBody

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


class DemoOptions(Spec):
    image_size: int = Field(default=64, ge=8, le=512)
    seed: int = 0


class CreateDataset(Spec):
    """Create from a URL the server fetches, or render the demo set."""

    name: str
    source_url: str | None = None
    demo: DemoOptions | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CreateDataset:
        if (self.source_url is None) == (self.demo is None):
            raise ValueError("give exactly one of source_url or demo")
        return self


@router.post("", status_code=201, dependencies=[authorize("kennel:CreateDataset", body="name")])
def create_dataset(spec: CreateDataset, ctx: Context) -> dict[str, Any]:
    if spec.demo is not None:
        return ctx.datasets.create_demo(
            spec.name, image_size=spec.demo.image_size, seed=spec.demo.seed
        )
    assert spec.source_url is not None
    return ctx.datasets.create_from_url(spec.name, spec.source_url)


@router.put(
    "/{name}", status_code=201, dependencies=[authorize("kennel:CreateDataset", path="name")]
)
def upload_dataset(name: str, body: RawBody, ctx: Context) -> dict[str, Any]:
    """The body is the archive itself (.zip or .tar[.gz]), as the CLI uploads it."""
    if body.size == 0:
        raise ValidationError(
            "The request body is empty.", hint="Send the data set archive as the body."
        )
    staging = Path(tempfile.mkdtemp(prefix="upload-", dir=ctx.settings.tmp_dir))
    try:
        archive = staging / "archive"
        with archive.open("wb") as out:
            shutil.copyfileobj(body.file, out, 2**20)
        return ctx.datasets.create_from_archive(name, archive, source="upload")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@router.get("", dependencies=[authorize("kennel:ListDatasets")])
def list_datasets(ctx: Context) -> dict[str, Any]:
    return {"datasets": ctx.datasets.list_all()}


@router.get("/{name}", dependencies=[authorize("kennel:DescribeDataset", path="name")])
def describe_dataset(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.datasets.describe(name)


@router.get(
    "/{name}/samples/{split}/{class_name}/{index}",
    # A sample is part of what describing a data set shows: the same permission reads it.
    dependencies=[authorize("kennel:DescribeDataset", path="name")],
)
def dataset_sample(
    name: str, split: str, class_name: str, ctx: Context, index: int = PathParam(ge=0, le=10_000)
) -> Response:
    """One image of a class (the ``index``-th in name order), as its own media type."""
    data, media = ctx.datasets.sample(name, split, class_name, index)
    return Response(
        data,
        media_type=media,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.delete(
    "/{name}", status_code=204, dependencies=[authorize("kennel:DeleteDataset", path="name")]
)
def delete_dataset(name: str, ctx: Context) -> Response:
    ctx.datasets.delete(name)
    return Response(status_code=204)
