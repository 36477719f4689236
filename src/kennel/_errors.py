"""One exception tree for all of kennel.

Every error carries the HTTP status and the AWS error code it maps to, so the
gateway, the SDK and the CLI render the same failure the same way: the gateway as
AWS's JSON error shape (``x-amzn-ErrorType`` header + ``{"__type", "message"}``),
the CLI as one red line with a hint.
"""

from __future__ import annotations

from typing import Any


class KennelError(Exception):
    """Base of every error kennel raises on purpose."""

    status: int = 500
    aws_code: str = "InternalFailure"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        aws_code: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details
        if status is not None:
            self.status = status
        if aws_code is not None:
            self.aws_code = aws_code

    def to_dict(self) -> dict[str, Any]:
        """The AWS JSON error body (``__type`` + ``message``), plus kennel's hint."""
        body: dict[str, Any] = {"__type": self.aws_code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        body.update(self.details)
        return body

    def __str__(self) -> str:
        return self.message


class ValidationError(KennelError):
    """The request is malformed or names something impossible."""

    status = 400
    aws_code = "ValidationException"


class NotFoundError(KennelError):
    """The named resource does not exist."""

    status = 404
    aws_code = "ResourceNotFound"


class ConflictError(KennelError):
    """The resource exists already or is busy."""

    status = 409
    aws_code = "ResourceInUse"


class PayloadTooLargeError(KennelError):
    """The request body is over the limit for this route."""

    status = 413
    aws_code = "RequestTooLargeException"


class InternalError(KennelError):
    """Something failed inside kennel; the message says what."""

    status = 500
    aws_code = "InternalFailure"


class ServiceUnavailableError(KennelError):
    """The server (or the part of it the request needs) is not reachable."""

    status = 503
    aws_code = "ServiceUnavailable"


class AuthError(KennelError):
    """Base of the authentication failures: HTTP 403 like AWS."""

    status = 403
    aws_code = "AccessDeniedException"


class MissingAuthenticationTokenError(AuthError):
    aws_code = "MissingAuthenticationTokenException"


class UnrecognizedClientError(AuthError):
    aws_code = "UnrecognizedClientException"


class InvalidSignatureError(AuthError):
    aws_code = "InvalidSignatureException"


class ExpiredTokenError(AuthError):
    aws_code = "ExpiredTokenException"


class IncompleteSignatureError(AuthError):
    aws_code = "IncompleteSignatureException"


class AccessDeniedError(AuthError):
    aws_code = "AccessDeniedException"


def _subclasses(cls: type[KennelError], depth: int = 0) -> list[tuple[int, type[KennelError]]]:
    """``cls`` and every class below it, each with its depth under ``cls``."""
    found = [(depth, cls)]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub, depth + 1))
    return found


def error_from_response(status: int, body: dict[str, Any]) -> KennelError:
    """Rebuild a KennelError from the JSON error a kennel (or AWS) server answered.

    Of the classes with that code and status, the deepest wins: a base shares its code
    with its most specific leaf (``AuthError`` and ``AccessDeniedError`` are both 403
    ``AccessDeniedException``), and the leaf is still an instance of the base.
    """
    code = str(body.get("__type") or body.get("Type") or "InternalFailure")
    message = str(body.get("message") or body.get("Message") or f"HTTP {status}")
    hint = body.get("hint")
    matches = [
        (depth, cls)
        for depth, cls in _subclasses(KennelError)
        if cls.aws_code == code and cls.status == status
    ]
    if matches:
        deepest = max(depth for depth, _ in matches)
        cls = next(cls for depth, cls in matches if depth == deepest)
        return cls(message, hint=hint)
    return KennelError(message, hint=hint, status=status, aws_code=code)


class UnexpectedStatusError(KennelError):
    """A job or endpoint waited on ended in a state other than the one hoped for
    (SageMaker's ``UnexpectedStatusException``).

    Attributes:
        allowed_statuses: The states the wait hoped for.
        actual_status: The state it ended in.
    """

    status = 409
    aws_code = "UnexpectedStatusException"

    def __init__(
        self,
        message: str,
        *,
        allowed_statuses: tuple[str, ...] = (),
        actual_status: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.allowed_statuses = allowed_statuses
        self.actual_status = actual_status
