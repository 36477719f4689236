"""Errors on the wire in AWS's shape: ``x-amzn-ErrorType`` header and a JSON body."""

from __future__ import annotations

import json
import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from kennel._errors import InternalError, KennelError, NotFoundError, ValidationError
from kennel.api._json_protocol import CONTENT_TYPE as JSON_PROTOCOL_TYPE
from kennel.api._json_protocol import has_target
from kennel.api._query import xml_error

log = logging.getLogger(__name__)

LAMBDA_PREFIX = "/2015-03-31/"
LAMBDA_PREFIXES = (
    "/2015-03-31/",
    "/2016-08-19/",
    "/2017-03-31/",
    "/2017-10-31/",
    "/2018-10-31/",
    "/2019-09-25/",
    "/2019-09-30/",
    "/2020-04-22/",
    "/2020-06-30/",
    "/2021-07-20/",
    "/2021-10-31/",
    "/2024-08-31/",
)
"""Where Lambda's API lives: its operations are spread over these dated prefixes."""
QUERY_PATH = "/"
"""IAM and STS (the Query protocol) answer errors in XML with their own codes; Application
Auto Scaling (JSON 1.1, told apart by its X-Amz-Target header) in JSON."""

_QUERY_CODES = {
    "AccessDeniedException": "AccessDenied",
    "ValidationException": "ValidationError",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
    "ExpiredTokenException": "ExpiredToken",
    "InternalFailure": "ServiceFailure",
}


def query_error_code(err: KennelError) -> str:
    return _QUERY_CODES.get(err.aws_code, err.aws_code)


def is_lambda_path(path: str) -> bool:
    return path.startswith(LAMBDA_PREFIXES)


def error_body(err: KennelError, path: str) -> bytes:
    if is_lambda_path(path):
        # Lambda's service errors carry Type/message (and fields like a throttle's Reason);
        # the code travels in the header.
        body = {
            "Type": "User" if err.status < 500 else "Service",
            "message": err.message,
            **err.details,
        }
    else:
        body = err.to_dict()
    return json.dumps(body).encode()


def error_headers(err: KennelError, request_id: str) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "x-amzn-ErrorType": err.aws_code,
        "x-amzn-RequestId": request_id,
    }
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


def error_response(
    err: KennelError, path: str, request_id: str | None = None, *, json_protocol: bool = False
) -> Response:
    """``err`` in the shape the route's protocol has; ``json_protocol``: the request carried
    X-Amz-Target (which, on ``/``, means JSON 1.1 rather than the Query protocol)."""
    if path == QUERY_PATH:
        request_id = request_id or str(uuid.uuid4())
        # Neither protocol's error has a hint field: it travels in the message, which is
        # where kennel's CLI looks for it.
        message = f"{err.message} ({err.hint})" if err.hint else err.message
        if json_protocol:
            return Response(
                content=json.dumps(
                    {"__type": err.aws_code, "message": message, **err.details}
                ).encode(),
                status_code=err.status,
                headers={**error_headers(err, request_id), "content-type": JSON_PROTOCOL_TYPE},
            )
        return Response(
            content=xml_error(query_error_code(err), message, request_id, sender=err.status < 500),
            status_code=err.status,
            headers={"content-type": "text/xml", "x-amzn-RequestId": request_id},
        )
    return Response(
        content=error_body(err, path),
        status_code=err.status,
        headers=error_headers(err, request_id or str(uuid.uuid4())),
    )


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or uuid.uuid4())


def _respond(err: KennelError, request: Request) -> Response:
    return error_response(
        err,
        request.url.path,
        _request_id(request),
        json_protocol=has_target(request.scope["headers"]),
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_kennel_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KennelError)
        return _respond(exc, request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        )
        err = ValidationError(
            f"Invalid request: {problems}",
            hint="Fix the fields named.",
        )
        return _respond(err, request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        err: KennelError
        if exc.status_code == 404:
            err = NotFoundError(
                f"No route for {request.method} {request.url.path}.",
                hint="Check the URL; the API lives under /api/v1.",
                aws_code="UnknownOperationException",
            )
        else:
            err = KennelError(str(exc.detail), status=exc.status_code, aws_code="HttpError")
        return _respond(err, request)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        err = InternalError(
            f"Internal error ({type(exc).__name__}): {exc}",
            hint="See the server log (kennel home, logs/server.log).",
        )
        return _respond(err, request)

    app.add_exception_handler(KennelError, on_kennel_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
