"""Every request is SigV4-verified before any route sees it.

A pure ASGI middleware: it reads the body once (spooling big uploads to disk while
hashing them), verifies the signature against the raw request, and hands the route
the caller's identity plus a replay of the body.
"""

from __future__ import annotations

import hashlib
import logging
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from kennel._errors import InternalError, KennelError, PayloadTooLargeError, ValidationError
from kennel._logging import ACCESS_LOGGER, FIELDS, REQUEST_ID
from kennel.api._console import cookie_identity, has_console_cookie
from kennel.api._context import ServerContext
from kennel.api._errors import LAMBDA_PREFIXES, error_response
from kennel.api._json_protocol import has_target
from kennel.iam.sigv4 import SignedRequest, verify

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

SPOOL_IN_MEMORY = 8 * 2**20
CHUNK = 256 * 2**10

# Which SigV4 service names each part of the API is signed for.
_SERVICES: list[tuple[str, frozenset[str]]] = [
    ("/endpoints/", frozenset({"sagemaker"})),
    # Lambda's dated prefixes (those kennel does not serve too: they get Lambda's 404
    # rather than a bad signature) and function URLs with AuthType AWS_IAM.
    *((prefix, frozenset({"lambda"})) for prefix in (*LAMBDA_PREFIXES, "/fn/")),
    ("/api/v1/", frozenset({"sagemaker"})),
]
# IAM and STS speak the Query protocol (a form POST to "/"), Application Auto Scaling AWS
# JSON 1.1 (a JSON POST to "/"); the signed service tells them apart.
_ROOT_SERVICES = frozenset({"iam", "sts", "application-autoscaling"})
_DEFAULT_SERVICES = frozenset({"sagemaker"})

# Routes that accept large uploads (a data set archive); everything else is JSON-sized.
_UPLOAD_ROUTES = (("PUT", "/api/v1/datasets/"), ("PUT", "/api/v1/uploads/"))
_FUNCTIONS = "/2015-03-31/functions"
INVOKE_MAX_BYTES = 7 * 2**20
"""Invoke and function URL bodies: Lambda's 6 MB, plus room for Invoke to answer an
oversized payload with Lambda's own RequestTooLargeException."""


def services_for(path: str) -> frozenset[str]:
    if path == "/":
        return _ROOT_SERVICES
    for prefix, services in _SERVICES:
        if path.startswith(prefix):
            return services
    return _DEFAULT_SERVICES


class Body:
    """A request body read once: spooled to disk past 8 MB, with its SHA-256."""

    def __init__(self, file: IO[bytes], size: int, sha256: str) -> None:
        self.file = file
        self.size = size
        self.sha256 = sha256


class SigV4Middleware:
    """The outermost layer: gives the request its id (the ``x-amzn-RequestId`` the client
    sees, and :data:`REQUEST_ID` for the log), verifies the signature, replays the body."""

    def __init__(self, app: ASGIApp, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx
        self.access_log = ctx.settings.log_format == "json"

    def _limit(self, method: str, path: str) -> int:
        settings = self.ctx.settings
        for upload_method, prefix in _UPLOAD_ROUTES:
            if method == upload_method and path.startswith(prefix):
                return settings.max_request_bytes
        if path.startswith(_FUNCTIONS):
            if _carries_code(method, path):
                return code_body_limit(settings.function_max_zip_bytes)
            if method == "POST" and path.endswith("/invocations"):
                return max(INVOKE_MAX_BYTES, settings.max_json_bytes)
        elif path.startswith("/fn/"):
            return max(INVOKE_MAX_BYTES, settings.max_json_bytes)
        return settings.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id()
        # Each request runs in its own task (a copy of the server's context): no reset.
        REQUEST_ID.set(request_id)
        if self.access_log:
            await self._logged(scope, receive, send, request_id)
        else:
            await self._handle(scope, receive, send, request_id)

    async def _logged(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        """:meth:`_handle`, then one access line (the path only: a presigned URL's query
        string holds its signature and session token)."""
        started = time.perf_counter()
        status = 0

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._handle(scope, receive, send_seen, request_id)
        finally:
            identity = scope.get("state", {}).get("identity")
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status or "-",
                extra={
                    FIELDS: {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status or None,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "principal": getattr(identity, "principal", None),
                        "client": (scope.get("client") or [None])[0],
                    }
                },
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        path: str = scope["path"]
        body: Body | None = None
        try:
            body = await self._read_body(scope, receive, self._limit(scope["method"], path))
            identity = self._identify(scope, body)
        except Exception as exc:  # noqa: BLE001 - answered in AWS's shape, and logged
            if body is not None:
                body.file.close()
            err = exc if isinstance(exc, KennelError) else _internal(exc)
            response = error_response(
                err, path, request_id, json_protocol=has_target(scope["headers"])
            )
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state.update(identity=identity, request_id=request_id, body=body)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-amzn-requestid" for name, _ in headers):
                    headers.append((b"x-amzn-requestid", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), send_with_id)
        finally:
            body.file.close()

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> Body:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError as exc:
                    raise ValidationError("Content-Length is not a number.") from exc
                if declared > limit:
                    raise _too_large(declared, limit)
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by the caller
            max_size=SPOOL_IN_MEMORY, dir=str(self.ctx.settings.tmp_dir)
        )
        digest = hashlib.sha256()
        size = 0
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ValidationError("The client disconnected before sending the body.")
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(size, limit)
                digest.update(chunk)
                spool.write(chunk)
                more = bool(message.get("more_body", False))
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return Body(spool, size, digest.hexdigest())

    def _identify(self, scope: Scope, body: Body) -> Any:
        """The caller: by SigV4 signature, by the console's session cookie, or nobody (an
        unsigned call of a function URL)."""
        if _anonymous_url_call(scope):
            return None
        if _unsigned(scope) and has_console_cookie(scope):
            return cookie_identity(scope, self.ctx, _cookie_service(scope))
        return self._verify(scope, body)

    def _verify(self, scope: Scope, body: Body) -> Any:
        ctx = self.ctx
        request = SignedRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            payload_sha256=body.sha256,
        )
        identity = verify(
            request,
            lookup=ctx.credentials.lookup,
            region=ctx.region,
            services=services_for(scope["path"]),
            now=datetime.now(UTC),
            max_skew=timedelta(seconds=ctx.settings.max_clock_skew_seconds),
        )
        ctx.credentials.touch(identity.access_key_id, identity.service, identity.principal)
        return identity


