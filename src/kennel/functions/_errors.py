"""Lambda's service errors, as kennel errors.

The gateway renders them on Lambda's paths the way Lambda does: the code in the
``x-amzn-ErrorType`` header and ``{"Type": "User", "message": ...}`` as the body, plus
any ``details`` (``Reason`` of a throttle). boto3's ``lambda`` client raises them as
``client.exceptions.<aws_code>``.
"""

from __future__ import annotations

from typing import Any

from kennel._errors import ConflictError, KennelError, NotFoundError, PayloadTooLargeError

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


class ResourceNotFoundError(NotFoundError):
    aws_code = "ResourceNotFoundException"


class ProvisionedConcurrencyConfigNotFoundError(NotFoundError):
    aws_code = "ProvisionedConcurrencyConfigNotFoundException"


class ResourceConflictError(ConflictError):
    aws_code = "ResourceConflictException"


class InvalidParameterValueError(KennelError):
    status = 400
    aws_code = "InvalidParameterValueException"


class InvalidRequestContentError(KennelError):
    status = 400
    aws_code = "InvalidRequestContentException"


class CodeStorageExceededError(KennelError):
    status = 400
    aws_code = "CodeStorageExceededException"


class RequestTooLargeError(PayloadTooLargeError):
    aws_code = "RequestTooLargeException"


class PreconditionFailedError(KennelError):
    status = 412
    aws_code = "PreconditionFailedException"

    def __init__(self, message: str = REVISION_MISMATCH, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)


class TooManyRequestsError(KennelError):
    """A throttle: ``reason`` is Lambda's Reason; ``retry_after`` goes in Retry-After."""

    status = 429
    aws_code = "TooManyRequestsException"

    def __init__(
        self, message: str, *, reason: str = "", retry_after: int | None = None, **kwargs: Any
    ) -> None:
        if reason:
            kwargs["Reason"] = reason
        if retry_after is not None:
            kwargs["retryAfterSeconds"] = str(retry_after)
        super().__init__(message, **kwargs)
        self.reason = reason
        self.retry_after = retry_after


class ServiceError(KennelError):
    status = 500
    aws_code = "ServiceException"
