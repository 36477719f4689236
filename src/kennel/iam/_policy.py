"""The IAM policy language: parse, validate and evaluate policy documents.

Validation (:func:`parse_policy`) follows AWS's order of checks and wording (as mirrored by
moto), so a bad document fails with the message AWS would give:

1. not JSON / not an object -> ``Syntax errors in policy.``
2. ``Version`` missing (or ``2008-10-17`` in an identity policy) -> ``Policy document must be
   version 2012-10-17 or greater.``
3. "legacy parsing": an ``Effect`` in the wrong case, a malformed Date condition value, an ARN
   with too few segments or an empty service -> ``The policy failed legacy parsing``
4. syntax: unknown keys, wrong JSON types, unknown condition operators, both ``Action`` and
   ``NotAction`` ... -> ``Syntax errors in policy.``
5. duplicate ``Sid`` -> ``Statement IDs (SID) in a single policy must be unique.``
6. no ``Action``/``NotAction`` -> ``Policy statement must contain actions.``
7. resource ARN format (partition, region for iam/s3, iam resource path)
8. action format ``vendor:Action`` (or ``*``)
9. no ``Resource``/``NotResource`` in an identity policy -> ``Policy statement must contain
   resources.``; principals are required in resource and trust policies and refused in identity
   policies.

Evaluation (:func:`evaluate`) is AWS's single-account logic:

* a statement *applies* when its action, resource, principal (resource policies) and
  conditions all match; ``NotAction``/``NotResource``/``NotPrincipal`` apply to everything
  *except* what they list;
* in ``Principal`` an account (its ID or ``:root`` ARN) stands for every principal of the
  account and a role ARN for the role's sessions; in ``NotPrincipal`` an account stands only
  for its root user;
* an applicable ``Deny`` in any policy (identity, resource, boundary) wins: ``explicit-deny``.
  A resource-policy ``Deny`` with ``NotPrincipal`` always applies to a principal that has a
  permissions boundary, whatever it lists;
* otherwise the request is allowed if the resource policy allows it *directly* (it names the
  caller's own ARN: the user, or the role session itself), or if the resource policy (through
  the role ARN, the account or a wildcard) or an identity policy allows it *and* (when a
  permissions boundary is given) the boundary allows it too;
* otherwise ``implicit-deny``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kennel import _json
from kennel._errors import KennelError
from kennel.iam._conditions import (
    ContextValue,
    compile_pattern,
    condition_matches,
    normalise_context,
    split_operator,
    valid_date_value,
    wildcard_match,
)

__all__ = [
    "AuthzRequest",
    "Condition",
    "Decision",
    "MalformedPolicyDocumentError",
    "Policy",
    "PolicyKind",
    "Statement",
    "StatementRef",
    "evaluate",
    "parse_policy",
]

PolicyKind = Literal["identity", "resource", "trust"]
Effect = Literal["Allow", "Deny"]


class MalformedPolicyDocumentError(KennelError):
    """The policy document is not valid IAM policy language."""

    status = 400
    aws_code = "MalformedPolicyDocument"


SYNTAX = "Syntax errors in policy."
VERSION = "Policy document must be version 2012-10-17 or greater."
LEGACY = "The policy failed legacy parsing"
SID_UNIQUE = "Statement IDs (SID) in a single policy must be unique."
SID_FORMAT = (
    "Statement IDs (SID) must be alpha-numeric. "
    "Check that your input satisfies the regular expression [0-9A-Za-z]*"
)
NO_ACTIONS = "Policy statement must contain actions."
NO_RESOURCES = "Policy statement must contain resources."
NO_PRINCIPAL = "Policy document should not specify a principal."
NEEDS_PRINCIPAL = "Missing required field Principal"
PREFIX = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."

_TOP_KEYS = {"Version", "Statement", "Id"}
STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
_PARTITIONS = {"aws", "aws-cn", "aws-us-gov"}
_REGION_ERRORS = {
    "iam": "IAM resource {resource} cannot contain region information.",
    "s3": "Resource {resource} can not contain region information.",
}
_IAM_PATHS = (
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
)
# S3 resources that do live in a region (access points, batch jobs, Storage Lens).
_S3_REGIONAL = ("accesspoint/", "job/", "storage-lens/")
_PRINCIPAL_TYPES = {"AWS", "Service", "Federated", "CanonicalUser"}
_VENDOR = re.compile(r"[^a-zA-Z0-9\-.]")
_SID = re.compile(r"^[0-9A-Za-z_]*$")


# -- model -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` test."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """One parsed statement. ``actions``/``resources`` hold the ``Not...`` list when negated."""

    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool = False
    resources: tuple[str, ...] | None = None
    not_resource: bool = False
    principals: Mapping[str, tuple[str, ...]] | None = None
    not_principal: bool = False
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A validated policy document."""

    version: str
    statements: tuple[Statement, ...]
    kind: PolicyKind = "identity"
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class AuthzRequest:
    """What is being authorised: who, which action, on what, and the request context."""

    principal_arn: str
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


