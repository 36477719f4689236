"""Matching primitives of the IAM policy language: wildcards, policy variables, conditions.

Wildcards
    ``*`` matches any run of characters (including none), ``?`` exactly one. Actions match
    case-insensitively, resources and ARNs case-sensitively. Matching is on the whole string.
    The ARN condition operators (``ArnEquals``, ``ArnLike`` and their negations) match segment
    by segment: both ARNs are split on ``:`` into six parts (the last, the resource, keeps its
    colons), a wildcard cannot cross a ``:`` outside the resource part, and a request value that
    is not an ARN (fewer than six parts) matches nothing.

Policy variables (policy version 2012-10-17 only)
    ``${aws:username}``, ``${aws:PrincipalArn}`` ... are replaced by the request-context value
    of that key (keys are case-insensitive). ``${key, 'default'}`` supplies a default. The
    escapes ``${*}``, ``${?}`` and ``${$}`` stand for a *literal* ``*``, ``?`` and ``$``. A
    variable whose key is absent (and has no default) makes the element match nothing.

Condition blocks
    ``{"Operator": {"key": value | [values]}}``. Several values for one key are ORed; several
    keys and several operators are ANDed. A key missing from the request makes a positive
    test false and a negated one (``StringNotEquals``, ``ArnNotLike``, ``NotIpAddress``, ...)
    true; ``...IfExists`` operators are true and ``Null`` tests the key's presence. Set
    operators: ``ForAnyValue:`` is true when at least one request value passes (false when the
    key is missing or resolves to a null data set: no values, or an empty string);
    ``ForAllValues:`` is true when every request value passes (true when missing or null).
    Negated operators pass for a request value that matches none of the policy values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

__all__ = [
    "CONDITION_OPERATORS",
    "ContextValue",
    "compile_pattern",
    "condition_matches",
    "expand_variables",
    "split_operator",
    "valid_date_value",
    "wildcard_match",
]

ContextValue = str | list[str]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,]+?)\s*,\s*'([^']*)'\s*$")

# Positive base operators and the negated operators that are "not any of" them.
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
}
_POSITIVE = {
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
    "NumericEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
}
CONDITION_OPERATORS: frozenset[str] = frozenset(_POSITIVE | set(_NEGATIONS) | {"Null"})
_PREFIXES = ("ForAnyValue:", "ForAllValues:")


def split_operator(operator: str) -> tuple[str | None, str, bool] | None:
    """``"ForAnyValue:StringLikeIfExists"`` -> ``("ForAnyValue", "StringLike", True)``.

    ``None`` when the operator is not one of the IAM condition operators.
    """
    prefix: str | None = None
    for candidate in _PREFIXES:
        if operator.startswith(candidate):
            prefix = candidate[:-1]
            operator = operator[len(candidate) :]
            break
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    if operator not in CONDITION_OPERATORS or (operator == "Null" and (if_exists or prefix)):
        return None
    return prefix, operator, if_exists


# -- wildcards and policy variables ------------------------------------------------------------


def _lookup(context: Mapping[str, ContextValue], key: str) -> list[str] | None:
    value = context.get(key.lower())
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _pieces(text: str, context: Mapping[str, ContextValue] | None) -> list[tuple[str, bool]] | None:
    """Split ``text`` into (chunk, is_literal) pieces, resolving variables when ``context``."""
    if context is None or "${" not in text:
        return [(text, False)]
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for found in _VARIABLE.finditer(text):
        pieces.append((text[pos : found.start()], False))
        name = found.group(1).strip()
        if name in ("*", "?", "$"):
            pieces.append((name, True))
        else:
            default: str | None = None
            with_default = _DEFAULT.match(name)
            if with_default:
                name, default = with_default.group(1), with_default.group(2)
            values = _lookup(context, name)
            if values and len(values) == 1:
                pieces.append((values[0], True))
            elif default is not None:
                pieces.append((default, True))
            else:
                return None
        pos = found.end()
    pieces.append((text[pos:], False))
    return pieces


def _lower_keys(context: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    return {key.lower(): value for key, value in context.items()}


def expand_variables(text: str, context: Mapping[str, ContextValue] | None) -> str | None:
    """``text`` with its policy variables replaced (``None`` if one cannot be resolved).

    ``context`` must have lower-cased keys; ``None`` means variables are not supported (policy
    version 2008-10-17) and ``text`` is returned unchanged.
    """
    pieces = _pieces(text, context)
    return None if pieces is None else "".join(chunk for chunk, _ in pieces)


# A wildcard pattern, tokenised: a literal character, or a wildcard (``*`` any run of
# characters, ``?`` exactly one). A ``*`` a policy variable put in is a literal.
_Token = tuple[Literal["literal", "*", "?"], str]


def _tokens(pieces: Sequence[tuple[str, bool]]) -> list[_Token]:
    return [
        ("literal", char) if literal or char not in "*?" else ("*" if char == "*" else "?", "")
        for chunk, literal in pieces
        for char in chunk
    ]


def _part_regex(tokens: Sequence[_Token], any_char: str) -> str:
    """A regex for wildcard tokens that never backtracks more than once over the value.

    ``*`` compiled naively (as ``.*``) makes ``*a*a*a*a*a*a*a*b`` take minutes on forty
    ``a``: the engine retries every way to share the value out among the stars. Here the
    text between two stars is found by an atomic, lazy search: its leftmost place is
    always as good as any later one (the star after it can take up the difference), so no
    other place is ever tried, and a match costs at most (value length x pattern length).
    ``any_char`` is what a wildcard may match (``.``, or ``[^:]`` inside an ARN segment).
    """
    segments: list[list[str]] = [[]]
    for kind, char in tokens:
        if kind == "*":
            segments.append([])
        else:
            segments[-1].append(any_char if kind == "?" else re.escape(char))
    texts = ["".join(segment) for segment in segments]
    if len(texts) == 1:
        return texts[0]
    head, *middle, tail = texts
    floating = "".join(f"(?>{any_char}*?{text})" for text in middle if text)
    return f"{head}{floating}{any_char}*{tail}"


def _flags(ignore_case: bool) -> re.RegexFlag:
    return re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(_part_regex(_tokens([(pattern, False)]), "."), _flags(ignore_case))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches ``pattern`` (``*`` and ``?`` wildcards, whole string)."""
    if pattern == "*":
        return True
    return _glob(pattern, ignore_case).fullmatch(value) is not None


