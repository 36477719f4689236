"""Codec for AWS's JSON 1.1 protocol, as spoken by Application Auto Scaling.

A request is ``POST /`` with ``X-Amz-Target: <TargetPrefix>.<Operation>`` and the
operation's input as a JSON object; the answer is its output as JSON, content type
``application/x-amz-json-1.1``, timestamps as seconds since the epoch. Errors are
``{"__type": code, "message": ...}`` with the code in ``x-amzn-ErrorType`` too
(``kennel.api._errors`` writes them). Pure functions: no I/O, no knowledge of operations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kennel import _json
from kennel._errors import KennelError

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_HEADER = "x-amz-target"


class UnknownOperationError(KennelError):
    status = 400
    aws_code = "UnknownOperationException"


class SerializationError(KennelError):
    """The body is not a JSON object (AWS's answer to a malformed JSON request)."""

    status = 400
    aws_code = "SerializationException"


def has_target(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether raw ASGI headers carry X-Amz-Target: how a JSON-protocol call to ``/`` is told
    from a Query one before anything else about it is known (the Query protocol never sends it)."""
    return any(name.lower() == TARGET_HEADER.encode() for name, _ in headers)


def operation_name(target: str | None, prefix: str) -> str:
    """``Operation`` of ``X-Amz-Target: <prefix>.<Operation>``; UnknownOperationException else."""
    service, dot, name = (target or "").partition(".")
    if not dot or service != prefix or not name:
        raise UnknownOperationError(
            f"Unknown operation {target or '(no X-Amz-Target header)'}: expected "
            f"X-Amz-Target {prefix}.<Operation>."
        )
    return name


def parse_body(body: bytes) -> dict[str, Any]:
    """The operation's input; an empty body is an empty input."""
    if not body.strip():
        return {}
    try:
        document = _json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SerializationError("The request body must be a JSON object.")
    return document


def dump(result: dict[str, Any]) -> bytes:
    """The operation's output as the protocol has it (datetimes as epoch seconds)."""
    return json.dumps(result, default=_encode, separators=(",", ":")).encode()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