PolicySource = Literal["identity", "resource", "boundary"]


@dataclass(frozen=True)
class StatementRef:
    """Which statement decided: the policy's name, the statement's Sid and index."""

    policy: str | None
    sid: str | None
    index: int
    source: PolicySource

    def __str__(self) -> str:
        where = self.sid or f"#{self.index}"
        return f"{self.policy or '<unnamed>'}:{where}"


_SOURCE_TEXT = {
    "identity": "an identity-based policy",
    "resource": "a resource-based policy",
    "boundary": "a permissions boundary",
}


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`evaluate`."""

    allowed: bool
    reason: Literal["explicit-deny", "allowed", "implicit-deny"]
    statement: StatementRef | None = None
    blocked_by_boundary: bool = False

    def message(self, principal: str, action: str, resource: str) -> str:
        """AWS's AccessDenied text for this decision (empty when allowed)."""
        if self.allowed:
            return ""
        head = f"User: {principal} is not authorized to perform: {action} on resource: {resource}"
        if self.reason == "explicit-deny":
            source = self.statement.source if self.statement else "identity"
            return f"{head} with an explicit deny in {_SOURCE_TEXT[source]}"
        if self.blocked_by_boundary:
            return f"{head} because no permissions boundary allows the {action} action"
        return f"{head} because no identity-based policy allows the {action} action"


# -- validation ------------------------------------------------------------------------------------


def _fail(message: str) -> MalformedPolicyDocumentError:
    return MalformedPolicyDocumentError(message)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _legacy_checks(statements: list[Any]) -> None:
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect")
        if (
            isinstance(effect, str)
            and effect.lower() in ("allow", "deny")
            and effect not in ("Allow", "Deny")
        ):
            raise _fail(LEGACY)
        condition = statement.get("Condition")
        if isinstance(condition, dict):
            for operator, block in condition.items():
                parsed = split_operator(operator) if isinstance(operator, str) else None
                if not parsed or not parsed[1].startswith("Date") or not isinstance(block, dict):
                    continue
                for value in block.values():
                    for item in _as_list(value):
                        if isinstance(item, dict | list):
                            continue  # a syntax error, reported later
                        if not valid_date_value(_condition_value(item)):
                            raise _fail(LEGACY)


def _resource_format_error(resource: str) -> str | None:
    """AWS's complaint about one resource ARN, if any."""
    if resource == "*":
        return None
    _, colon, rest = resource.partition(":")
    if not colon:
        return f'Resource {resource} must be in ARN format or "*".'
    partition, colon, rest = rest.partition(":")
    if partition not in _PARTITIONS:
        parts = rest.split(":")
        arn1 = parts[0] if parts[0] != "" or len(parts) > 1 else "*"
        arn2 = parts[1] if len(parts) > 1 else "*"
        arn3 = parts[2] if len(parts) > 2 else "*"
        arn4 = ":".join(parts[3:]) if len(parts) > 3 else "*"
        return (
            f'Partition "{partition}" is not valid for resource '
            f'"arn:{partition}:{arn1}:{arn2}:{arn3}:{arn4}".'
        )
    if not colon:
        return "Resource vendor must be fully qualified and cannot contain regexes."
    service, _, rest = rest.partition(":")
    regional_s3 = service == "s3" and rest.partition(":")[2].partition(":")[2].startswith(
        _S3_REGIONAL
    )
    if service in _REGION_ERRORS and not rest.startswith(":") and not regional_s3:
        return _REGION_ERRORS[service].format(resource=resource)
    path = rest.partition(":")[2].partition(":")[2]
    if service == "iam" and not (path.startswith("*") or path.startswith(_IAM_PATHS)):
        return 'IAM resource path must either be "*" or start with ' + ", ".join(_IAM_PATHS) + "."
    return None


def _legacy_resource_ok(resource: str) -> bool:
    if resource == "*":
        return True
    parts = resource.split(":")
    return (resource.count(":") >= 5 or "::" not in resource) and (len(parts) < 3 or parts[2] != "")


