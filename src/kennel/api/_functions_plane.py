"""Lambda's Invoke and function URLs in the gateway.

``POST /2015-03-31/functions/{name}/invocations`` is wire-compatible with boto3's
``lambda`` client (Qualifier; X-Amz-Invocation-Type RequestResponse 200 / Event 202 /
DryRun 204; X-Amz-Log-Type Tail → X-Amz-Log-Result; X-Amz-Client-Context;
X-Amz-Executed-Version; X-Amz-Function-Error; 429 TooManyRequestsException with its
Reason and Retry-After). ``ANY /fn/{name}/...`` is the function URL: AuthType AWS_IAM
(a SigV4-signed request, ``lambda:InvokeFunctionUrl``) or NONE (the function's resource
policy must allow ``*``, as on AWS), the HTTP event payload format 2.0, the response
mapping and CORS.

Like InvokeEndpoint this is a bare ASGI layer in front of the FastAPI app: the warm
invoke budget (≤ 2 ms over calling the handler in-process) leaves no room for request
objects or dependency injection on this path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from kennel import _json
from kennel._errors import KennelError
from kennel.api._auth import Receive, Scope, Send
from kennel.api._authz import authorize_hot, request_facts
from kennel.api._context import ServerContext
from kennel.functions._dispatch import Outcome, SpawnFailed, Throttled
from kennel.iam._policy import AuthzRequest, evaluate

log = logging.getLogger(__name__)

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"
URL_PREFIX = "/fn/"
MAX_SYNC_PAYLOAD = 6 * 2**20
MAX_ASYNC_PAYLOAD = 2**20
MAX_CLIENT_CONTEXT = 3583
INVOKE_ACTION = "lambda:InvokeFunction"
URL_ACTION = "lambda:InvokeFunctionUrl"
ANONYMOUS = "anonymous"

_INVOCATION_TYPE = b"x-amz-invocation-type"
_LOG_TYPE = b"x-amz-log-type"
_CLIENT_CONTEXT = b"x-amz-client-context"
_JSON = b"application/json"


class LambdaError(Exception):
    """A Lambda service error: ``x-amzn-ErrorType`` plus ``{"Type", "message"}``."""

    def __init__(self, status: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


class FunctionsPlane:
    """Handles Invoke and function URLs; everything else goes on to ``app``."""

    def __init__(self, app: Any, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx
        self.functions = ctx.functions
        self.runtime = ctx.function_runtime
        self.arn_prefix = f"arn:aws:lambda:{ctx.region}:{ctx.account_id}:function:"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(INVOKE_PREFIX) and path.endswith(INVOKE_SUFFIX):
                await self._invoke(scope, path[len(INVOKE_PREFIX) : -len(INVOKE_SUFFIX)], send)
                return
            if path.startswith(URL_PREFIX):
                await self._url(scope, path[len(URL_PREFIX) :], send)
                return
        await self.app(scope, receive, send)

    # --- Invoke ----------------------------------------------------------------------

    async def _invoke(self, scope: Scope, raw_name: str, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise LambdaError(405, "UnknownOperationException", "Invoke takes POST only.")
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            name, qualifier = _split_name(unquote(raw_name), query.get("Qualifier"))
            await self._authorize(scope, INVOKE_ACTION, self._arn(name, qualifier))
            fn = await self._resolve(name, qualifier)
            headers = dict(scope["headers"])
            kind = headers.get(_INVOCATION_TYPE, b"RequestResponse").decode("latin-1")
            client_context = _client_context(headers.get(_CLIENT_CONTEXT))
            body: bytes = scope["state"]["body"].file.read()
            if kind == "RequestResponse":
                _check_size(body, MAX_SYNC_PAYLOAD, "Invoke")
                payload = _event_json(body)
                outcome = await self._run(fn, payload, scope, client_context)
                out = [
                    (b"content-type", _JSON),
                    (b"x-amz-executed-version", outcome.executed_version.encode()),
                ]
                if outcome.function_error:
                    out.append((b"x-amz-function-error", outcome.function_error.encode()))
                if headers.get(_LOG_TYPE, b"None") == b"Tail":
                    tail = base64.b64encode(outcome.tail().encode())
                    out.append((b"x-amz-log-result", tail))
                await _send(send, 200, out, outcome.result.payload)
            elif kind == "Event":
                _check_size(body, MAX_ASYNC_PAYLOAD, "InvokeAsync")
                payload = _event_json(body)
                await asyncio.to_thread(
                    self.runtime.enqueue,
                    fn,
                    payload,
                    request_id=scope["state"]["request_id"],
                    client_context=client_context,
                )
                self.runtime.wake_async()
                await _send(send, 202, [(b"content-type", _JSON)], b"")
            elif kind == "DryRun":
                _event_json(body)
                await _send(send, 204, [], b"")
            else:
                raise LambdaError(
                    400,
                    "InvalidParameterValueException",
                    f"Unsupported InvocationType {kind!r}: use RequestResponse, Event or DryRun.",
                )
        except LambdaError as error:
            await _send_error(send, error)
        except KennelError as error:
            await _send_error(send, LambdaError(error.status, error.aws_code, error.message))
        except Exception as error:
            log.exception("Invoke failed unexpectedly")
            await _send_error(
                send,
                LambdaError(
                    500,
                    "ServiceException",
                    f"An internal failure occurred ({type(error).__name__}: {error}); see the "
                    "server log (logs/server.log in the kennel home).",
                ),
            )

    async def _run(
        self, fn: Any, payload: bytes, scope: Scope, client_context: str | None
    ) -> Outcome:
        if fn.state == "Pending":
            raise LambdaError(
                409,
                "ResourceConflictException",
                "The operation cannot be performed at this time. The function is currently in "
                "the following state: Pending",
            )
        if fn.state == "Failed":
            raise LambdaError(
                502,
                "ResourceNotReadyException",
                f"The function {fn.name} is in state Failed; update its code or configuration.",
            )
        try:
            return await self.runtime.invoke(
                fn, payload, request_id=scope["state"]["request_id"], client_context=client_context
            )
        except Throttled as throttled:
            raise LambdaError(
                429,
                "TooManyRequestsException",
                throttled.message,
                Reason=throttled.reason,
                retryAfterSeconds="1",
            ) from None
        except SpawnFailed as failed:
            raise LambdaError(500, "ServiceException", str(failed)) from None

    async def _resolve(self, name: str, qualifier: str | None) -> Any:
        cached = self.functions.cached_resolve(name, qualifier)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self.functions.resolve, name, qualifier)

    async def _authorize(
        self, scope: Scope, action: str, resource: str, extra: dict[str, Any] | None = None
    ) -> None:
        try:
            outcome = await authorize_hot(self.ctx, scope, action, resource, extra)
        except KennelError as error:
            raise LambdaError(error.status, error.aws_code, error.message) from error
        if not outcome.allowed:
            raise LambdaError(
                403,
                "AccessDeniedException",
                f"{outcome.message} (kennel iam explain {scope['state']['request_id']})",
            )

    def _arn(self, name: str, qualifier: str | None) -> str:
        arn = self.arn_prefix + name
        return f"{arn}:{qualifier}" if qualifier else arn

    # --- function URLs -----------------------------------------------------------------

    async def _url(self, scope: Scope, rest: str, send: Send) -> None:
        name, _, sub = rest.partition("/")
        name = unquote(name)
        request_origin = dict(scope["headers"]).get(b"origin")
        config = None
        try:
            config = await asyncio.to_thread(self.functions.url_config, name)
            if config is None:
                raise LambdaError(404, "ResourceNotFoundException", "Not Found")
            if scope["method"] == "OPTIONS" and request_origin is not None:
                await _send(
                    send, 200, _cors_headers(config.cors, request_origin, preflight=True), b""
                )
                return
            name = config.function
            arn = self._arn(name, config.qualifier)
            await self._authorize_url(scope, config.auth_type, arn)
            fn = await self._resolve(name, config.qualifier)
            body: bytes = scope["state"]["body"].file.read()
            _check_size(body, MAX_SYNC_PAYLOAD, "Invoke")
            event = _http_event(scope, "/" + sub, body, self.ctx.account_id, name)
            outcome = await self._run(fn, json.dumps(event).encode(), scope, None)
            status, headers, payload = _map_response(outcome)
            headers += _cors_headers(config.cors, request_origin, preflight=False)
            await _send(send, status, headers, payload)
        except LambdaError as error:
            message = {
                403: "Forbidden",
                404: "Not Found",
                429: "Rate Exceeded.",
            }.get(error.status, error.message)
            cors = _cors_headers(config.cors, request_origin, preflight=False) if config else []
            await _send(
                send,
                error.status,
                [(b"content-type", _JSON), (b"x-amzn-errortype", error.code.encode())] + cors,
                json.dumps({"Message": message, "detail": error.message}).encode(),
            )
        except KennelError as error:
            await _send(
                send,
                error.status,
                [(b"content-type", _JSON), (b"x-amzn-errortype", error.aws_code.encode())],
                json.dumps({"Message": error.message}).encode(),
            )
        except Exception as error:
            log.exception("function URL failed unexpectedly")
            await _send(
                send,
                500,
                [(b"content-type", _JSON)],
                json.dumps({"Message": f"Internal Server Error ({type(error).__name__})"}).encode(),
            )

    async def _authorize_url(self, scope: Scope, auth_type: str, arn: str) -> None:
        extra = {"lambda:FunctionUrlAuthType": auth_type}
        identity = scope["state"].get("identity")
        if auth_type == "AWS_IAM":
            if identity is None:
                raise LambdaError(
                    403,
                    "AccessDeniedException",
                    "This function URL's AuthType is AWS_IAM: sign the request with SigV4 "
                    "(service lambda).",
                )
            await self._authorize(scope, URL_ACTION, arn, extra)
            return
        # AuthType NONE: as on AWS, the resource policy must allow anyone (Principal "*").
        policy = await asyncio.to_thread(self.ctx.iam.resource_policy, arn)
        facts = request_facts(scope)
        now = datetime.now(UTC)
        context = {
            **extra,
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:SecureTransport": "true" if facts.secure else "false",
        }
        if facts.source_ip:
            context["aws:SourceIp"] = facts.source_ip
        decision = evaluate(
            AuthzRequest(ANONYMOUS, URL_ACTION, arn, context), [], resource_policy=policy
        )
        if not decision.allowed:
            raise LambdaError(
                403,
                "AccessDeniedException",
                "The function URL's AuthType is NONE but the function's resource policy does "
                "not allow public access; run `kennel functions add-permission NAME "
                "--principal '*' --action lambda:InvokeFunctionUrl --function-url-auth-type "
                "NONE`.",
            )


def _split_name(name: str, qualifier: str | None) -> tuple[str, str | None]:
    """A name, partial or full ARN, optionally with ``:qualifier``; the query's wins."""
    if name.startswith("arn:"):
        parts = name.split(":")
        if len(parts) >= 7 and parts[5] == "function":
            name = parts[6]
            if len(parts) > 7 and qualifier is None:
                qualifier = parts[7]
    elif ":function:" in name:
        parts = name.split(":")
        name = parts[2]
        if len(parts) > 3 and qualifier is None:
            qualifier = parts[3]
    elif ":" in name:
        name, _, inline = name.partition(":")
        qualifier = qualifier or inline
    return name, qualifier or None


