"""``GET /api/v1/status``: the server, Ray and the store at a glance."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from kennel import __version__
from kennel.api._authz import authorize
from kennel.api._deps import Context

router = APIRouter(prefix="/api/v1", tags=["status"])


@router.get("/status", dependencies=[authorize("kennel:GetServerStatus")])
def status(ctx: Context, request: Request) -> dict[str, Any]:
    settings = ctx.settings
    return {
        "server": {
            "version": __version__,
            "pid": ctx.pid,
            "url": settings.resolved_endpoint_url,
            "uptime_seconds": round(time.time() - ctx.started_at, 1),
            "home": str(settings.home),
            "caller": request.state.identity.principal,
        },
        "account": {"account_id": ctx.account_id, "region": ctx.region},
        "ray": ctx.ray.describe(),
        "store": {
            "database": ctx.db.display_url,
            "schema_revision": ctx.db.revision(),
            "schema_head": ctx.db.head_revision(),
            "artifacts": ctx.artifacts.url,
        },
    }