def _resource_checks(statements: list[Any]) -> str | None:
    """Run the ARN format checks; legacy failures raise, format errors are returned for later."""
    error: str | None = None
    for key in ("Resource", "NotResource"):
        for statement in statements:
            if not isinstance(statement, dict) or key not in statement:
                continue
            value = statement[key]
            items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            strings = sorted((item for item in items if isinstance(item, str)), reverse=True)
            for resource in strings:
                error = _resource_format_error(resource) or error
            if error is None and not all(_legacy_resource_ok(item) for item in strings):
                raise _fail(LEGACY)
    return error


def _is_string_list(value: Any, *, allow_none: bool = False) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and all(
        isinstance(item, str) or (allow_none and item is None) for item in value
    )


def _scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float) and value is not None


def _syntax_checks(document: dict[str, Any], statements: list[Any], kind: PolicyKind) -> None:
    if set(document) - _TOP_KEYS or "Statement" not in document:
        raise _fail(SYNTAX)
    if document["Version"] not in ("2012-10-17", "2008-10-17"):
        raise _fail(SYNTAX)
    if "Id" in document and not isinstance(document["Id"], str):
        raise _fail(SYNTAX)
    if not statements:
        raise _fail(SYNTAX)
    for statement in statements:
        if not isinstance(statement, dict) or set(statement).difference(STATEMENT_KEYS):
            raise _fail(SYNTAX)
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise _fail(SYNTAX)
        if "Sid" in statement and not isinstance(statement["Sid"], str):
            raise _fail(SYNTAX)
        for one, other in (("Action", "NotAction"), ("Resource", "NotResource")):
            if one in statement and other in statement:
                raise _fail(SYNTAX)
        if "Principal" in statement and "NotPrincipal" in statement:
            raise _fail(SYNTAX)
        for key in ("Action", "NotAction"):
            if key in statement and not _is_string_list(statement[key]):
                raise _fail(SYNTAX)
        for key in ("Resource", "NotResource"):
            if key in statement and not _is_string_list(statement[key], allow_none=True):
                raise _fail(SYNTAX)
        for key in ("Principal", "NotPrincipal"):
            if key in statement and not _valid_principal(statement[key]):
                raise _fail(SYNTAX)
        if "Condition" in statement:
            _condition_syntax(statement["Condition"])


def _valid_principal(value: Any) -> bool:
    if value == "*":
        return True
    if not isinstance(value, dict) or not value or set(value) - _PRINCIPAL_TYPES:
        return False
    return all(
        _is_string_list(item) and (not isinstance(item, list) or item) for item in value.values()
    )


def _condition_syntax(condition: Any) -> None:
    if not isinstance(condition, dict):
        raise _fail(SYNTAX)
    for operator, block in condition.items():
        if not isinstance(block, dict):
            raise _fail(SYNTAX)
        if block and split_operator(operator) is None:
            raise _fail(SYNTAX)
        for value in block.values():
            if isinstance(value, list):
                if not all(_scalar(item) for item in value):
                    raise _fail(SYNTAX)
            elif not _scalar(value):
                raise _fail(SYNTAX)


def _action_error(action: str) -> str | None:
    vendor, colon, name = action.partition(":")
    if not colon:
        return None if vendor == "*" else PREFIX
    if vendor != "*" and _VENDOR.search(vendor):
        return f"Vendor {vendor} is not valid"
    if ":" in name:
        return ONE_COLON
    return None


def _non_empty(statement: dict[str, Any], *keys: str) -> bool:
    return any(key in statement and statement[key] != [] for key in keys)


