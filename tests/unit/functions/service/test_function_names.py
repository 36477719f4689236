"""Function names and ARNs the way Lambda reads them; packages the way Lambda checks them."""

from __future__ import annotations

import io
import zipfile

import pytest
from tests.unit.functions.service._helpers import ACCOUNT, REGION, zip_of

from kennel._errors import ValidationError
from kennel.functions._code import check_zip
from kennel.functions._errors import (
    InvalidParameterValueError,
    RequestTooLargeError,
    ResourceNotFoundError,
)
from kennel.functions._names import FunctionRef, aws_time, parse_function_name, resource_name


def parse(raw: str, qualifier: str | None = None) -> FunctionRef:
    return parse_function_name(raw, qualifier, account=ACCOUNT, region=REGION)


@pytest.mark.parametrize(
    ("raw", "qualifier", "expected"),
    [
        ("my-fn", None, FunctionRef("my-fn", None)),
        ("my_fn:prod", None, FunctionRef("my_fn", "prod")),
        ("my-fn", "$LATEST", FunctionRef("my-fn", "$LATEST")),
        (f"{ACCOUNT}:function:my-fn", None, FunctionRef("my-fn", None)),
        (f"{ACCOUNT}:function:my-fn:3", None, FunctionRef("my-fn", "3")),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:my-fn", "7", FunctionRef("my-fn", "7")),
        (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:my-fn:live",
            "live",
            FunctionRef("my-fn", "live"),
        ),
    ],
)
def test_names_partial_arns_and_arns(
    raw: str, qualifier: str | None, expected: FunctionRef
) -> None:
    assert parse(raw, qualifier) == expected


def test_bad_names_and_mismatches() -> None:
    for raw in ("", "a/b", "x" * 65, "fn:a:b:c", "my fn"):
        with pytest.raises(ValidationError, match="at 'functionName' failed to satisfy"):
            parse(raw)
    with pytest.raises(InvalidParameterValueError, match="derived qualifier"):
        parse("fn:prod", "beta")
    with pytest.raises(ResourceNotFoundError, match="not reachable in this region"):
        parse(f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:fn")
    with pytest.raises(ResourceNotFoundError):
        parse("999999999999:function:fn")


def test_resource_names_for_authorization() -> None:
    assert resource_name("fn") == "fn"
    assert resource_name("fn", "prod") == "fn:prod"
    assert resource_name(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:3") == "fn:3"
    assert resource_name("a/b") == "a/b"


def test_aws_time_format() -> None:
    from datetime import UTC, datetime

    assert aws_time(datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == (
        "2024-01-02T03:04:05.678+0000"
    )


def test_packages_are_checked_like_lambda() -> None:
    check_zip(zip_of({"app.py": "x = 1\n", "pkg/mod.py": ""}), 2**20)
    with pytest.raises(InvalidParameterValueError, match="Could not unzip uploaded file"):
        check_zip(b"not a zip", 2**20)
    with pytest.raises(RequestTooLargeError):
        check_zip(zip_of({"app.py": "x" * 100}), 10)
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.py", "x")
    with pytest.raises(InvalidParameterValueError):
        check_zip(evil.getvalue(), 2**20)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * 262_144_001)
    with pytest.raises(InvalidParameterValueError, match="Unzipped size must be smaller"):
        check_zip(bomb.getvalue(), 2**30)
