"""Every route names the action it performs and the resource it acts on.

A route declares ``dependencies=[authorize("sagemaker:CreateTrainingJob", body="name")]``;
the dependency builds the resource ARN (from a path parameter or a field of the JSON body)
and asks the authorizer before the route body runs. A denial is AWS's 403
AccessDeniedException. ``tests/unit/api/test_route_actions.py`` enumerates the app's
routes and fails on any without one of these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from kennel import _json
from kennel.api._context import ServerContext
from kennel.iam._actions import ACTIONS, action
from kennel.iam._authorizer import Outcome, RequestFacts

NameOf = Callable[[Request], Awaitable[str]]


def request_facts(scope: dict[str, Any] | Any) -> RequestFacts:
    state = scope.get("state", {})
    client = scope.get("client")
    identity = state.get("identity")
    return RequestFacts(
        request_id=state.get("request_id", ""),
        source_ip=client[0] if client else "",
        secure=scope.get("scheme") == "https",
        region=getattr(identity, "region", ""),
    )


async def authorize_now(
    ctx: ServerContext,
    scope: dict[str, Any] | Any,
    full_action: str,
    resource: str,
    extra_context: dict[str, Any] | None = None,
) -> Outcome:
    """Authorize the request in ``scope`` (off the event loop: a cache miss reads the DB)."""
    identity = scope["state"]["identity"]
    return await run_in_threadpool(
        ctx.authorizer.authorize,
        identity.access_key_id,
        full_action,
        resource,
        request_facts(scope),
        extra_context=extra_context,
    )


async def authorize_hot(
    ctx: ServerContext,
    scope: dict[str, Any] | Any,
    full_action: str,
    resource: str,
    extra_context: dict[str, Any] | None = None,
) -> Outcome:
    """Authorize on a hot path (InvokeEndpoint, Invoke): the principal comes from the
    authorizer's cache, read in a thread only on a miss, and the decision is made on the
    event loop. Raises the KennelError of a principal that cannot be found."""
    authorizer = ctx.authorizer
    key = scope["state"]["identity"].access_key_id
    principal = authorizer.cached(key)
    if principal is None:
        principal = await asyncio.to_thread(authorizer.principal, key)
    return authorizer.check(
        principal, full_action, resource, request_facts(scope), extra_context=extra_context
    )


class Authorize:
    """The FastAPI dependency that authorizes one route's action."""

    def __init__(self, full_action: str, name_of: NameOf | None = None) -> None:
        self.action = action(full_action)
        self.name_of = name_of

    async def __call__(self, request: Request) -> Outcome:
        ctx: ServerContext = request.app.state.ctx
        name = await self.name_of(request) if self.name_of is not None else ""
        resource = self.action.arn(ctx.region, ctx.account_id, name)
        return await authorize_now(ctx, request.scope, self.action.full, resource)


def _path(param: str) -> NameOf:
    async def name_of(request: Request) -> str:
        return str(request.path_params.get(param, ""))

    return name_of


def _body(field: str) -> NameOf:
    async def name_of(request: Request) -> str:
        try:
            document = _json.loads(await request.body() or b"{}")
        except ValueError:
            return ""
        value = document.get(field) if isinstance(document, dict) else None
        return value if isinstance(value, str) else ""

    return name_of


def authorize(full_action: str, *, path: str | None = None, body: str | None = None) -> Any:
    """``Depends`` on authorizing ``full_action`` on the resource named by ``path``/``body``."""
    if full_action not in ACTIONS:
        raise KeyError(f"{full_action} is not in the action catalog (iam/_actions.py)")
    name_of = _path(path) if path else _body(body) if body else None
    return Depends(Authorize(full_action, name_of))
