"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from kennel.api._auth import Body
from kennel.api._context import ServerContext


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def get_body(request: Request) -> Body:
    body: Body = request.state.body
    return body


def get_identity(request: Request) -> Any:
    return request.state.identity


MAX_LOOKBACK_SECONDS = 100 * 365 * 86400
"""The longest ``since_seconds`` a route takes: before any record kennel keeps, and small
enough that ``now - since_seconds`` is still a date (past it, 400 rather than an overflow)."""
MAX_EPOCH_MS = 253_402_300_799_999
"""The last millisecond of year 9999, the latest time a ``since`` in epoch ms can name."""

Context = Annotated[ServerContext, Depends(get_context)]
RawBody = Annotated[Body, Depends(get_body)]
