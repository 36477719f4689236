"""``/api/v1/stacks``: what ``kennel up`` made from a stack file (the record ``down`` reads),
and the lock that lets one ``kennel up``/``down`` at a time change it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from kennel.api._authz import authorize
from kennel.api._deps import Context
from kennel.stack._record import StackLockRequest, StackRecord

router = APIRouter(prefix="/api/v1/stacks", tags=["stacks"])

Owner = Annotated[
    str | None,
    Query(max_length=64, description="The token of the run holding the stack's lock."),
]


@router.get("", dependencies=[authorize("kennel:ListStacks")])
def list_stacks(ctx: Context) -> dict[str, Any]:
    return {"stacks": ctx.stacks.list_all()}


@router.put("/{name}", dependencies=[authorize("kennel:PutStack", path="name")])
def put_stack(name: str, record: StackRecord, ctx: Context, owner: Owner = None) -> dict[str, Any]:
    """Create or replace the record (the running ``kennel up``/``down`` sends all of it,
    naming its lock with ``?owner=``); 409 while another run holds the lock."""
    return ctx.stacks.put(name, record, owner)


@router.get("/{name}", dependencies=[authorize("kennel:GetStack", path="name")])
def get_stack(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.stacks.describe(name)


@router.delete(
    "/{name}", status_code=204, dependencies=[authorize("kennel:DeleteStack", path="name")]
)
def delete_stack(name: str, ctx: Context, owner: Owner = None) -> Response:
    ctx.stacks.delete(name, owner)
    return Response(status_code=204)


@router.post("/{name}/lock", dependencies=[authorize("kennel:PutStack", path="name")])
def lock_stack(name: str, request: StackLockRequest, ctx: Context) -> dict[str, Any]:
    """Take the lock (atomically: of two runs, one gets it and the other a 409), or renew
    it (``renew``). An expired lock, whose run stopped renewing it, is taken over."""
    return ctx.stacks.lock(name, request)


@router.delete(
    "/{name}/lock", status_code=204, dependencies=[authorize("kennel:PutStack", path="name")]
)
def unlock_stack(
    name: str, ctx: Context, owner: Annotated[str, Query(min_length=1, max_length=64)]
) -> Response:
    """Release the lock if ``owner`` holds it (anything else: nothing happens)."""
    ctx.stacks.unlock(name, owner)
    return Response(status_code=204)