def _validate(document: dict[str, Any], kind: PolicyKind) -> list[dict[str, Any]]:
    version = document.get("Version")
    if version is None or (version == "2008-10-17" and kind == "identity"):
        raise _fail(VERSION)
    raw = document.get("Statement")
    statements: list[Any] = raw if isinstance(raw, list) else [raw] if raw is not None else []
    _legacy_checks(statements)
    resource_error = _resource_checks(statements)
    _syntax_checks(document, statements, kind)
    sids = [s["Sid"] for s in statements if s.get("Sid")]
    if len(sids) != len(set(sids)):
        raise _fail(SID_UNIQUE)
    if not all(_non_empty(s, "Action", "NotAction") for s in statements):
        raise _fail(NO_ACTIONS)
    if resource_error is not None:
        raise _fail(resource_error)
    for statement in statements:
        for key in ("Action", "NotAction"):
            for action in _as_list(statement.get(key, [])):
                error = _action_error(action)
                if error:
                    raise _fail(error)
    for statement in statements:
        has_principal = "Principal" in statement or "NotPrincipal" in statement
        if kind == "identity":
            if not _non_empty(statement, "Resource", "NotResource"):
                raise _fail(NO_RESOURCES)
            if has_principal:
                raise _fail(NO_PRINCIPAL)
        else:
            if not has_principal:
                raise _fail(NEEDS_PRINCIPAL)
            if kind == "trust" and ("Resource" in statement or "NotResource" in statement):
                key = "Resource" if "Resource" in statement else "NotResource"
                raise _fail(f"Has prohibited field {key}")
        if kind == "identity" and not _SID.match(statement.get("Sid", "")):
            raise _fail(SID_FORMAT)
    return statements


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _build_statement(index: int, raw: dict[str, Any]) -> Statement:
    not_action = "NotAction" in raw
    actions = tuple(_as_list(raw["NotAction" if not_action else "Action"]))
    not_resource = "NotResource" in raw
    resources: tuple[str, ...] | None = None
    if "Resource" in raw or not_resource:
        items = _as_list(raw["NotResource" if not_resource else "Resource"])
        resources = tuple(item for item in items if isinstance(item, str))
    not_principal = "NotPrincipal" in raw
    principals: dict[str, tuple[str, ...]] | None = None
    if "Principal" in raw or not_principal:
        value = raw["NotPrincipal" if not_principal else "Principal"]
        if value == "*":
            principals = {"*": ("*",)}
        else:
            principals = {kind: tuple(_as_list(item)) for kind, item in value.items()}
    conditions = tuple(
        Condition(operator, key, tuple(_condition_value(v) for v in _as_list(values)))
        for operator, block in raw.get("Condition", {}).items()
        for key, values in block.items()
    )
    return Statement(
        index=index,
        sid=raw.get("Sid") or None,
        effect=raw["Effect"],
        actions=actions,
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        principals=principals,
        not_principal=not_principal,
        conditions=conditions,
    )


def parse_policy(
    document: str | Mapping[str, Any],
    *,
    kind: PolicyKind = "identity",
    name: str | None = None,
) -> Policy:
    """Validate a policy document (JSON text or an already-decoded object) and parse it.

    Raises :class:`MalformedPolicyDocumentError` with AWS's message when it is not valid.
    """
    if isinstance(document, str):
        try:
            decoded = _json.loads(document)
        except ValueError:
            raise _fail(SYNTAX) from None
    else:
        decoded = document
    if not isinstance(decoded, Mapping):
        raise _fail(SYNTAX)
    data = dict(decoded)
    statements = _validate(data, kind)
    return Policy(
        version=data["Version"],
        statements=tuple(_build_statement(i, s) for i, s in enumerate(statements)),
        kind=kind,
        id=data.get("Id"),
        name=name,
    )


# -- evaluation ------------------------------------------------------------------------------------


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else None


def _role_of_session(principal_arn: str) -> str | None:
    """The role ARN of an assumed-role session ARN (``None`` for any other principal)."""
    parts = principal_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return None


def _is_account_root(principal_arn: str) -> bool:
    parts = principal_arn.split(":")
    return len(parts) == 6 and parts[0] == "arn" and parts[2] == "iam" and parts[5] == "root"


def _names_account(value: str, account: str | None) -> bool:
    """Whether a principal value is ``account`` (its ID or its ``:root`` ARN)."""
    if account is None:
        return False
    return value == account or (value.endswith(":root") and _account_of(value) == account)


# How a resource-policy statement's principal matched the caller: "direct" when it names the
# caller's own ARN, "indirect" through the role of a session, the account or a wildcard.
_PrincipalMatch = Literal["direct", "indirect"]


def _principal_match(
    principals: Mapping[str, tuple[str, ...]], principal_arn: str
) -> _PrincipalMatch | None:
    """How a ``Principal`` element matches the caller (``None``: it does not)."""
    role = _role_of_session(principal_arn)
    account = _account_of(principal_arn)
    found: _PrincipalMatch | None = None
    for kind, values in principals.items():
        for value in values:
            if value == principal_arn:
                return "direct"
            if (
                (value == "*" and kind in ("*", "AWS"))
                or value == role
                or (kind == "AWS" and _names_account(value, account))
            ):
                found = "indirect"
    return found


