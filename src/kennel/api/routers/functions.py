"""``/api/v1/functions/{name}/...``: what AWS keeps in CloudWatch, for kennel's functions.

Invocation logs (each invocation's START .. REPORT text; ``after_id`` follows them, as
``kennel functions logs -f`` does), the asynchronous invocations with their outcome (a
failed one keeps its last error: the on-failure record) and the function's metrics.
The functions themselves are Lambda's API (``lambda_api``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from kennel.api._authz import authorize
from kennel.api._deps import MAX_EPOCH_MS, MAX_LOOKBACK_SECONDS, Context

router = APIRouter(prefix="/api/v1/functions", tags=["functions"])

EVENT_STATUSES = ("queued", "running", "succeeded", "failed", "expired")


@router.get("/{name}/logs", dependencies=[authorize("logs:FilterLogEvents", path="name")])
async def function_logs(
    name: str,
    ctx: Context,
    since: int | None = Query(
        default=None, ge=0, le=MAX_EPOCH_MS, description="epoch milliseconds"
    ),
    after_id: int | None = Query(default=None, ge=0),
    limit: int = Query(default=1000, ge=1, le=10000),
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: ctx.functions.logs(name, since_ms=since, after_id=after_id, limit=limit)
    )


@router.get("/{name}/events", dependencies=[authorize("kennel:ListFunctionEvents", path="name")])
async def function_events(
    name: str,
    ctx: Context,
    status: str | None = Query(default=None, pattern="^(" + "|".join(EVENT_STATUSES) + ")$"),
    limit: int = Query(default=1000, ge=1, le=10000),
) -> dict[str, Any]:
    return await run_in_threadpool(lambda: ctx.functions.events(name, status=status, limit=limit))


@router.get("/{name}/metrics", dependencies=[authorize("cloudwatch:GetMetricData")])
async def function_metrics(
    name: str,
    ctx: Context,
    since_seconds: float = Query(default=3600.0, gt=0, le=MAX_LOOKBACK_SECONDS),
) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.metrics, name, since_seconds)
