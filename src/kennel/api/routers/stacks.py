"""``/api/v1/stacks``: what ``kennel up`` made from a stack file (the record ``down`` reads)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from kennel.api._authz import authorize
from kennel.api._deps import Context
from kennel.stack._record import StackRecord

router = APIRouter(prefix="/api/v1/stacks", tags=["stacks"])


@router.get("", dependencies=[authorize("kennel:ListStacks")])
def list_stacks(ctx: Context) -> dict[str, Any]:
    return {"stacks": ctx.stacks.list_all()}


@router.put("/{name}", dependencies=[authorize("kennel:PutStack", path="name")])
def put_stack(name: str, record: StackRecord, ctx: Context) -> dict[str, Any]:
    """Create or replace the record (the running ``kennel up``/``down`` sends all of it)."""
    return ctx.stacks.put(name, record)


@router.get("/{name}", dependencies=[authorize("kennel:GetStack", path="name")])
def get_stack(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.stacks.describe(name)


@router.delete(
    "/{name}", status_code=204, dependencies=[authorize("kennel:DeleteStack", path="name")]
)
def delete_stack(name: str, ctx: Context) -> Response:
    ctx.stacks.delete(name)
    return Response(status_code=204)