# Wildcards of the first five ARN parts (arn:partition:service:region:account) stay in their part.
_ARN_PREFIX_COLONS = 5


@lru_cache(maxsize=4096)
def _piece_regex(
    pieces: tuple[tuple[str, bool], ...], ignore_case: bool, arn: bool
) -> re.Pattern[str]:
    tokens = _tokens(pieces)
    if not arn:
        return re.compile(_part_regex(tokens, "."), _flags(ignore_case))
    # Up to its fifth colon an ARN pattern is matched segment by segment: a wildcard there
    # cannot match a colon. Each segment, with the colon that ends it, is atomic: the
    # value's colons fix where it ends, so there is never another way to match it.
    segments: list[list[_Token]] = [[]]
    for token in tokens:
        if token == ("literal", ":") and len(segments) <= _ARN_PREFIX_COLONS:
            segments.append([])
        else:
            segments[-1].append(token)
    *prefix, rest = segments
    body = "".join(f"(?>{_part_regex(segment, '[^:]')}:)" for segment in prefix)
    rest_char = "." if len(segments) > _ARN_PREFIX_COLONS else "[^:]"
    return re.compile(body + _part_regex(rest, rest_char), _flags(ignore_case))


def compile_pattern(
    text: str,
    context: Mapping[str, ContextValue] | None,
    *,
    ignore_case: bool = False,
    arn: bool = False,
) -> re.Pattern[str] | None:
    """A regex for a wildcard pattern whose variables are resolved from ``context``.

    Substituted values are literal (a ``*`` in a user name is not a wildcard). With ``arn``,
    wildcards before the fifth ``:`` cannot match a ``:`` (ARN segments are matched one by
    one; the resource part keeps its colons). Compiled patterns are cached.
    """
    pieces = _pieces(text, context)
    if pieces is None:
        return None
    return _piece_regex(tuple(pieces), ignore_case, arn)


# -- value parsing ---------------------------------------------------------------------------------

_EPOCH = re.compile(r"^-?\d+(\.\d+)?$")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    text = text.strip()
    if _EPOCH.match(text):
        return float(text)
    candidate = text.upper()
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def valid_date_value(text: str) -> bool:
    """AWS's (legacy) acceptance test for a Date condition value: ISO 8601 or epoch seconds."""
    lowered = text.lower()
    if "t" not in lowered and "-" not in lowered:
        try:
            return -292275054 <= int(lowered) <= 9223372036854775807
        except ValueError:
            return False
    try:
        _check_iso_8601(lowered)
    except (ValueError, AssertionError):
        return False
    return True


def _require(condition: bool) -> None:
    if not condition:
        raise ValueError("invalid ISO 8601 date")


