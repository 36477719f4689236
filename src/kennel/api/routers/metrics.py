"""``GET /metrics``: every metric kennel keeps, for Prometheus (text format 0.0.4).

Signed and authorized like any route (``kennel:GetMetrics``). The counters are read on
the event loop, which alone writes them; the store and the rendering run in a thread.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from kennel.api._authz import authorize
from kennel.api._deps import Context
from kennel.api._metrics import CONTENT_TYPE, read_live, render

router = APIRouter(tags=["metrics"])


@router.get("/metrics", dependencies=[authorize("kennel:GetMetrics")])
async def metrics(ctx: Context) -> Response:
    live = read_live(ctx)
    body = await run_in_threadpool(render, ctx, live)
    return Response(content=body, media_type=CONTENT_TYPE)