def _check_size(body: bytes, limit: int, operation: str) -> None:
    if len(body) > limit:
        raise LambdaError(
            413,
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the {operation} operation",
        )


def _event_json(body: bytes) -> bytes:
    if not body.strip():
        return b"{}"
    try:
        _json.loads(body)
    except ValueError as exc:
        raise LambdaError(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: {exc}",
        ) from None
    return body


def _client_context(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    if len(raw) > MAX_CLIENT_CONTEXT:
        raise LambdaError(
            400,
            "InvalidParameterValueException",
            f"Client context must be at most {MAX_CLIENT_CONTEXT} bytes of base64.",
        )
    try:
        _json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise LambdaError(
            400,
            "InvalidRequestContentException",
            f"X-Amz-Client-Context is not base64-encoded JSON: {exc}",
        ) from None
    return raw.decode("latin-1")


def _http_event(scope: Scope, path: str, body: bytes, account: str, name: str) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in scope["headers"]:
        header = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        if header == "cookie":
            cookies += [c.strip() for c in text.split(";") if c.strip()]
            continue
        headers[header] = f"{headers[header]},{text}" if header in headers else text
    raw_query = scope.get("query_string", b"").decode("latin-1")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    client = scope.get("client")
    now = time.time()
    binary = _is_binary(headers.get("content-type", ""))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous" if scope["state"].get("identity") is None else account,
            "apiId": name,
            "domainName": headers.get("host", ""),
            "domainPrefix": name,
            "http": {
                "method": scope["method"],
                "path": path,
                "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                "sourceIp": client[0] if client else "",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": scope["state"]["request_id"],
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": binary,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = (
            base64.b64encode(body).decode() if binary else body.decode("utf-8", "replace")
        )
    return event


_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)


