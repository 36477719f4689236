"""Roles in a stack: an IAM role, its trust policy, inline and managed policies.

Everything goes through boto3's ``iam`` client against the server, as a user's code would:
GetRole, ListRolePolicies/GetRolePolicy and ListAttachedRolePolicies to compare; CreateRole,
UpdateAssumeRolePolicy, PutRolePolicy, DeleteRolePolicy, Attach/DetachRolePolicy to apply.
Policy documents are checked at plan time by the very parser the server validates
PutRolePolicy with, so a bad document fails before anything is written, with IAM's message.
A role's physical name is its logical name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

from kennel._errors import NotFoundError, ValidationError
from kennel.iam._policy import MalformedPolicyDocumentError, PolicyKind, parse_policy
from kennel.stack._calls import call, find, gone
from kennel.stack._schema import RoleBlock
from kennel.stack._types import UNKNOWN, Address, StackContext, Step, fingerprint, physical

NO_SUCH_ENTITY = ("NoSuchEntity", "NoSuchEntityException")
POLICY_VERSION = "2012-10-17"
_POLICY_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")
"""IAM's rule for a policy name."""
UNKNOWN_VALUE = re.compile(re.escape(UNKNOWN).replace(re.escape("{}"), r"[^)]*"))
"""A value a plan does not know yet (see ``_types.UNKNOWN``)."""


def trust_policy(services: list[str]) -> dict[str, Any]:
    """The trust policy letting ``services`` (``lambda.amazonaws.com``) assume the role."""
    principals = sorted(set(services))
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": principals[0] if len(principals) == 1 else principals},
                "Action": "sts:AssumeRole",
            }
        ],
    }


@dataclass
class RoleState:
    """A role as the server has it."""

    arn: str
    trust: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    managed: set[str]


