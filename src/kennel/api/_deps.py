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


Context = Annotated[ServerContext, Depends(get_context)]
RawBody = Annotated[Body, Depends(get_body)]