def _is_binary(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return bool(kind) and not kind.startswith(_TEXT_TYPES) and not kind.endswith(("+json", "+xml"))


_BAD_GATEWAY = (502, [(b"content-type", _JSON)], b'{"Message":"Internal Server Error"}')
_HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")


class _MalformedResponse(Exception):
    """The function's answer cannot be an HTTP response (Lambda answers 502)."""


def _map_response(outcome: Outcome) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The function's result as an HTTP response: payload format 2.0's mapping, or 502 for
    a result no HTTP response can carry (a status outside 200-599, a header with a line
    break or a character beyond latin-1, a body that is not the base64 it claims)."""
    if outcome.result.kind != "ok":
        return _BAD_GATEWAY
    try:
        value = _json.loads(outcome.result.payload)
    except ValueError:
        return _BAD_GATEWAY
    if not isinstance(value, dict) or "statusCode" not in value:
        return 200, [(b"content-type", _JSON)], outcome.result.payload
    try:
        return _mapped(value)
    except _MalformedResponse:
        return _BAD_GATEWAY


def _mapped(value: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    try:
        status = int(value["statusCode"])
    except (TypeError, ValueError, OverflowError):
        raise _MalformedResponse from None
    if not 200 <= status <= 599:
        raise _MalformedResponse
    headers_in = value.get("headers") or {}
    cookies = value.get("cookies") or []
    if not isinstance(headers_in, dict) or not isinstance(cookies, list):
        raise _MalformedResponse
    headers = [_header(str(k).lower(), str(v)) for k, v in headers_in.items()]
    headers += [_header("set-cookie", str(cookie)) for cookie in cookies]
    if not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", _JSON))
    body = value.get("body")
    if body is None:
        payload = b""
    elif value.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(str(body))
        except (binascii.Error, ValueError):
            raise _MalformedResponse from None
    elif isinstance(body, str):
        payload = body.encode("utf-8", "surrogatepass")
    else:
        payload = json.dumps(body).encode()
    return status, headers, payload


def _header(name: str, value: str) -> tuple[bytes, bytes]:
    try:
        raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise _MalformedResponse from None
    if not _HEADER_NAME.fullmatch(raw_name) or not _HEADER_VALUE.fullmatch(raw_value):
        raise _MalformedResponse
    return raw_name, raw_value


def _cors_headers(
    cors: dict[str, Any] | None, origin: bytes | None, *, preflight: bool
) -> list[tuple[bytes, bytes]]:
    if not cors or origin is None:
        return []
    allowed = cors.get("AllowOrigins") or []
    text = origin.decode("latin-1")
    if "*" not in allowed and text not in allowed:
        return []
    out = [(b"access-control-allow-origin", b"*" if "*" in allowed else origin)]
    if cors.get("AllowCredentials"):
        out.append((b"access-control-allow-credentials", b"true"))
    if cors.get("ExposeHeaders") and not preflight:
        out.append((b"access-control-expose-headers", ",".join(cors["ExposeHeaders"]).encode()))
    if preflight:
        if cors.get("AllowMethods"):
            out.append((b"access-control-allow-methods", ",".join(cors["AllowMethods"]).encode()))
        if cors.get("AllowHeaders"):
            out.append((b"access-control-allow-headers", ",".join(cors["AllowHeaders"]).encode()))
        if cors.get("MaxAge") is not None:
            out.append((b"access-control-max-age", str(cors["MaxAge"]).encode()))
    return out


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: LambdaError) -> None:
    body = {"Type": "User" if error.status < 500 else "Service", "message": error.message}
    body.update(error.fields)
    headers = [(b"content-type", _JSON), (b"x-amzn-errortype", error.code.encode())]
    if error.status == 429:
        headers.append((b"retry-after", str(error.fields.get("retryAfterSeconds", "1")).encode()))
    await _send(send, error.status, headers, json.dumps(body).encode())
