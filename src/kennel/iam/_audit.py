"""The IAM audit: risky grants, stale credentials and escalation paths in one account.

Pure: the server reads its IAM tables into a :class:`Snapshot` and :func:`audit` returns
:class:`Finding` s, most severe first. Every rule is a small function with a stable id:

=============================  ========  ======================================================
id                             severity  fires on
=============================  ========  ======================================================
full-access-on-service-role    high      ``AdministratorAccess``/``*FullAccess`` attached to a
                                         role a service may assume or a live resource uses
admin-access                   medium    a user or group with ``AdministratorAccess`` (low for
                                         kennel's bootstrap user ``admin``)
wildcard-action                high/med  an Allow with ``Action: "*"`` (high), ``"service:*"``
                                         or ``NotAction`` (medium) in a customer managed or
                                         inline policy
wildcard-resource              medium    an Allow with ``Resource: "*"`` (or ``NotResource``)
                                         on actions that act on specific resources
open-trust-policy              high      a trust policy letting anyone (``*``) assume the role
                                         without a Condition
old-access-key                 medium    an Active key older than ``stale_days``
unused-access-key              medium    an Active key not used for ``stale_days``
unused-principal               low       a user/role not used for ``stale_days``
orphaned-role                  medium    a role whose resources were deleted
no-mfa                         medium    a user with keys or permissions and no MFA device
privilege-escalation           high      passing a stronger role to something that runs with
                                         it, or changing one's own permissions
unparseable-policy             low       a document that is not valid policy language (skipped)
=============================  ========  ======================================================

"Can do X" is decided with :func:`~kennel.iam._policy.evaluate` (permissions boundaries
honoured) on representative resources: the action's ARN with a wildcard name and every
Resource pattern of the principal's own policies, taken literally. Conditions are evaluated
against a context holding only the principal (plus ``iam:PassedToService`` for PassRole), so
a grant that depends on other request keys is not counted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kennel.iam._actions import ACTIONS, PERMISSIONS_ACTIONS
from kennel.iam._advisor import principal_context, representative_resources
from kennel.iam._conditions import ContextValue, wildcard_match
from kennel.iam._policy import (
    AuthzRequest,
    MalformedPolicyDocumentError,
    Policy,
    PolicyKind,
    Statement,
    evaluate,
    parse_policy,
)

__all__ = [
    "Finding",
    "KeyInfo",
    "PolicyInfo",
    "PrincipalInfo",
    "Snapshot",
    "audit",
    "boundary_policy",
    "effective_policies",
]

Severity = Literal["high", "medium", "low"]
_RANK: dict[str, int] = {"high": 0, "medium": 1, "low": 2}

ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
BOOTSTRAP_ADMIN = "admin"
"""The user kennel makes on first start (see ``_bootstrap``)."""
RUNNERS: dict[str, str] = {
    "sagemaker:CreateTrainingJob": "sagemaker.amazonaws.com",
    "sagemaker:CreateModel": "sagemaker.amazonaws.com",
    "sagemaker:CreateEndpoint": "sagemaker.amazonaws.com",
    "lambda:CreateFunction": "lambda.amazonaws.com",
}
"""Actions that start something running with a passed role, and the service that runs it."""

_CLI = "aws --profile kennel iam"
_REGION = re.compile(r"arn:aws[\w-]*:[\w-]+:([a-z]{2}(?:-gov)?-[a-z]+-\d+):")
_TYPED = frozenset(name for name, info in ACTIONS.items() if info.resource != "*")
"""Catalog actions that act on a specific resource (have an ARN template)."""
# What parse_policy can raise on a stored document that is not even the right shape.
_PARSE_ERRORS = (MalformedPolicyDocumentError, TypeError, ValueError, KeyError, AttributeError)


# -- inputs and output -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    access_key_id: str
    status: str  # "Active" | "Inactive"
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class PolicyInfo:
    arn: str
    name: str
    document: dict[str, Any]
    builtin: bool


@dataclass(frozen=True)
class PrincipalInfo:
    kind: Literal["user", "role", "group"]
    name: str
    arn: str
    created_at: datetime
    last_used_at: datetime | None
    attached: tuple[str, ...] = ()
    """Managed policy ARNs attached directly."""
    inline: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    """Inline policies: name -> document."""
    boundary: str | None = None
    """The permissions boundary's policy ARN."""
    trust_policy: dict[str, Any] | None = None
    """Roles: who may assume it."""
    mfa_enabled: bool = False
    """Users."""
    keys: tuple[KeyInfo, ...] = ()
    """Users: access keys."""
    groups: tuple[str, ...] = ()
    """Users: the names of their groups."""
    used_by: tuple[str, ...] = ()
    """Roles: ARNs of the live resources running with it (functions, endpoints)."""
    was_used_by_deleted: bool = False
    """Roles: a resource that used it was deleted and none uses it now."""


