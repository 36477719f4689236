"""How Lambda names things: function names and ARNs, qualifiers, its timestamp format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from kennel._errors import ValidationError
from kennel.functions._errors import InvalidParameterValueError, ResourceNotFoundError

LATEST = "$LATEST"

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
QUALIFIER = re.compile(r"^[a-zA-Z0-9$_-]{1,128}$")
VERSION = re.compile(r"^[0-9]+$")
ALIAS = re.compile(r"^(?![0-9]+$)[a-zA-Z0-9_-]{1,128}$")

_FULL_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)
_PARTIAL_ARN = re.compile(
    r"^(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)
_NAME = re.compile(r"^(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$")

_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)


@dataclass(frozen=True)
class FunctionRef:
    """A function as a request names it: its name, and the qualifier if one was given."""

    name: str
    qualifier: str | None


def _split(raw: str) -> tuple[str | None, str | None, str, str | None]:
    """(region, account, name, qualifier) of a name, partial ARN or ARN; ValueError if none."""
    for pattern in (_FULL_ARN, _PARTIAL_ARN, _NAME):
        match = pattern.match(raw)
        if match:
            parts = match.groupdict()
            return parts.get("region"), parts.get("account"), parts["name"], parts["qualifier"]
    raise ValueError(raw)


def validation_message(value: object, field: str, constraint: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: {constraint}"
    )


def parse_function_name(
    raw: str, qualifier: str | None = None, *, account: str, region: str
) -> FunctionRef:
    """Read ``my-fn``, ``my-fn:prod``, ``123456789012:function:my-fn`` or a function ARN.

    A qualifier both in the name and in ``qualifier`` must agree, as on AWS.
    """
    try:
        arn_region, arn_account, name, arn_qualifier = _split(raw)
    except ValueError:
        arn_region = arn_account = arn_qualifier = None
        name = ""
    if not FUNCTION_NAME.match(name) or (
        arn_qualifier is not None and not QUALIFIER.match(arn_qualifier)
    ):
        raise ValidationError(
            validation_message(
                raw,
                "functionName",
                f"Member must satisfy regular expression pattern: {_NAME_PATTERN}",
            )
        )
    if qualifier is not None and not QUALIFIER.match(qualifier):
        raise ValidationError(
            validation_message(
                qualifier,
                "qualifier",
                "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
            )
        )
    if arn_region is not None and arn_region != region:
        raise ResourceNotFoundError(
            f"Functions from '{arn_region}' are not reachable in this region ('{region}')"
        )
    if arn_account is not None and arn_account != account:
        raise ResourceNotFoundError(f"Function not found: {raw}")
    if qualifier and arn_qualifier and qualifier != arn_qualifier:
        raise InvalidParameterValueError(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return FunctionRef(name, qualifier or arn_qualifier)


def resource_name(raw: str, qualifier: str | None = None) -> str:
    """``name`` or ``name:qualifier`` for an authorization ARN, without validating anything.

    A request whose name does not parse is refused later by the route with a precise
    error; authorization then only needs some resource to decide on.
    """
    try:
        _region, _account, name, arn_qualifier = _split(raw)
    except ValueError:
        return raw
    chosen = qualifier or arn_qualifier
    return f"{name}:{chosen}" if chosen else name


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def aws_time(moment: datetime) -> str:
    """Lambda's timestamp format: ``2024-01-01T00:00:00.000+0000``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def iso_time(moment: datetime) -> str:
    """The ISO 8601 form function URL configs use: ``2024-01-01T00:00:00.000000Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
