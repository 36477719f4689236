"""boto3 calls as the stack's handlers make them: errors as KennelErrors, a resource that
is not there as ``None``.

``StackContext.aws`` may hand out plain boto3 clients (errors are botocore's
``ClientError``) or clients that already raise KennelErrors; handlers call through
:func:`call` and :func:`find` so they see one kind of error either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions

from kennel._errors import KennelError, error_from_response

POLL_SECONDS = 0.2


def call(client: Any, operation: str, /, **kwargs: Any) -> dict[str, Any]:
    """``client.<operation>(**kwargs)``; its answer without ResponseMetadata."""
    try:
        answer = getattr(client, operation)(**kwargs)
    except botocore.exceptions.ClientError as exc:
        response: dict[str, Any] = dict(exc.response)
        error = response.get("Error") or {}
        status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 500)
        body = {"__type": error.get("Code") or "InternalFailure", "message": error.get("Message")}
        raise error_from_response(status, body) from exc
    result = dict(answer or {})
    result.pop("ResponseMetadata", None)
    return result


def find(
    client: Any, operation: str, /, missing: tuple[str, ...], **kwargs: Any
) -> dict[str, Any] | None:
    """As :func:`call`, but ``None`` when the error's AWS code is one of ``missing``."""
    try:
        return call(client, operation, **kwargs)
    except KennelError as err:
        if err.aws_code in missing:
            return None
        raise


def gone(client: Any, operation: str, /, missing: tuple[str, ...], **kwargs: Any) -> None:
    """A delete that is fine with the thing being gone already."""
    find(client, operation, missing, **kwargs)


def poll(
    read: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """``read()`` until ``done`` says so or ``timeout`` seconds pass; the last answer."""
    deadline = clock() + timeout
    while True:
        answer = read()
        if done(answer) or clock() >= deadline:
            return answer
        sleep(POLL_SECONDS)
