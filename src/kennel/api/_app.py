"""The gateway: one ASGI app on one port."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from kennel import __version__
from kennel.api._auth import ASGIApp, SigV4Middleware
from kennel.api._console import Console
from kennel.api._context import ServerContext
from kennel.api._dataplane import DataPlane
from kennel.api._errors import install_error_handlers
from kennel.api._functions_plane import FunctionsPlane
from kennel.api._server_file import remember_processes
from kennel.api.routers import (
    aws_query,
    datasets,
    endpoints,
    functions,
    iam,
    lambda_api,
    metrics,
    models,
    monitoring,
    notebooks,
    stacks,
    status,
    training,
    tuning,
    uploads,
)

log = logging.getLogger(__name__)

ROUTERS = (
    status,
    datasets,
    training,
    tuning,
    uploads,
    models,
    endpoints,
    monitoring,
    lambda_api,
    functions,
    notebooks,
    stacks,
    metrics,
    iam,
    aws_query,
)


def create_app(ctx: ServerContext) -> ASGIApp:
    """The gateway: the console's pages, SigV4 verification (or the console's session
    cookie), then InvokeEndpoint, then the FastAPI control plane.

    The two outer layers wrap the FastAPI app rather than being added as its middleware:
    FastAPI puts its own error, telemetry and body-limit middleware outside user
    middleware, and InvokeEndpoint (the hot path, with a 1 ms overhead budget) need pay
    for none of them. Errors of the outer layers are written in AWS's shape by themselves.
    """
    app = create_control_plane(ctx)
    return Console(SigV4Middleware(DataPlane(FunctionsPlane(app, ctx), ctx), ctx), ctx)


def create_control_plane(ctx: ServerContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.ray.start_in_background()
        ctx.endpoints.start()
        ctx.autoscaler.start()
        ctx.monitoring.start()
        ctx.access_log.start()
        await ctx.function_runtime.start()
        keeper = asyncio.create_task(_keep_signal_handlers(ctx))
        recorder = asyncio.create_task(_remember_processes(ctx))
        try:
            yield
        finally:
            keeper.cancel()
            recorder.cancel()
            await ctx.function_runtime.stop()
            await asyncio.to_thread(ctx.monitoring.stop)
            await asyncio.to_thread(ctx.autoscaler.stop)
            await asyncio.to_thread(ctx.endpoints.shutdown)
            await asyncio.to_thread(ctx.capture.close)
            # Tuning first: its controllers must not launch trials into a stopping training.
            await asyncio.to_thread(ctx.tuning.shutdown)
            await asyncio.to_thread(ctx.training.shutdown)
            await asyncio.to_thread(ctx.ray.stop)
            await asyncio.to_thread(ctx.access_log.stop)
            ctx.db.dispose()

    app = FastAPI(
        title="kennel",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return app


async def _remember_processes(ctx: ServerContext) -> None:
    """Record Ray's head processes in ``server.json`` once they run (and again a little
    later, for agents the raylet starts after it registers): should this server be
    killed outright, the next one stops them (see ``kennel.cluster._leftovers``)."""
    try:
        if not await asyncio.to_thread(ctx.ray.wait, 600):
            return
        for delay in (0.0, 5.0):
            await asyncio.sleep(delay)
            await asyncio.to_thread(remember_processes, ctx.settings.server_file)
    except Exception:
        log.exception("recording the server's processes in server.json failed")


async def _keep_signal_handlers(ctx: ServerContext) -> None:
    """Put the server's SIGTERM/SIGINT handlers back once Ray has started.

    Ray's core worker installs a C-level failure handler for SIGTERM that kills the
    process outright; re-installing the Python handlers (uvicorn's) keeps shutdown clean.
    This runs on the event loop, i.e. the main thread, where signal.signal() is allowed.
    """
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    await asyncio.to_thread(ctx.ray.wait, 600)
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)