def _not_principal_lists(principals: Mapping[str, tuple[str, ...]], principal_arn: str) -> bool:
    """Whether a ``NotPrincipal`` element lists the caller (so the statement spares it).

    Unlike ``Principal``, an account listed here stands only for its root user.
    """
    role = _role_of_session(principal_arn)
    root_of = _account_of(principal_arn) if _is_account_root(principal_arn) else None
    for kind, values in principals.items():
        for value in values:
            if value in (principal_arn, role) or (value == "*" and kind in ("*", "AWS")):
                return True
            if kind == "AWS" and _names_account(value, root_of):
                return True
    return False


def _resource_matches(statement: Statement, resource: str, variables: Any) -> bool:
    patterns = statement.resources or ()
    hit = False
    for pattern in patterns:
        if pattern == "*":
            hit = True
            break
        compiled = compile_pattern(pattern, variables)
        if compiled is not None and compiled.fullmatch(resource):
            hit = True
            break
    return not hit if statement.not_resource else hit


def _applies(
    statement: Statement,
    request: AuthzRequest,
    context: Any,
    variables: bool,
    *,
    principal: bool,
    bounded: bool = False,
) -> _PrincipalMatch | None:
    """Whether ``statement`` applies to ``request`` and, if so, how its principal matched.

    ``principal``: check ``Principal``/``NotPrincipal`` (resource policies); ``bounded``: the
    caller has a permissions boundary. Statements without a principal match ``"direct"``.
    """
    action_hit = any(wildcard_match(a, request.action, ignore_case=True) for a in statement.actions)
    if action_hit == statement.not_action:
        return None
    if statement.resources is not None and not _resource_matches(
        statement, request.resource, context if variables else None
    ):
        return None
    match: _PrincipalMatch | None = "direct"
    if principal and statement.principals is not None:
        if statement.not_principal:
            # A NotPrincipal Deny always hits a principal that has a permissions boundary.
            always = bounded and statement.effect == "Deny"
            if not always and _not_principal_lists(statement.principals, request.principal_arn):
                return None
            match = "indirect"
        else:
            match = _principal_match(statement.principals, request.principal_arn)
            if match is None:
                return None
    if not all(
        condition_matches(c.operator, c.key, c.values, context, variables=variables)
        for c in statement.conditions
    ):
        return None
    return match


def _matching(
    policy: Policy,
    request: AuthzRequest,
    context: Any,
    effect: Effect,
    source: PolicySource,
    *,
    bounded: bool = False,
) -> tuple[StatementRef, _PrincipalMatch] | None:
    """The first applicable ``effect`` statement, preferring one whose principal is direct."""
    variables = policy.version == "2012-10-17"
    found: tuple[StatementRef, _PrincipalMatch] | None = None
    for statement in policy.statements:
        if statement.effect != effect:
            continue
        match = _applies(
            statement, request, context, variables, principal=source == "resource", bounded=bounded
        )
        if match is None:
            continue
        ref = StatementRef(policy.name, statement.sid, statement.index, source)
        if match == "direct":
            return ref, match
        if found is None:
            found = (ref, match)
    return found


def evaluate(
    request: AuthzRequest,
    identity_policies: Sequence[Policy],
    *,
    resource_policy: Policy | None = None,
    boundary: Policy | None = None,
) -> Decision:
    """Decide ``request`` the way AWS does within one account (see the module docstring)."""
    context = normalise_context(
        {"aws:principalarn": request.principal_arn, **dict(request.context)}
    )
    sources: list[tuple[Policy, PolicySource]] = [(p, "identity") for p in identity_policies]
    if resource_policy is not None:
        sources.append((resource_policy, "resource"))
    if boundary is not None:
        sources.append((boundary, "boundary"))
    bounded = boundary is not None
    for policy, source in sources:
        denied = _matching(policy, request, context, "Deny", source, bounded=bounded)
        if denied is not None:
            return Decision(False, "explicit-deny", denied[0])
    granted: StatementRef | None = None
    if resource_policy is not None:
        resource_allow = _matching(resource_policy, request, context, "Allow", "resource")
        if resource_allow is not None:
            granted, how = resource_allow
            # Granted to the caller's own ARN (user, role session): no boundary applies.
            # Granted through the role ARN or the account: the boundary still limits it.
            if how == "direct" or boundary is None:
                return Decision(True, "allowed", granted)
    if granted is None:
        for policy in identity_policies:
            identity_allow = _matching(policy, request, context, "Allow", "identity")
            if identity_allow is not None:
                granted = identity_allow[0]
                break
    if granted is None:
        return Decision(False, "implicit-deny")
    if boundary is not None and _matching(boundary, request, context, "Allow", "boundary") is None:
        return Decision(False, "implicit-deny", blocked_by_boundary=True)
    return Decision(True, "allowed", granted)