@dataclass
class RoleChanges:
    """What applying a block to an existing role changes."""

    trust: dict[str, Any] | None = None
    """The new trust policy, when it changes."""
    put: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Inline policies added or changed."""
    added: set[str] = field(default_factory=set)
    """Of ``put``, those that are new."""
    removed: set[str] = field(default_factory=set)
    attach: set[str] = field(default_factory=set)
    detach: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.trust or self.put or self.removed or self.attach or self.detach)

    def describe(self, before: RoleState) -> str:
        parts: list[str] = []
        if self.trust is not None:
            old = ", ".join(_services(before.trust)) or "(other)"
            new = ", ".join(_services(self.trust))
            parts.append(f"trust {old} -> {new}")
        parts += [
            f"policy {name} {'added' if name in self.added else 'changed'}"
            for name in sorted(self.put)
        ]
        parts += [f"policy {name} removed" for name in sorted(self.removed)]
        parts += [f"attach {arn}" for arn in sorted(self.attach)]
        parts += [f"detach {arn}" for arn in sorted(self.detach)]
        return "; ".join(parts)


def _services(trust: dict[str, Any]) -> list[str]:
    found: list[str] = []
    statements = trust.get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal") if isinstance(statement, dict) else None
        service = principal.get("Service") if isinstance(principal, dict) else None
        found += [service] if isinstance(service, str) else list(service or [])
    return sorted(found)


def _document(value: Any) -> dict[str, Any]:
    """A policy document as a client returns it: boto3 decodes it, the wire has it
    URL-encoded."""
    if isinstance(value, dict):
        return value
    decoded: dict[str, Any] = json.loads(unquote(str(value)))
    return decoded


def _stand_ins(value: Any) -> Any:
    """``value`` with each value a plan does not know yet (``${endpoints.e.arn}`` before the
    endpoint exists) replaced by one that passes wherever it stands: ``*`` for a whole
    string, ``unknown`` inside one."""
    if isinstance(value, dict):
        return {k: _stand_ins(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_ins(v) for v in value]
    if isinstance(value, str) and UNKNOWN_VALUE.search(value):
        return "*" if UNKNOWN_VALUE.fullmatch(value) else UNKNOWN_VALUE.sub("unknown", value)
    return value


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def read_role(iam: Any, name: str) -> RoleState | None:
    """The role ``name`` with its policies; None when there is none."""
    found = find(iam, "get_role", NO_SUCH_ENTITY, RoleName=name)
    if found is None:
        return None
    role = found["Role"]
    names = call(iam, "list_role_policies", RoleName=name).get("PolicyNames") or []
    policies = {
        policy: _document(
            call(iam, "get_role_policy", RoleName=name, PolicyName=policy)["PolicyDocument"]
        )
        for policy in names
    }
    attached = call(iam, "list_attached_role_policies", RoleName=name).get("AttachedPolicies")
    return RoleState(
        arn=str(role["Arn"]),
        trust=_document(role.get("AssumeRolePolicyDocument") or {}),
        policies=policies,
        managed={str(p["PolicyArn"]) for p in attached or []},
    )


def changes(block: RoleBlock, role: RoleState) -> RoleChanges:
    wanted = RoleChanges()
    trust = trust_policy(block.assumed_by)
    if not _same(trust, role.trust):
        wanted.trust = trust
    for name, document in block.policies.items():
        current = role.policies.get(name)
        if current is None or not _same(current, document):
            wanted.put[name] = document
            if current is None:
                wanted.added.add(name)
    wanted.removed = set(role.policies) - set(block.policies)
    wanted.attach = set(block.managed_policies) - role.managed
    wanted.detach = role.managed - set(block.managed_policies)
    return wanted


class RoleHandler:
    """``roles:`` blocks.

    ``description`` is given when the role is made; a later change to it is not an update
    (kennel's IAM, like its CLI, has no UpdateRole).
    """

    kind: ClassVar[str] = "roles"

    def references(self, block: Any) -> set[Address]:
        return set()

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        block = RoleBlock.model_validate(spec)
        self._check(ctx, address, block)
        name = physical(address, fingerprint(spec))
        step = Step(address, "none", name, "unchanged", spec=spec, fingerprint=fingerprint(spec))
        role = read_role(ctx.aws("iam"), name)
        if role is None:
            step.action, step.reason = "create", "does not exist"
            return step
        wanted = changes(block, role)
        if wanted:
            step.action, step.reason = "update", wanted.describe(role)
        return step

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        block = RoleBlock.model_validate(step.spec)
        iam = ctx.aws("iam")
        name = step.physical
        role = read_role(iam, name)
        if role is None:
            ctx.progress(f"creating role {name}")
            described = {"Description": block.description} if block.description else {}
            created = call(
                iam,
                "create_role",
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust_policy(block.assumed_by)),
                **described,
            )["Role"]
            role = RoleState(str(created["Arn"]), trust_policy(block.assumed_by), {}, set())
        wanted = changes(block, role)
        if wanted.trust is not None:
            call(
                iam,
                "update_assume_role_policy",
                RoleName=name,
                PolicyDocument=json.dumps(wanted.trust),
            )
        for policy, document in sorted(wanted.put.items()):
            ctx.progress(f"role {name}: putting policy {policy}")
            call(
                iam,
                "put_role_policy",
                RoleName=name,
                PolicyName=policy,
                PolicyDocument=json.dumps(document),
            )
        for policy in sorted(wanted.removed):
            gone(iam, "delete_role_policy", NO_SUCH_ENTITY, RoleName=name, PolicyName=policy)
        for arn in sorted(wanted.attach):
            call(iam, "attach_role_policy", RoleName=name, PolicyArn=arn)
        for arn in sorted(wanted.detach):
            gone(iam, "detach_role_policy", NO_SUCH_ENTITY, RoleName=name, PolicyArn=arn)
        return {"name": name, "arn": role.arn}

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        role = call(ctx.aws("iam"), "get_role", RoleName=physical)["Role"]
        return {"name": physical, "arn": str(role["Arn"])}

    def delete(self, ctx: StackContext, physical: str) -> None:
        iam = ctx.aws("iam")
        if find(iam, "get_role", NO_SUCH_ENTITY, RoleName=physical) is None:
            return
        ctx.progress(f"deleting role {physical}")
        inline = find(iam, "list_role_policies", NO_SUCH_ENTITY, RoleName=physical) or {}
        for policy in inline.get("PolicyNames") or []:
            gone(iam, "delete_role_policy", NO_SUCH_ENTITY, RoleName=physical, PolicyName=policy)
        attached = find(iam, "list_attached_role_policies", NO_SUCH_ENTITY, RoleName=physical) or {}
        for policy in attached.get("AttachedPolicies") or []:
            gone(
                iam,
                "detach_role_policy",
                NO_SUCH_ENTITY,
                RoleName=physical,
                PolicyArn=policy["PolicyArn"],
            )
        gone(iam, "delete_role", NO_SUCH_ENTITY, RoleName=physical)

    @staticmethod
    def _check(ctx: StackContext, address: Address, block: RoleBlock) -> None:
        """Refuse now what IAM would refuse at apply: bad documents, unknown managed
        policies."""
        documents: list[tuple[str, dict[str, Any], PolicyKind]] = [
            ("trust policy", trust_policy(block.assumed_by), "trust")
        ]
        documents += [(f"policy {name!r}", doc, "identity") for name, doc in block.policies.items()]
        for name in block.policies:
            if not _POLICY_NAME.match(name):
                raise ValidationError(
                    f"{address} policy name {name!r} is not valid: 1-128 letters, digits and "
                    "+=,.@_- characters.",
                    hint="Rename the policy.",
                )
        for what, document, kind in documents:
            try:
                parse_policy(_stand_ins(document), kind=kind)
            except MalformedPolicyDocumentError as err:
                raise MalformedPolicyDocumentError(
                    f"{address} {what}: {err.message}",
                    hint="Fix the document; IAM's policy grammar: "
                    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html",
                ) from err
        iam = ctx.aws("iam")
        for arn in block.managed_policies:
            if UNKNOWN_VALUE.search(arn):
                continue
            if find(iam, "get_policy", NO_SUCH_ENTITY, PolicyArn=arn) is None:
                raise NotFoundError(
                    f"{address} attaches managed policy {arn}, which does not exist.",
                    hint="See `kennel iam policies list`.",
                )
