"""The gateway: one ASGI app on one port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from kennel import __version__
from kennel.api._auth import SigV4Middleware
from kennel.api._context import ServerContext
from kennel.api._errors import install_error_handlers
from kennel.api.routers import datasets, runtime, status


def create_app(ctx: ServerContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.ray.start_in_background()
        try:
            yield
        finally:
            ctx.ray.stop()
            ctx.db.dispose()

    app = FastAPI(
        title="kennel",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for module in (status, datasets, runtime):
        app.include_router(module.router)
    app.add_middleware(SigV4Middleware, ctx=ctx)
    return app