def _check_iso_8601(text: str) -> None:
    date_part, _, time_part = text.partition("t")
    negative = date_part.startswith("-")
    date_parts = (date_part[1:] if negative else date_part).split("-")
    year = int(("-" if negative else "") + date_parts[0])
    _require(-292275054 <= year <= 292278993)
    if len(date_parts) > 1:
        _require(1 <= int(date_parts[1]) <= 12)
    if len(date_parts) > 2:
        _require(1 <= int(date_parts[2]) <= 31)
    _require(len(date_parts) < 4)
    time_parts = time_part.split(":")
    if time_parts[0] != "":
        _require(0 <= int(time_parts[0]) <= 23)
    if len(time_parts) > 1:
        _require(0 <= int(time_parts[1]) <= 59)
    if len(time_parts) > 2:
        seconds_part = time_parts[2]
        if "z" in seconds_part:
            seconds_part, _, rest = seconds_part.partition("z")
            _require(rest == "")
        elif "+" in seconds_part:
            seconds_part, _, zone = seconds_part.partition("+")
            hours, colon, minutes = zone.partition(":")
            _require(len(hours) == 2 and 0 <= int(hours) <= 23)
            if colon:
                _require(len(minutes) == 2 and 0 <= int(minutes) <= 59)
        seconds, dot, fraction = seconds_part.partition(".")
        _require(0 <= int(seconds) <= 59)
        if dot:
            _require(0 <= int(fraction) <= 999999999)


# -- operators -------------------------------------------------------------------------------------


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def test(actual: str, expected: str) -> bool:
        left, right = _number(actual), _number(expected)
        return left is not None and right is not None and compare(left, right)

    return test


def _dated(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def test(actual: str, expected: str) -> bool:
        left, right = _date(actual), _date(expected)
        return left is not None and right is not None and compare(left, right)

    return test


def _ip(actual: str, expected: str) -> bool:
    try:
        return ipaddress.ip_address(actual.strip()) in ipaddress.ip_network(
            expected.strip(), strict=False
        )
    except ValueError:
        return False


_SIMPLE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda a, e: a == e,
    "StringEqualsIgnoreCase": lambda a, e: a.casefold() == e.casefold(),
    "BinaryEquals": lambda a, e: a == e,
    "Bool": lambda a, e: a.lower() == e.lower(),
    "NumericEquals": _numeric(lambda a, e: a == e),
    "NumericLessThan": _numeric(lambda a, e: a < e),
    "NumericLessThanEquals": _numeric(lambda a, e: a <= e),
    "NumericGreaterThan": _numeric(lambda a, e: a > e),
    "NumericGreaterThanEquals": _numeric(lambda a, e: a >= e),
    "DateEquals": _dated(lambda a, e: a == e),
    "DateLessThan": _dated(lambda a, e: a < e),
    "DateLessThanEquals": _dated(lambda a, e: a <= e),
    "DateGreaterThan": _dated(lambda a, e: a > e),
    "DateGreaterThanEquals": _dated(lambda a, e: a >= e),
    "IpAddress": _ip,
}
_PATTERN_OPERATORS = {"StringLike", "ArnLike", "ArnEquals"}
_ARN_OPERATORS = {"ArnLike", "ArnEquals"}
_VARIABLE_OPERATORS = {
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
}


def _passes(
    base: str, actual: str, expected: Sequence[str], context: Mapping[str, ContextValue] | None
) -> bool:
    """Whether one request value passes a positive operator against any policy value."""
    arn = base in _ARN_OPERATORS
    if arn and actual.count(":") < _ARN_PREFIX_COLONS:
        return False  # not an ARN: fewer than six parts
    for raw in expected:
        if base in _PATTERN_OPERATORS:
            pattern = compile_pattern(raw, context, arn=arn)
            if pattern is not None and pattern.fullmatch(actual):
                return True
            continue
        value = expand_variables(raw, context) if base in _VARIABLE_OPERATORS else raw
        if value is not None and _SIMPLE[base](actual, value):
            return True
    return False


def condition_matches(
    operator: str,
    key: str,
    expected: Sequence[str],
    context: Mapping[str, ContextValue],
    *,
    variables: bool = True,
) -> bool:
    """Evaluate one ``operator: {key: expected}`` test against a (lower-cased key) context."""
    parsed = split_operator(operator)
    if parsed is None:
        return False
    prefix, base, if_exists = parsed
    actual = _lookup(context, key)
    if base == "Null":
        missing = not actual
        return any((value.lower() == "true") == missing for value in expected)
    variable_context = context if variables else None
    negated = base in _NEGATIONS
    positive = _NEGATIONS.get(base, base)

    def one(value: str) -> bool:
        hit = _passes(positive, value, expected, variable_context)
        return not hit if negated else hit

    if actual and prefix is not None and all(value == "" for value in actual):
        # An empty string is a null data set for the set operators.
        return prefix == "ForAllValues"
    if not actual:
        # Missing key: ...IfExists and ForAllValues pass, ForAnyValue fails; otherwise the
        # values "do not match", so a positive test fails and a negated one passes.
        if if_exists or prefix == "ForAllValues":
            return True
        return prefix is None and negated
    if prefix == "ForAllValues":
        return all(one(value) for value in actual)
    return any(one(value) for value in actual)


def normalise_context(context: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    """The request context with lower-cased keys (condition keys are case-insensitive)."""
    return _lower_keys(context)
