"""Least privilege from what a principal actually did: generate a policy, find unused grants.

Both functions are pure: the server reads the access log (one :class:`AccessRecord` per
authorised call) and the principal's policies from its tables and passes them in.

:func:`generate_policy`
    The smallest identity policy that allows exactly the recorded calls: one entry per
    action with the concrete resources it touched, actions with the same resources merged
    into one statement per service, everything sorted (the result does not depend on the
    order of the records). Resources are written literally: a ``*``, ``?`` or ``$`` inside a
    recorded ARN is escaped as the policy variable ``${*}``/``${?}``/``${$}``.

:func:`unused_permissions`
    For every Allow statement of the principal's identity policies, which catalog actions it
    grants (wildcards and ``NotAction`` expanded through :data:`~kennel.iam._actions.ACTIONS`)
    and which of those the records show in use *through that statement*. Conditions are
    treated as satisfied (the records do not carry the request context), so a conditional
    grant counts as a grant.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from kennel.iam._actions import ACTIONS
from kennel.iam._conditions import ContextValue, expand_variables, normalise_context, wildcard_match
from kennel.iam._policy import AuthzRequest, Policy, Statement, evaluate

__all__ = [
    "AccessRecord",
    "Unused",
    "generate_policy",
    "principal_context",
    "representative_resources",
    "statement_grants",
    "unused_permissions",
]

_CANONICAL = {name.lower(): name for name in ACTIONS}
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_ESCAPES = {"*": "${*}", "?": "${?}", "$": "${$}"}


@dataclass(frozen=True)
class AccessRecord:
    """One authorised call from the access log."""

    time: datetime
    principal_arn: str
    action: str
    resource: str
    allowed: bool


# -- helpers shared with the audit ---------------------------------------------------------------


def canonical_action(action: str) -> str:
    """The catalog's spelling of ``action`` (actions are case-insensitive), else ``action``."""
    return _CANONICAL.get(action.lower(), action)


def principal_context(principal_arn: str) -> dict[str, ContextValue]:
    """The request-context keys a policy variable may use for this principal."""
    context: dict[str, ContextValue] = {"aws:PrincipalArn": principal_arn}
    resource = principal_arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "user" and rest:
        context["aws:username"] = rest.rsplit("/", 1)[-1]
    return context


def _arn_service(pattern: str) -> str | None:
    parts = pattern.split(":")
    return parts[2].lower() if len(parts) > 2 and parts[0] == "arn" else None


def representative_resources(
    action: str,
    patterns: Iterable[str],
    *,
    region: str,
    account: str,
    context: Mapping[str, ContextValue] | None = None,
) -> tuple[str, ...]:
    """Resources to try ``action`` on to learn whether some policy grants it *somewhere*.

    For a catalog action without a resource type that is ``*``. Otherwise the action's ARN
    template with a wildcard name (``arn:aws:sagemaker:<region>:<account>:endpoint/*``, taken
    literally: a policy granting every endpoint matches it, one granting ``prod-*`` does not),
    plus every pattern among ``patterns`` (the Resource elements of the policies at hand, their
    variables resolved from ``context``) that names a resource of that type. For an action
    outside the catalog: ``*`` plus the patterns of the action's service.
    """
    expanded: set[str] = set()
    lowered = normalise_context(context) if context is not None else None
    for pattern in patterns:
        value = expand_variables(pattern, lowered) if lowered is not None else pattern
        if value is not None and "${" not in value and value != "*":
            expanded.add(value)
    info = ACTIONS.get(canonical_action(action))
    if info is None:
        service = action.partition(":")[0].lower()
        return ("*", *sorted(p for p in expanded if _arn_service(p) == service))
    if info.resource == "*":
        return ("*",)
    base = info.arn(region, account, "*")
    return (base, *sorted(p for p in expanded if p != base and wildcard_match(base, p)))


def statement_grants(
    policy: Policy,
    statement: Statement,
    *,
    region: str,
    account: str,
    context: Mapping[str, ContextValue] | None = None,
) -> tuple[str, ...]:
    """The catalog actions one Allow statement grants on some resource (conditions ignored)."""
    single = _single(policy, statement)
    patterns = () if statement.not_resource else (statement.resources or ())
    principal = str((context or {}).get("aws:PrincipalArn", "")) or "arn:aws:iam::000000000000:root"
    granted = []
    for name in sorted(ACTIONS):
        for resource in representative_resources(
            name, patterns, region=region, account=account, context=context
        ):
            request = AuthzRequest(principal, name, resource, dict(context or {}))
            if evaluate(request, [single]).allowed:
                granted.append(name)
                break
    return tuple(granted)


