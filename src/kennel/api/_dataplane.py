"""SageMaker Runtime's InvokeEndpoint in the gateway: ``POST /endpoints/{name}/invocations``.

Wire-compatible with boto3's ``sagemaker-runtime`` client: the request's Content-Type,
Accept, ``X-Amzn-SageMaker-Custom-Attributes`` and ``X-Amzn-SageMaker-Target-Variant`` go
to the chosen instance; the answer comes back with ``x-Amzn-Invoked-Production-Variant``.
Errors carry ``x-amzn-ErrorType`` and AWS's codes: ValidationError 400, ModelError 424
(the instance answered non-2xx: OriginalStatusCode, OriginalMessage, LogStreamArn),
ModelNotReadyException 429, InternalFailure 500, ServiceUnavailable 503.

It is a bare ASGI layer in front of the FastAPI app (after the SigV4 check), not a route:
the gateway's overhead budget (p50 <= 1 ms over calling the instance directly) leaves no
room for request objects, dependency injection or validation models on this path.

Data capture costs a request nothing unless it is sampled: an attribute check (the variant's
capture settings) and, when capture is on, one random draw. A sampled 2xx answer gets
``x-kennel-capture-event-id`` and, once sent, is handed to the capture writer's in-memory
queue (``kennel.endpoints._capture``); encoding and writing happen in its thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import unquote

from kennel._errors import KennelError
from kennel.api._auth import Message, Receive, Scope, Send
from kennel.api._authz import authorize_hot
from kennel.api._context import ServerContext
from kennel.endpoints._capture import EVENT_ID_HEADER
from kennel.endpoints._routing import Backend, EndpointRoute, VariantRoute
from kennel.endpoints._upstream import UpstreamError, UpstreamTimeout
from kennel.iam._actions import ACTIONS

log = logging.getLogger(__name__)

INVOKE_ACTION = "sagemaker:InvokeEndpoint"
PREFIX = "/endpoints/"
SUFFIX = "/invocations"
MAX_CUSTOM_ATTRIBUTES = 1024
MAX_INFERENCE_ID = 64
HOLD_POLL_SECONDS = 0.02
"""How often a held request looks for its variant's first instance."""
RETRY_AFTER_SECONDS = 5

_CONTENT_TYPE = b"content-type"
_ACCEPT = b"accept"
_CUSTOM = b"x-amzn-sagemaker-custom-attributes"
_TARGET = b"x-amzn-sagemaker-target-variant"
_INFERENCE_ID = b"x-amzn-sagemaker-inference-id"
_DEFAULT_CONTENT_TYPE = b"application/octet-stream"


