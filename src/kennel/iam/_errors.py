"""IAM's and STS's error codes (the Query protocol's ``<Code>``), as kennel errors."""

from __future__ import annotations

from kennel._errors import AuthError, ConflictError, KennelError, NotFoundError


class NoSuchEntityError(NotFoundError):
    aws_code = "NoSuchEntity"


class EntityAlreadyExistsError(ConflictError):
    aws_code = "EntityAlreadyExists"


class DeleteConflictError(ConflictError):
    aws_code = "DeleteConflict"


class LimitExceededError(ConflictError):
    aws_code = "LimitExceeded"


class InvalidInputError(KennelError):
    status = 400
    aws_code = "InvalidInput"


class IamValidationError(KennelError):
    """IAM's and STS's own ValidationError (not SageMaker's ValidationException)."""

    status = 400
    aws_code = "ValidationError"


class InvalidAuthenticationCodeError(AuthError):
    aws_code = "InvalidAuthenticationCode"


class StsAccessDeniedError(AuthError):
    """STS's AccessDenied (AssumeRole refused by the trust or the caller's policies)."""

    aws_code = "AccessDenied"


class PasswordPolicyViolationError(KennelError):
    """A console password the account's password policy refuses (IAM's 400)."""

    status = 400
    aws_code = "PasswordPolicyViolation"


class InvalidUserTypeError(KennelError):
    """IAM's 400 for an operation only an IAM user may call (ChangePassword from a role)."""

    status = 400
    aws_code = "InvalidUserType"


class WrongOldPasswordError(AuthError):
    """ChangePassword's 403 when the old password given is not the user's."""

    aws_code = "AccessDenied"