def _carries_code(method: str, path: str) -> bool:
    """CreateFunction and UpdateFunctionCode: a deployment package, base64 in JSON."""
    rest = path[len(_FUNCTIONS) :].rstrip("/")
    if method == "POST" and rest == "":
        return True
    return method == "PUT" and rest.endswith("/code") and rest.count("/") == 2


def code_body_limit(max_zip_bytes: int) -> int:
    """A package of ``max_zip_bytes`` as base64 in a JSON body, with the rest of the request."""
    return (max_zip_bytes + 2) // 3 * 4 + 2**20


def _cookie_service(scope: Scope) -> str:
    """The service a console request speaks to: what its path is signed for, and at "/"
    (IAM, STS, Application Auto Scaling) the one its ``X-Kennel-Service`` header names,
    else Application Auto Scaling for a JSON 1.1 call and IAM for a Query form."""
    services = services_for(scope["path"])
    if len(services) == 1:
        return next(iter(services))
    named = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-kennel-service"), "")
    if named in services:
        return named
    return "application-autoscaling" if has_target(scope["headers"]) else "iam"


def _unsigned(scope: Scope) -> bool:
    """Neither an Authorization header nor a presigned query string."""
    if any(name == b"authorization" for name, _ in scope["headers"]):
        return False
    return b"X-Amz-Signature=" not in scope.get("query_string", b"")


def _anonymous_url_call(scope: Scope) -> bool:
    """An unsigned call of a function URL: it goes on without an identity, and the function
    URL layer answers it by the URL's AuthType (NONE lets it through the resource policy)."""
    return scope["path"].startswith("/fn/") and _unsigned(scope) and not has_console_cookie(scope)


def _internal(exc: Exception) -> KennelError:
    log.exception("verifying a request failed unexpectedly")
    return InternalError(
        f"Internal error while checking the request ({type(exc).__name__}): {exc}",
        hint="See the server log (kennel home, logs/server.log).",
    )


def _request_id() -> str:
    """A random (version 4) UUID; not uuid4(), whose os.urandom is a system call per request."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"Request body of {size} bytes is over this route's limit of {limit} bytes.",
        hint="Send a smaller body, or raise KENNEL_MAX_REQUEST_BYTES / KENNEL_MAX_JSON_BYTES "
        "on the server.",
    )


def _replay(body: Body, upstream: Receive) -> Receive:
    """A receive() that hands the already-read body to the app in chunks.

    Once the body is out, it passes through to the server's receive, which is how the
    app still learns of a client disconnect.
    """
    done = False

    async def receive() -> Message:
        nonlocal done
        if done:
            return await upstream()
        chunk = body.file.read(CHUNK)
        if len(chunk) < CHUNK:
            done = True
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return receive