@dataclass(frozen=True)
class Snapshot:
    account_id: str
    principals: tuple[PrincipalInfo, ...]
    policies: Mapping[str, PolicyInfo]
    """Every managed policy (built-in and customer), by ARN."""


@dataclass(frozen=True)
class Finding:
    id: str
    """Stable rule id, e.g. ``full-access-on-service-role``."""
    severity: Severity
    principal: str
    """ARN of the principal or policy the finding is about."""
    title: str
    detail: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- small helpers ---------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _age(now: datetime, then: datetime) -> timedelta:
    return _utc(now) - _utc(then)


def _short(arn: str) -> str:
    """``arn:aws:iam::123:role/x`` -> ``role/x``."""
    return arn.split(":", 5)[-1]


def _where(statement: Statement) -> str:
    return f"statement {statement.sid}" if statement.sid else f"statement #{statement.index}"


def _quoted(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _catalog_matches(statement: Statement) -> list[str]:
    """The catalog actions a statement's Action/NotAction covers (by name only)."""
    return [
        name
        for name in sorted(ACTIONS)
        if any(wildcard_match(p, name, ignore_case=True) for p in statement.actions)
        != statement.not_action
    ]


def _summarise(actions: list[str], limit: int = 6, among: Iterable[str] | None = None) -> str:
    """``sagemaker:*`` when every action of a service (of ``among``, by default the catalog)
    is there, ``sagemaker:* (except sagemaker:X)`` when most are, else the names."""
    universe = sorted(ACTIONS if among is None else set(among))
    by_service: dict[str, list[str]] = {}
    for name in sorted(set(actions)):
        by_service.setdefault(name.partition(":")[0], []).append(name)
    parts: list[str] = []
    for service, names in by_service.items():
        missing = [a for a in universe if a.partition(":")[0] == service and a not in names]
        if not missing:
            parts.append(f"{service}:*")
        elif len(names) > 3 and len(missing) <= 3:
            parts.append(f"{service}:* (except {', '.join(missing)})")
        else:
            parts.extend(names)
    if len(parts) > limit:
        return ", ".join(parts[:limit]) + f" and {len(parts) - limit} more"
    return ", ".join(parts)


def _policy_name(snapshot: Snapshot, arn: str) -> str:
    info = snapshot.policies.get(arn)
    return info.name if info is not None else arn.rsplit("/", 1)[-1]


def _is_admin_policy(snapshot: Snapshot, arn: str) -> bool:
    info = snapshot.policies.get(arn)
    return arn == ADMINISTRATOR_ACCESS or (
        info is not None and info.builtin and info.name == "AdministratorAccess"
    )


def _assume_statements(trust: Policy) -> Iterator[Statement]:
    """Allow statements of a trust policy that cover ``sts:AssumeRole``."""
    for statement in trust.statements:
        if statement.effect != "Allow" or statement.principals is None:
            continue
        hit = any(wildcard_match(a, "sts:AssumeRole", ignore_case=True) for a in statement.actions)
        if hit != statement.not_action:
            yield statement


def _infer_region(snapshot: Snapshot) -> str:
    seen: Counter[str] = Counter()
    texts = [arn for p in snapshot.principals for arn in p.used_by]
    texts += [json.dumps(info.document) for info in snapshot.policies.values()]
    texts += [json.dumps(doc) for p in snapshot.principals for doc in p.inline.values()]
    for text in texts:
        seen.update(_REGION.findall(text))
    return seen.most_common(1)[0][0] if seen else "us-east-1"


# -- the index: parsed policies and cached decisions -----------------------------------------------


class _Index:
    """A snapshot's policies parsed once, and the decisions taken so far."""

    def __init__(self, snapshot: Snapshot, region: str) -> None:
        self.snapshot = snapshot
        self.region = region
        self.account = snapshot.account_id
        self.groups = {p.name: p for p in snapshot.principals if p.kind == "group"}
        self.problems: dict[tuple[str, str], Finding] = {}
        self._managed: dict[str, Policy | None] = {}
        self._inline: dict[tuple[str, str], Policy | None] = {}
        self._trust: dict[str, Policy | None] = {}
        self._identity: dict[str, list[Policy]] = {}
        self._patterns: dict[str, tuple[str, ...]] = {}
        self._samples: dict[tuple[str, str], tuple[str, ...]] = {}
        self._grants: dict[str, list[tuple[str, str]]] = {}
        self._decisions: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], bool] = {}

    def _parse(
        self, document: Any, kind: PolicyKind, name: str, owner: str, what: str, fix: str
    ) -> Policy | None:
        try:
            return parse_policy(document, kind=kind, name=name)
        except _PARSE_ERRORS as error:
            self.problems.setdefault(
                (owner, what),
                Finding(
                    "unparseable-policy",
                    "low",
                    owner,
                    f"The {what} is not valid policy language; the audit skipped it",
                    f"The {what} fails to parse: {error}. The audit could not check what it "
                    "grants.",
                    fix,
                ),
            )
            return None

    def managed(self, arn: str) -> Policy | None:
        if arn not in self._managed:
            info = self.snapshot.policies.get(arn)
            self._managed[arn] = (
                None
                if info is None
                else self._parse(
                    info.document,
                    "identity",
                    info.name,
                    arn,
                    f"managed policy {info.name}",
                    "Fix the document and make it the default version: "
                    f"`{_CLI} create-policy-version --policy-arn {arn} "
                    "--policy-document file://policy.json --set-as-default`.",
                )
            )
        return self._managed[arn]

    def inline(self, principal: PrincipalInfo, name: str) -> Policy | None:
        key = (principal.arn, name)
        if key not in self._inline:
            self._inline[key] = self._parse(
                principal.inline[name],
                "identity",
                name,
                principal.arn,
                f"inline policy {name} of {principal.kind} {principal.name}",
                f"Replace it with a valid document: `{_put_inline(principal, name)}`.",
            )
        return self._inline[key]

    def trust(self, role: PrincipalInfo) -> Policy | None:
        if role.arn not in self._trust:
            self._trust[role.arn] = (
                None
                if role.trust_policy is None
                else self._parse(
                    role.trust_policy,
                    "trust",
                    f"{role.name}-trust",
                    role.arn,
                    f"trust policy of role {role.name}",
                    f"`{_CLI} update-assume-role-policy --role-name {role.name} "
                    "--policy-document file://trust.json` with a valid trust policy.",
                )
            )
        return self._trust[role.arn]

    def member_groups(self, principal: PrincipalInfo) -> list[PrincipalInfo]:
        if principal.kind != "user":
            return []
        return [self.groups[name] for name in principal.groups if name in self.groups]

    def managed_arns(self, principal: PrincipalInfo) -> list[str]:
        """Managed policies in effect: attached directly, then through groups (no repeats)."""
        arns: list[str] = []
        for holder in (principal, *self.member_groups(principal)):
            arns.extend(arn for arn in holder.attached if arn not in arns)
        return arns

    def identity(self, principal: PrincipalInfo) -> list[Policy]:
        if principal.arn not in self._identity:
            policies = [p for arn in self.managed_arns(principal) if (p := self.managed(arn))]
            for holder in (principal, *self.member_groups(principal)):
                policies.extend(p for name in holder.inline if (p := self.inline(holder, name)))
            self._identity[principal.arn] = policies
        return self._identity[principal.arn]

    def boundary(self, principal: PrincipalInfo) -> Policy | None:
        return self.managed(principal.boundary) if principal.boundary else None

    def patterns(self, principal: PrincipalInfo) -> tuple[str, ...]:
        """The Resource patterns of the principal's Allow statements."""
        if principal.arn not in self._patterns:
            found = {
                pattern
                for policy in self.identity(principal)
                for statement in policy.statements
                if statement.effect == "Allow" and not statement.not_resource
                for pattern in statement.resources or ()
            }
            self._patterns[principal.arn] = tuple(sorted(found))
        return self._patterns[principal.arn]

    def allows(
        self,
        principal: PrincipalInfo,
        action: str,
        resource: str,
        extra: Mapping[str, str] | None = None,
    ) -> bool:
        key = (principal.arn, action, resource, tuple(sorted((extra or {}).items())))
        if key not in self._decisions:
            context: dict[str, ContextValue] = {**principal_context(principal.arn), **(extra or {})}
            request = AuthzRequest(principal.arn, action, resource, context)
            decision = evaluate(
                request, self.identity(principal), boundary=self.boundary(principal)
            )
            self._decisions[key] = decision.allowed
        return self._decisions[key]

    def samples(self, principal: PrincipalInfo, action: str) -> tuple[str, ...]:
        key = (principal.arn, action)
        if key not in self._samples:
            self._samples[key] = representative_resources(
                action,
                self.patterns(principal),
                region=self.region,
                account=self.account,
                context=principal_context(principal.arn),
            )
        return self._samples[key]

    def grants(self, principal: PrincipalInfo) -> list[tuple[str, str]]:
        """Every (catalog action, sample resource) the principal is allowed."""
        if principal.arn not in self._grants:
            self._grants[principal.arn] = [
                (name, resource)
                for name in sorted(ACTIONS)
                for resource in self.samples(principal, name)
                if self.allows(principal, name, resource)
            ]
        return self._grants[principal.arn]

    def can(self, principal: PrincipalInfo, action: str) -> bool:
        """Whether the principal may do ``action`` on some resource."""
        return any(self.allows(principal, action, r) for r in self.samples(principal, action))

    def all_powerful(self, principal: PrincipalInfo) -> bool:
        """Whether every catalog action is allowed on every resource of its type."""
        return all(
            self.allows(principal, name, info.arn(self.region, self.account, "*"))
            for name, info in ACTIONS.items()
        )

    def stronger(self, role: PrincipalInfo, than: PrincipalInfo) -> list[str]:
        """Catalog actions ``role`` may do on a resource that ``than`` may not."""
        return sorted(
            {name for name, resource in self.grants(role) if not self.allows(than, name, resource)}
        )

    def trusted_services(self, role: PrincipalInfo) -> set[str]:
        """Service principals the trust policy lets assume the role (``*``: anyone)."""
        trust = self.trust(role)
        services: set[str] = set()
        for statement in _assume_statements(trust) if trust else ():
            assert statement.principals is not None
            if statement.not_principal or "*" in statement.principals:
                services.add("*")
            services.update(statement.principals.get("Service", ()))
            if "*" in statement.principals.get("AWS", ()):
                services.add("*")
        return services

    def trusts(self, role: PrincipalInfo, service: str) -> bool:
        """Whether ``service`` may run as ``role`` (a role with no trust policy: unknown, yes)."""
        if role.trust_policy is None:
            return True
        services = self.trusted_services(role)
        return "*" in services or service in services