def _single(policy: Policy, statement: Statement) -> Policy:
    """``statement`` alone, as an Allow without conditions, in a policy of its own."""
    return replace(policy, statements=(replace(statement, conditions=()),))


# -- generate-policy -------------------------------------------------------------------------------


def _literal(resource: str) -> str:
    if resource in ("", "*"):
        return "*"
    return "".join(_ESCAPES.get(char, char) for char in resource)


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in _NON_ALNUM.split(text) if part)


def generate_policy(
    records: Iterable[AccessRecord], *, include_denied: bool = False
) -> dict[str, Any]:
    """The smallest identity policy allowing exactly what ``records`` did (see module doc).

    Only allowed calls count unless ``include_denied``. Raises :class:`ValueError` when there
    is nothing to build a policy from.
    """
    records = list(records)
    kept = [r for r in records if r.allowed or include_denied]
    if not kept:
        principals = sorted({r.principal_arn for r in records})
        who = ", ".join(principals) if principals else "this principal"
        if records:
            raise ValueError(
                f"no allowed calls were recorded for {who} in the window "
                f"({len(records)} denied; include the denied calls to build a policy from them)"
            )
        raise ValueError(f"no calls were recorded for {who} in the window")
    by_action: dict[str, set[str]] = defaultdict(set)
    for record in kept:
        action = canonical_action(record.action)
        info = ACTIONS.get(action)
        resource = "*" if info is not None and info.resource == "*" else _literal(record.resource)
        by_action[action].add(resource)
    # One statement per (service, resource set); "*" covers every concrete resource.
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for action, touched in by_action.items():
        key = ("*",) if "*" in touched else tuple(sorted(touched))
        merged[(action.partition(":")[0].lower(), key)].append(action)
    groups = sorted(
        ((service, sorted(actions), resources) for (service, resources), actions in merged.items()),
        key=lambda group: (group[0], [a.lower() for a in group[1]], group[2]),
    )
    statements: list[dict[str, Any]] = []
    sids: set[str] = set()
    for counter, (service, actions, resources) in enumerate(groups, start=1):
        base = _camel(service)
        if len(actions) == 1:
            base += _camel(actions[0].partition(":")[2])
        sid, n = f"{base}{counter}", counter
        while sid in sids:
            n += len(groups)
            sid = f"{base}{n}"
        sids.add(sid)
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": resources[0] if len(resources) == 1 else list(resources),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


# -- unused permissions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Unused:
    """An Allow statement that grants catalog actions the principal never used."""

    policy: str
    sid: str | None
    statement_index: int
    actions: tuple[str, ...]
    """Granted catalog actions never used (wildcards and NotAction expanded)."""
    used: tuple[str, ...]
    """Catalog actions of the statement that were used through it."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["actions"] = list(self.actions)
        data["used"] = list(self.used)
        return data


def unused_permissions(
    policies: Sequence[Policy],
    records: Iterable[AccessRecord],
    *,
    region: str,
    account: str,
) -> list[Unused]:
    """Allow statements of ``policies`` with granted-but-unused catalog actions (module doc)."""
    by_action: dict[str, list[AccessRecord]] = defaultdict(list)
    principals: set[str] = set()
    for record in records:
        if record.allowed:
            by_action[canonical_action(record.action)].append(record)
            principals.add(record.principal_arn)
    context = principal_context(next(iter(principals))) if len(principals) == 1 else None
    found: list[Unused] = []
    for number, policy in enumerate(policies):
        for statement in policy.statements:
            if statement.effect != "Allow":
                continue
            granted = statement_grants(
                policy, statement, region=region, account=account, context=context
            )
            single = _single(policy, statement)
            used: list[str] = []
            unused: list[str] = []
            for action in granted:
                hit = any(
                    evaluate(
                        AuthzRequest(
                            r.principal_arn, action, r.resource, principal_context(r.principal_arn)
                        ),
                        [single],
                    ).allowed
                    for r in by_action.get(action, ())
                )
                (used if hit else unused).append(action)
            if unused:
                found.append(
                    Unused(
                        policy=policy.name or f"policy-{number}",
                        sid=statement.sid,
                        statement_index=statement.index,
                        actions=tuple(unused),
                        used=tuple(used),
                    )
                )
    return found