class InvokeError(Exception):
    """An InvokeEndpoint error in AWS's shape."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None, **fields: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.fields = fields


def _validation(message: str) -> InvokeError:
    return InvokeError(400, "ValidationError", message)


class DataPlane:
    """Handles InvokeEndpoint; everything else goes on to ``app``."""

    def __init__(self, app: Any, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx
        self.routes = ctx.endpoints.routes
        self.timeout = ctx.settings.endpoint_model_timeout_seconds
        self.arn_prefix = ACTIONS[INVOKE_ACTION].arn(ctx.region, ctx.account_id, "")
        self.capture = ctx.capture
        self._draw = ctx.capture.random

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                if self.routes.loop is None:
                    self.routes.loop = asyncio.get_running_loop()
                await self._invoke(scope, path[len(PREFIX) : -len(SUFFIX)], send)
                return
        elif scope["type"] == "lifespan" and self.routes.loop is None:
            self.routes.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    async def _invoke(self, scope: Scope, raw_name: str, send: Send) -> None:
        started = time.perf_counter()
        try:
            if scope["method"] != "POST":
                raise InvokeError(
                    405, "UnknownOperationException", "InvokeEndpoint takes POST only."
                )
            name = unquote(raw_name)
            await self._authorize(scope, name)
            headers = _headers(scope)
            route = self._route(name)
            variant = self._variant(route, headers.get(_TARGET))
            body: bytes = scope["state"]["body"].file.read()
            forward = [(_CONTENT_TYPE, headers.get(_CONTENT_TYPE) or _DEFAULT_CONTENT_TYPE)]
            accept = headers.get(_ACCEPT)
            if accept:
                forward.append((_ACCEPT, accept))
            custom = headers.get(_CUSTOM)
            if custom is not None:
                if len(custom) > MAX_CUSTOM_ATTRIBUTES:
                    raise _validation(
                        "1 validation error detected: Value at 'customAttributes' failed to "
                        f"satisfy constraint: Member must have length less than or equal to "
                        f"{MAX_CUSTOM_ATTRIBUTES}"
                    )
                forward.append((_CUSTOM, custom))
            inference_id = headers.get(_INFERENCE_ID)
            if inference_id is not None and len(inference_id) > MAX_INFERENCE_ID:
                raise _validation(
                    "1 validation error detected: Value at 'inferenceId' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {MAX_INFERENCE_ID}"
                )
            await self._forward(route, variant, forward, body, started, send, inference_id)
        except InvokeError as error:
            await _send_error(send, error)
        except Exception as error:
            log.exception("InvokeEndpoint failed unexpectedly")
            await _send_error(
                send,
                InvokeError(
                    500,
                    "InternalFailure",
                    f"An internal failure occurred ({type(error).__name__}: {error}); see the "
                    "server log (logs/server.log in the kennel home).",
                ),
            )

    async def _authorize(self, scope: Scope, name: str) -> None:
        """sagemaker:InvokeEndpoint on the endpoint's ARN, before anything else is looked at."""
        resource = self.arn_prefix + name.lower()
        try:
            outcome = await authorize_hot(self.ctx, scope, INVOKE_ACTION, resource)
        except KennelError as error:
            raise InvokeError(error.status, error.aws_code, error.message) from error
        if not outcome.allowed:
            raise InvokeError(403, "AccessDeniedException", outcome.message)

    def _route(self, name: str) -> EndpointRoute:
        route = self.routes.get(name)
        account = self.ctx.account_id
        if route is None:
            raise _validation(f"Endpoint {name} of account {account} not found.")
        if route.status in ("Creating", "Failed", "Deleting"):
            raise _validation(
                f"Endpoint {name} of account {account} is {route.status}, not InService; "
                "invoke it once it is InService (kennel endpoints describe " + name + ")."
            )
        if not route.deployments:
            raise InvokeError(
                429,
                "ModelNotReadyException",
                f"Endpoint {name} is {route.status} and its instances are still starting; "
                "retry in a few seconds.",
            )
        return route

    @staticmethod
    def _variant(route: EndpointRoute, target: bytes | None) -> VariantRoute:
        if target is None:
            return route.choose_deployment().choose_variant()
        wanted = target.decode("latin-1")
        for deployment, _ in route.deployments:
            found = deployment.variant(wanted)
            if found is not None:
                return found
        raise _validation(
            f"Variant {wanted} not found for endpoint {route.name}; its variants are "
            f"{', '.join(route.variant_names())}."
        )

    async def _forward(
        self,
        route: EndpointRoute,
        variant: VariantRoute,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        started: float,
        send: Send,
        inference_id: bytes | None = None,
    ) -> None:
        tried: Backend | None = None
        while True:
            backend = variant.pick(exclude=tried)
            if backend is None and not variant.backends and variant.wake is not None:
                backend = await self._hold(route, variant)
            if backend is None:
                if not variant.backends or route.status == "SystemUpdating":
                    raise InvokeError(
                        429,
                        "ModelNotReadyException",
                        f"Variant {variant.name} of endpoint {route.name} has no instance "
                        "ready yet (one is being started); retry in a few seconds.",
                    )
                raise InvokeError(
                    503,
                    "ServiceUnavailable",
                    f"No healthy instance of variant {variant.name} of endpoint {route.name} "
                    "right now (a replacement is starting); retry in a few seconds.",
                )
            backend.outstanding += 1
            sent_at = time.perf_counter()
            try:
                response = await backend.pool.request(
                    b"POST", b"/invocations", headers, body, timeout=self.timeout
                )
            except UpstreamTimeout:
                self._record(variant, 504, sent_at, started, model_error=True)
                raise InvokeError(
                    424,
                    "ModelError",
                    f'Received server error (0) from primary with message "Your invocation '
                    f"timed out while waiting for a response from container primary after "
                    f'{self.timeout:g} s.". See {self._log_arn(route.name)} for more information.',
                    OriginalStatusCode=504,
                    OriginalMessage="invocation timed out",
                    LogStreamArn=self._log_arn(route.name),
                ) from None
            except UpstreamError as error:
                backend.mark_failed()
                if not error.sent and tried is None:
                    tried = backend  # nothing reached it: another instance may answer
                    continue
                self._record(variant, 503, sent_at, started, model_error=False)
                raise InvokeError(
                    503,
                    "ServiceUnavailable",
                    f"The instance serving this request on endpoint {route.name} "
                    f"(variant {variant.name}) stopped before answering: {error}. It is "
                    "being replaced; retry the request.",
                ) from None
            finally:
                backend.outstanding -= 1
            break
        status = response.status
        if 200 <= status < 300:
            self._record(variant, status, sent_at, started, model_error=False)
            out = [
                (b"content-type", response.headers.get(b"content-type", _DEFAULT_CONTENT_TYPE)),
                (b"x-amzn-invoked-production-variant", variant.name.encode()),
            ]
            custom = response.headers.get(_CUSTOM)
            if custom is not None:
                out.append((_CUSTOM, custom))
            capture = variant.capture
            if capture is None or self._draw() >= capture.fraction:
                await _send(send, 200, out, response.body)
                return
            event_id = self.capture.new_event_id()
            out.append((EVENT_ID_HEADER, event_id.encode()))
            await _send(send, 200, out, response.body)
            self.capture.submit(
                capture,
                variant.name,
                event_id,
                None if inference_id is None else inference_id.decode("latin-1"),
                body,
                headers[0][1].decode("latin-1"),
                response.body,
                out[0][1].decode("latin-1"),
            )
            return
        self._record(variant, status, sent_at, started, model_error=True)
        original = response.body.decode("utf-8", errors="replace")
        kind = "client" if status < 500 else "server"
        log_arn = self._log_arn(route.name)
        raise InvokeError(
            424,
            "ModelError",
            f'Received {kind} error ({status}) from primary with message "{original}". '
            f"See {log_arn} for more information.",
            OriginalStatusCode=status,
            OriginalMessage=original,
            LogStreamArn=log_arn,
        )

    async def _hold(self, route: EndpointRoute, variant: VariantRoute) -> Backend | None:
        """A variant scaled to zero: wait (bounded) while its first instance starts.

        The request is held, not dropped: it waits up to ``endpoint_hold_seconds`` for an
        instance to pass ``/ping``. Beyond ``endpoint_hold_max_requests`` waiting, or
        when nothing is starting, the caller gets 429 with Retry-After at once.
        """
        settings = self.ctx.settings
        if variant.held >= settings.endpoint_hold_max_requests:
            raise _retry_later(
                route,
                variant,
                f"{variant.held} requests are already waiting for its first instance",
            )
        wake = variant.wake
        if wake is None or not wake():
            return None
        variant.held += 1
        try:
            deadline = time.monotonic() + settings.endpoint_hold_seconds
            while time.monotonic() < deadline:
                await asyncio.sleep(HOLD_POLL_SECONDS)
                backend = variant.pick()
                if backend is not None:
                    return backend
        finally:
            variant.held -= 1
        raise _retry_later(
            route,
            variant,
            f"its first instance did not start within {settings.endpoint_hold_seconds:g} s",
        )

    def _record(
        self,
        variant: VariantRoute,
        status: int,
        sent_at: float,
        started: float,
        *,
        model_error: bool,
    ) -> None:
        done = time.perf_counter()
        model_us = (done - sent_at) * 1e6
        overhead_us = (sent_at - started) * 1e6
        variant.stats.record(status, model_us, overhead_us, model_error)
        variant.watch.record(status, model_us, overhead_us, model_error)
        variant.totals.record(status, model_us, overhead_us, model_error)

    def _log_arn(self, endpoint: str) -> str:
        ctx = self.ctx
        return (
            f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:"
            f"/aws/sagemaker/Endpoints/{endpoint}"
        )


def _retry_later(route: EndpointRoute, variant: VariantRoute, why: str) -> InvokeError:
    return InvokeError(
        429,
        "ModelNotReadyException",
        f"Variant {variant.name} of endpoint {route.name} is scaled to zero and {why}; "
        f"retry after {RETRY_AFTER_SECONDS} s.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def _headers(scope: Scope) -> dict[bytes, bytes]:
    wanted = (_CONTENT_TYPE, _ACCEPT, _CUSTOM, _TARGET, _INFERENCE_ID)
    return {name: value for name, value in scope["headers"] if name in wanted}


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: InvokeError) -> None:
    body = json.dumps({"message": error.message, **error.fields}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"x-amzn-errortype", error.code.encode()),
    ]
    if error.retry_after is not None:
        headers.append((b"retry-after", str(error.retry_after).encode()))
    await _send(send, error.status, headers, body)