def _put_inline(principal: PrincipalInfo, name: str) -> str:
    kind = principal.kind
    return (
        f"{_CLI} put-{kind}-policy --{kind}-name {principal.name} --policy-name {name} "
        "--policy-document file://policy.json"
    )


def _detach(principal: PrincipalInfo, arn: str) -> str:
    kind = principal.kind
    return f"{_CLI} detach-{kind}-policy --{kind}-name {principal.name} --policy-arn {arn}"


def _generate(arn: str) -> str:
    return f"kennel iam generate-policy --principal {arn}"


# -- public helpers --------------------------------------------------------------------------------


def effective_policies(snapshot: Snapshot, principal: PrincipalInfo) -> list[Policy]:
    """The principal's identity policies: attached, inline, and (users) its groups' ones.

    Documents that do not parse are left out (the audit reports them).
    """
    return _Index(snapshot, _infer_region(snapshot)).identity(principal)


def boundary_policy(snapshot: Snapshot, principal: PrincipalInfo) -> Policy | None:
    """The principal's permissions boundary, parsed (``None`` without one or if invalid)."""
    return _Index(snapshot, _infer_region(snapshot)).boundary(principal)


# -- rules -----------------------------------------------------------------------------------------

Rule = Callable[[_Index, datetime, timedelta], Iterator[Finding]]


