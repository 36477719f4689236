import pytest

from kennel._errors import (
    AccessDeniedError,
    AuthError,
    ConflictError,
    InternalError,
    InvalidSignatureError,
    KennelError,
    NotFoundError,
    UnexpectedStatusError,
    error_from_response,
)


@pytest.mark.parametrize(
    "cls",
    [
        ConflictError,
        InvalidSignatureError,
        NotFoundError,
        AccessDeniedError,
        InternalError,
        UnexpectedStatusError,
    ],
)
def test_errors_round_trip_through_the_wire_shape(cls: type[KennelError]) -> None:
    original = cls("it broke", hint="do this")
    rebuilt = error_from_response(original.status, original.to_dict())
    assert type(rebuilt) is cls
    assert (rebuilt.message, rebuilt.hint, rebuilt.status) == ("it broke", "do this", cls.status)


def test_unknown_codes_keep_status_and_code() -> None:
    err = error_from_response(429, {"__type": "TooManyRequestsException", "message": "slow down"})
    assert (err.status, err.aws_code, err.message) == (429, "TooManyRequestsException", "slow down")


def test_lambda_shape_is_understood() -> None:
    err = error_from_response(
        404, {"Type": "User", "message": "gone", "__type": "ResourceNotFound"}
    )
    assert isinstance(err, NotFoundError)


def test_instance_overrides_do_not_leak_to_the_class() -> None:
    err = KennelError("x", status=418, aws_code="Teapot")
    assert (err.status, err.aws_code) == (418, "Teapot")
    assert (KennelError.status, KennelError.aws_code) == (500, "InternalFailure")


def test_a_403_access_denied_is_the_most_specific_class_and_still_an_auth_error() -> None:
    # AuthError (the base) and AccessDeniedError (its leaf) share 403 AccessDeniedException.
    err = error_from_response(
        403, {"__type": "AccessDeniedException", "message": "User: arn:... is not authorized"}
    )
    assert type(err) is AccessDeniedError
    assert isinstance(err, AuthError)
    assert (err.status, err.aws_code) == (403, "AccessDeniedException")


def test_unexpected_status_keeps_its_own_code_and_defaults() -> None:
    err = error_from_response(409, {"__type": "UnexpectedStatusException", "message": "Failed"})
    assert type(err) is UnexpectedStatusError
    assert (err.allowed_statuses, err.actual_status) == ((), "")
    # The same status with ConflictError's code is still a ConflictError.
    assert type(error_from_response(409, {"__type": "ResourceInUse"})) is ConflictError