def _of(index: _Index, kind: str) -> list[PrincipalInfo]:
    return [p for p in index.snapshot.principals if p.kind == kind]


def full_access_on_service_role(
    index: _Index, now: datetime, stale: timedelta
) -> Iterator[Finding]:
    for role in _of(index, "role"):
        services = sorted(index.trusted_services(role) - {"*"})
        if not services and not role.used_by:
            continue
        why = []
        if services:
            why.append("assumable by " + ", ".join(services))
        if role.used_by:
            why.append("used by " + ", ".join(role.used_by))
        for arn in role.attached:
            name = _policy_name(index.snapshot, arn)
            if name != "AdministratorAccess" and not name.endswith("FullAccess"):
                continue
            yield Finding(
                "full-access-on-service-role",
                "high",
                role.arn,
                f"Service role {role.name} has {name} attached",
                f"{name} ({arn}) is attached to role {role.name}, which is {'; '.join(why)}. "
                f"Whatever runs as this role (its code and everything that code loads) can "
                f"do all that {name} allows.",
                f"Run `{_generate(role.arn)}` to get a policy with only the calls the role "
                f"made, add it (`{_put_inline(role, 'least-privilege')}`), then detach "
                f"{name}: `{_detach(role, arn)}`.",
            )


def admin_access(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    for principal in index.snapshot.principals:
        if principal.kind == "role":
            continue
        for arn in principal.attached:
            if not _is_admin_policy(index.snapshot, arn):
                continue
            if principal.kind == "user" and principal.name == BOOTSTRAP_ADMIN:
                yield Finding(
                    "admin-access",
                    "low",
                    principal.arn,
                    f"User {principal.name} has AdministratorAccess (kennel's bootstrap admin)",
                    f"{principal.name} is the user kennel created on first start; its key is "
                    "in the AWS profile `kennel`. It needs AdministratorAccess to administer "
                    "the server, which is why this is only low.",
                    "Use it for administration only: give each person and each automation a "
                    f"user of its own with narrower policies (`{_CLI} create-user`, then "
                    f"`{_generate('<their ARN>')}` after a trial run), and keep the `kennel` "
                    "profile off shared machines.",
                )
                continue
            members = ""
            if principal.kind == "group":
                users = [p.name for p in _of(index, "user") if principal.name in p.groups]
                members = f" Its members: {', '.join(users) or 'none'}."
            yield Finding(
                "admin-access",
                "medium",
                principal.arn,
                f"{principal.kind.capitalize()} {principal.name} has AdministratorAccess",
                f"{arn} is attached to {principal.kind} {principal.name}: every action on "
                f"every resource, including changing anyone's permissions.{members}",
                "Attach only what is needed (e.g. ReadOnlyAccess, AmazonSageMakerFullAccess, "
                f"or the output of `{_generate(principal.arn)}`), then "
                f"`{_detach(principal, arn)}`.",
            )


def _all_stars(action: str) -> bool:
    vendor, _, name = action.partition(":")
    return set(vendor) == {"*"} and (not name or set(name) == {"*"})


def _service_wide(action: str) -> bool:
    vendor, _, name = action.partition(":")
    return set(name) == {"*"} or "*" in vendor or "?" in vendor


def _wildcards(index: _Index, policy: Policy, owner: str, what: str, fix: str) -> Iterator[Finding]:
    for statement in policy.statements:
        if statement.effect != "Allow":
            continue
        where = f"{what}, {_where(statement)}"
        if statement.not_action:
            yield Finding(
                "wildcard-action",
                "medium",
                owner,
                f"Allow with NotAction in {what}",
                f"{where}: Allow with NotAction [{_quoted(statement.actions)}] grants every "
                "other action of every service, including actions added later.",
                fix,
            )
        else:
            star = [a for a in statement.actions if _all_stars(a)]
            wide = [a for a in statement.actions if not _all_stars(a) and _service_wide(a)]
            if star or wide:
                yield Finding(
                    "wildcard-action",
                    "high" if star else "medium",
                    owner,
                    f"Wildcard action {_quoted(star or wide)} in {what}",
                    f"{where}: Allow {_quoted(star + wide)} grants "
                    + ("every action of every service." if star else "every action of the service.")
                    + " A wildcard also grants actions added later.",
                    fix,
                )
        typed = [a for a in _catalog_matches(statement) if a in _TYPED]
        if statement.not_resource and typed:
            yield Finding(
                "wildcard-resource",
                "medium",
                owner,
                f"Allow with NotResource in {what}",
                f"{where}: Allow with NotResource [{_quoted(statement.resources or ())}] grants "
                f"{_summarise(typed, among=_TYPED)} on every other resource.",
                fix,
            )
        elif "*" in (statement.resources or ()) and typed:
            example = ACTIONS[typed[0]].arn(index.region, index.account, "NAME")
            yield Finding(
                "wildcard-resource",
                "medium",
                owner,
                f'Resource "*" in {what}',
                f'{where}: Resource "*" for {_summarise(typed, among=_TYPED)}, which act on '
                f"specific resources (e.g. {example}); every such resource in the account is "
                "granted.",
                fix,
            )


def wildcards(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    snapshot = index.snapshot
    for arn in sorted(snapshot.policies):
        info = snapshot.policies[arn]
        policy = index.managed(arn)
        if info.builtin or policy is None:
            continue
        holders = [p for p in snapshot.principals if arn in p.attached]
        attached = ", ".join(_short(p.arn) for p in holders) or "nothing"
        generate = "; ".join(f"`{_generate(p.arn)}`" for p in holders if p.kind != "group")
        yield from _wildcards(
            index,
            policy,
            arn,
            f"managed policy {info.name} (attached to {attached})",
            "Name the actions and resources actually needed"
            + (f" ({generate} lists what was used)" if generate else "")
            + f", then `{_CLI} create-policy-version --policy-arn {arn} "
            "--policy-document file://policy.json --set-as-default`.",
        )
    for principal in snapshot.principals:
        for name in principal.inline:
            policy = index.inline(principal, name)
            if policy is None:
                continue
            generate = f" (`{_generate(principal.arn)}` lists what was used)"
            yield from _wildcards(
                index,
                policy,
                principal.arn,
                f"inline policy {name} of {principal.kind} {principal.name}",
                "Name the actions and resources actually needed"
                + (generate if principal.kind != "group" else "")
                + f", then `{_put_inline(principal, name)}`.",
            )


def open_trust_policy(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    for role in _of(index, "role"):
        trust = index.trust(role)
        for statement in _assume_statements(trust) if trust else ():
            assert statement.principals is not None
            if statement.conditions:
                continue
            if statement.not_principal:
                who = f"everyone except {dict(statement.principals)}"
            elif "*" in statement.principals or "*" in statement.principals.get("AWS", ()):
                who = "anyone (Principal *)"
            else:
                continue
            yield Finding(
                "open-trust-policy",
                "high",
                role.arn,
                f"Anyone can assume role {role.name}",
                f"The trust policy of role {role.name}, {_where(statement)}, lets {who} call "
                "sts:AssumeRole without a Condition, and so get the role's permissions.",
                "Name who may assume it (e.g. "
                f'{{"AWS": "arn:aws:iam::{index.account}:user/NAME"}} or '
                '{"Service": "sagemaker.amazonaws.com"}) or add a Condition, then '
                f"`{_CLI} update-assume-role-policy --role-name {role.name} "
                "--policy-document file://trust.json`.",
            )


def access_keys(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    days = stale.days
    for user in _of(index, "user"):
        for key in user.keys:
            if key.status != "Active":
                continue
            age = _age(now, key.created_at)
            deactivate = (
                f"`{_CLI} update-access-key --user-name {user.name} "
                f"--access-key-id {key.access_key_id} --status Inactive`"
            )
            delete = (
                f"`{_CLI} delete-access-key --user-name {user.name} "
                f"--access-key-id {key.access_key_id}`"
            )
            if age > stale:
                yield Finding(
                    "old-access-key",
                    "medium",
                    user.arn,
                    f"Access key {key.access_key_id} of user {user.name} is {age.days} days old",
                    f"Active access key {key.access_key_id} of user {user.name} was created "
                    f"{age.days} days ago (more than {days}); the longer a key lives the more "
                    "places it may have leaked to.",
                    f"Rotate it: `{_CLI} create-access-key --user-name {user.name}`, move the "
                    f"clients to the new key, then {deactivate} and, once nothing breaks, "
                    f"{delete}.",
                )
            if key.last_used_at is None:
                unused = age > stale
                when = f"has never been used in the {age.days} days since it was created"
            else:
                idle = _age(now, key.last_used_at)
                unused = idle > stale
                when = f"was last used {idle.days} days ago"
            if unused:
                yield Finding(
                    "unused-access-key",
                    "medium",
                    user.arn,
                    f"Access key {key.access_key_id} of user {user.name} is unused",
                    f"Active access key {key.access_key_id} of user {user.name} {when} "
                    f"(threshold {days} days).",
                    f"Deactivate it: {deactivate}; delete it if nothing complains: {delete}.",
                )


def _last_used(principal: PrincipalInfo) -> datetime | None:
    moments = [principal.last_used_at] + [k.last_used_at for k in principal.keys]
    present = [_utc(m) for m in moments if m is not None]
    return max(present) if present else None


def unused_principal(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    for principal in index.snapshot.principals:
        if principal.kind == "group" or principal.used_by:
            continue
        age = _age(now, principal.created_at)
        last = _last_used(principal)
        if age <= stale or (last is not None and _age(now, last) <= stale):
            continue
        when = (
            "has never been used"
            if last is None
            else f"was last used {_age(now, last).days} days ago"
        )
        kind = principal.kind
        yield Finding(
            "unused-principal",
            "low",
            principal.arn,
            f"{kind.capitalize()} {principal.name} is unused",
            f"{kind.capitalize()} {principal.name} was created {age.days} days ago and {when} "
            f"(threshold {stale.days} days).",
            f"If nothing needs it, remove its policies and keys, then `{_CLI} delete-{kind} "
            f"--{kind}-name {principal.name}`.",
        )


def orphaned_role(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    for role in _of(index, "role"):
        if not role.was_used_by_deleted or role.used_by:
            continue
        yield Finding(
            "orphaned-role",
            "medium",
            role.arn,
            f"Role {role.name} outlived the resources that used it",
            f"Role {role.name} was used by a function or endpoint that has been deleted, and "
            "no live resource uses it now; its permissions remain available to anyone who "
            "may pass or assume it.",
            f"Delete it: `{_CLI} list-attached-role-policies --role-name {role.name}` and "
            f"detach each (`{_CLI} detach-role-policy`), delete its inline policies "
            f"(`{_CLI} delete-role-policy`), then `{_CLI} delete-role --role-name {role.name}`.",
        )


def no_mfa(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    for user in _of(index, "user"):
        if user.mfa_enabled:
            continue
        active = [k.access_key_id for k in user.keys if k.status == "Active"]
        grants = index.managed_arns(user) or any(
            holder.inline for holder in (user, *index.member_groups(user))
        )
        if not active and not grants:
            continue
        has = []
        if active:
            has.append("active access key(s) " + ", ".join(active))
        if grants:
            has.append("permissions")
        yield Finding(
            "no-mfa",
            "medium",
            user.arn,
            f"User {user.name} has no MFA device",
            f"User {user.name} has {' and '.join(has)} but no MFA device: a leaked key is "
            "enough to act as this user.",
            f"`kennel iam mfa create {user.name}` (add the seed to an authenticator app), "
            f"then `kennel iam mfa enable {user.name} "
            f"arn:aws:iam::{index.account}:mfa/{user.name} CODE1 CODE2`; require it with a "
            'Deny on "aws:MultiFactorAuthPresent": "false".',
        )


def _resource_kind(template: str) -> str:
    """``arn:aws:iam::{account}:user/{name}`` -> ``user``."""
    return template.rsplit(":", 1)[-1].partition("/")[0]


def _self_targets(index: _Index, principal: PrincipalInfo, action: str) -> list[str]:
    kind = _resource_kind(ACTIONS[action].resource)
    if kind == principal.kind:
        return [principal.arn]
    if kind == "group":
        return [group.arn for group in index.member_groups(principal)]
    if action == "iam:CreatePolicyVersion":
        arns = index.managed_arns(principal) + ([principal.boundary] if principal.boundary else [])
        snapshot = index.snapshot
        return [a for a in arns if a in snapshot.policies and not snapshot.policies[a].builtin]
    return []


def privilege_escalation(index: _Index, now: datetime, stale: timedelta) -> Iterator[Finding]:
    roles = _of(index, "role")
    for principal in index.snapshot.principals:
        if principal.kind == "group" or index.all_powerful(principal):
            continue
        kind = principal.kind
        runners = {a: s for a, s in RUNNERS.items() if index.can(principal, a)}
        for role in roles if runners else ():
            if role.arn == principal.arn:
                continue
            usable = [
                action
                for action, service in runners.items()
                if index.trusts(role, service)
                and index.allows(
                    principal, "iam:PassRole", role.arn, {"iam:PassedToService": service}
                )
            ]
            if not usable:
                continue
            stronger = index.stronger(role, principal)
            if not stronger:
                continue
            yield Finding(
                "privilege-escalation",
                "high",
                principal.arn,
                f"{kind.capitalize()} {principal.name} can gain role {role.name}'s permissions",
                f"{kind.capitalize()} {principal.name} can iam:PassRole {_short(role.arn)} "
                f"(has {_summarise(stronger)} that this {kind} lacks) to "
                f"{', '.join(usable)}: the code it runs there acts with the role's permissions.",
                "Limit iam:PassRole to the roles this "
                f"{kind} should hand out (Resource: their ARNs, with an iam:PassedToService "
                f"Condition), or cut role {role.name} down (`{_generate(role.arn)}`).",
            )
        own = [
            f"{action} on {_short(target)}"
            for action in sorted(PERMISSIONS_ACTIONS)
            for target in _self_targets(index, principal, action)
            if index.allows(principal, action, target)
        ]
        if own:
            yield Finding(
                "privilege-escalation",
                "high",
                principal.arn,
                f"{kind.capitalize()} {principal.name} can change its own permissions",
                f"{kind.capitalize()} {principal.name} is allowed {'; '.join(own)}: it can "
                "grant itself any permission it lacks.",
                f"Remove these actions on {principal.arn} (and its groups and policies) from "
                "its policies, or set a permissions boundary that does not allow them: "
                f"`{_CLI} put-{kind}-permissions-boundary --{kind}-name {principal.name} "
                "--permissions-boundary POLICY_ARN`.",
            )


RULES: tuple[Rule, ...] = (
    full_access_on_service_role,
    admin_access,
    wildcards,
    open_trust_policy,
    access_keys,
    unused_principal,
    orphaned_role,
    no_mfa,
    privilege_escalation,
)


def audit(
    snapshot: Snapshot,
    now: datetime,
    *,
    stale_days: int = 90,
    region: str | None = None,
) -> list[Finding]:
    """Every finding of every rule, most severe first, then by principal.

    ``region`` is used to build sample resource ARNs; by default the one most ARNs in the
    snapshot name (``us-east-1`` when none does).
    """
    index = _Index(snapshot, region or _infer_region(snapshot))
    stale = timedelta(days=stale_days)
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(index, now, stale))
    findings.extend(index.problems.values())
    return sorted(
        set(findings),
        key=lambda f: (_RANK[f.severity], f.principal, f.id, f.title, f.detail),
    )
