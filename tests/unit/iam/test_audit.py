"""The IAM audit: every rule firing and not firing, on snapshots built by hand."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kennel.iam._actions import ACTIONS
from kennel.iam._audit import (
    Finding,
    KeyInfo,
    PolicyInfo,
    PrincipalInfo,
    Snapshot,
    audit,
    boundary_policy,
    effective_policies,
)

ACCOUNT = "123456789012"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=5)
ENDPOINT = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/classifier"

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
SAGEMAKER_FULL = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
LAMBDA_FULL = "arn:aws:iam::aws:policy/AWSLambda_FullAccess"
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trusted_by(principal: Any, **extra: Any) -> dict[str, Any]:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra})


LAMBDA_TRUST = trusted_by({"Service": "lambda.amazonaws.com"})
SAGEMAKER_TRUST = trusted_by({"Service": "sagemaker.amazonaws.com"})
USER_TRUST = trusted_by({"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})

BUILTINS = {
    ADMIN: PolicyInfo(ADMIN, "AdministratorAccess", doc(allow("*")), True),
    SAGEMAKER_FULL: PolicyInfo(
        SAGEMAKER_FULL, "AmazonSageMakerFullAccess", doc(allow("sagemaker:*")), True
    ),
    LAMBDA_FULL: PolicyInfo(
        LAMBDA_FULL, "AWSLambda_FullAccess", doc(allow(["lambda:*", "logs:GetLogEvents"])), True
    ),
    LAMBDA_BASIC: PolicyInfo(
        LAMBDA_BASIC, "AWSLambdaBasicExecutionRole", doc(allow("logs:PutLogEvents")), True
    ),
    READ_ONLY: PolicyInfo(
        READ_ONLY, "ReadOnlyAccess", doc(allow(["sagemaker:Describe*", "sagemaker:List*"])), True
    ),
}


def customer(name: str, document: dict[str, Any]) -> PolicyInfo:
    return PolicyInfo(f"arn:aws:iam::{ACCOUNT}:policy/{name}", name, document, False)


def user(name: str, **extra: Any) -> PrincipalInfo:
    extra.setdefault("created_at", OLD)
    extra.setdefault("last_used_at", RECENT)
    return PrincipalInfo("user", name, f"arn:aws:iam::{ACCOUNT}:user/{name}", **extra)


def role(name: str, **extra: Any) -> PrincipalInfo:
    extra.setdefault("created_at", OLD)
    extra.setdefault("last_used_at", RECENT)
    extra.setdefault("trust_policy", LAMBDA_TRUST)
    return PrincipalInfo("role", name, f"arn:aws:iam::{ACCOUNT}:role/{name}", **extra)


def principal_arn(name: str = "bob") -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def group(name: str, **extra: Any) -> PrincipalInfo:
    extra.setdefault("created_at", OLD)
    extra.setdefault("last_used_at", None)
    return PrincipalInfo("group", name, f"arn:aws:iam::{ACCOUNT}:group/{name}", **extra)


def snapshot(*principals: PrincipalInfo, policies: Iterable[PolicyInfo] = ()) -> Snapshot:
    return Snapshot(ACCOUNT, principals, {**BUILTINS, **{p.arn: p for p in policies}})


def run(
    *principals: PrincipalInfo, policies: Iterable[PolicyInfo] = (), **kw: Any
) -> list[Finding]:
    return audit(snapshot(*principals, policies=policies), NOW, **kw)


def only(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.id == rule]


def least_privilege_role(**extra: Any) -> PrincipalInfo:
    return role(
        "classify-fn",
        inline={"invoke": doc(allow("sagemaker:InvokeEndpoint", ENDPOINT))},
        used_by=(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:classify",),
        **extra,
    )


# -- full-access-on-service-role -------------------------------------------------------------------


def test_least_privilege_function_role_is_clean() -> None:
    assert run(least_privilege_role()) == []


def test_sagemaker_full_access_on_lambda_role_is_high() -> None:
    fn = role("classify-fn", attached=(SAGEMAKER_FULL,))
    [finding] = only(run(fn), "full-access-on-service-role")
    assert finding.severity == "high"
    assert finding.principal == fn.arn
    assert "AmazonSageMakerFullAccess" in finding.title
    assert "lambda.amazonaws.com" in finding.detail
    assert f"kennel iam generate-policy --principal {fn.arn}" in finding.fix
    assert f"detach-role-policy --role-name classify-fn --policy-arn {SAGEMAKER_FULL}" in (
        finding.fix
    )


def test_swapping_least_privilege_for_full_access_adds_a_high_finding() -> None:
    clean = least_privilege_role()
    assert not [f for f in run(clean) if f.severity == "high"]
    swapped = role("classify-fn", attached=(SAGEMAKER_FULL,), used_by=clean.used_by)
    highs = [f for f in run(swapped) if f.severity == "high"]
    assert [f.id for f in highs] == ["full-access-on-service-role"]


@pytest.mark.parametrize("arn", [ADMIN, SAGEMAKER_FULL, LAMBDA_FULL])
@pytest.mark.parametrize(
    "how",
    [
        {"trust_policy": SAGEMAKER_TRUST},
        {"trust_policy": LAMBDA_TRUST},
        {"trust_policy": USER_TRUST, "used_by": (ENDPOINT,)},
    ],
)
def test_full_access_policies_on_service_roles(arn: str, how: dict[str, Any]) -> None:
    assert only(run(role("r", attached=(arn,), **how)), "full-access-on-service-role")


@pytest.mark.parametrize("arn", [READ_ONLY, LAMBDA_BASIC])
def test_narrow_builtin_policies_on_service_roles_are_fine(arn: str) -> None:
    assert not only(run(role("r", attached=(arn,))), "full-access-on-service-role")


def test_full_access_on_a_role_no_service_uses_is_not_this_rule() -> None:
    r = role("people", attached=(SAGEMAKER_FULL,), trust_policy=USER_TRUST)
    assert not only(run(r), "full-access-on-service-role")


def test_customer_policy_named_full_access_counts() -> None:
    mine = customer("TeamFullAccess", doc(allow("sagemaker:Describe*", ENDPOINT)))
    findings = run(role("r", attached=(mine.arn,)), policies=[mine])
    assert only(findings, "full-access-on-service-role")


# -- admin-access ----------------------------------------------------------------------------------


def test_admin_access_on_a_user_is_medium() -> None:
    [finding] = only(run(user("alice", attached=(ADMIN,), mfa_enabled=True)), "admin-access")
    assert finding.severity == "medium"
    assert "detach-user-policy --user-name alice" in finding.fix


def test_admin_access_on_a_group_names_its_members() -> None:
    ops = group("ops", attached=(ADMIN,))
    bob = user("bob", groups=("ops",), mfa_enabled=True)
    [finding] = only(run(ops, bob), "admin-access")
    assert finding.severity == "medium" and finding.principal == ops.arn
    assert "bob" in finding.detail
    assert "detach-group-policy --group-name ops" in finding.fix


def test_bootstrap_admin_is_low_and_says_why() -> None:
    [finding] = only(run(user("admin", attached=(ADMIN,))), "admin-access")
    assert finding.severity == "low"
    assert "bootstrap" in finding.title and "first start" in finding.detail


def test_no_admin_access_finding_for_narrow_users_or_roles() -> None:
    findings = run(
        user("carol", attached=(READ_ONLY,)),
        role("people", attached=(ADMIN,), trust_policy=USER_TRUST),
    )
    assert not only(findings, "admin-access")


# -- wildcard-action / wildcard-resource -----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "severity"),
    [("*", "high"), (["sagemaker:DescribeModel", "*"], "high"), ("sagemaker:*", "medium")],
)
def test_wildcard_action_in_customer_policy(action: Any, severity: str) -> None:
    mine = customer("Broad", doc({**allow(action), "Sid": "Everything"}))
    [finding] = only(run(policies=[mine]), "wildcard-action")
    assert finding.severity == severity
    assert finding.principal == mine.arn
    assert "statement Everything" in finding.detail
    assert "create-policy-version" in finding.fix


def test_not_action_in_an_allow_is_medium() -> None:
    mine = customer("AllButIam", doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}))
    [finding] = only(run(policies=[mine]), "wildcard-action")
    assert finding.severity == "medium"
    assert "NotAction" in finding.detail and "iam:*" in finding.detail


def test_wildcard_action_in_inline_policy_names_the_owner() -> None:
    bob = user("bob", inline={"yolo": doc(allow("*"))})
    [finding] = only(run(bob), "wildcard-action")
    assert finding.severity == "high"
    assert finding.principal == bob.arn
    assert "inline policy yolo of user bob" in finding.detail
    assert "put-user-policy --user-name bob --policy-name yolo" in finding.fix


def test_no_wildcard_findings_for_builtins_denies_or_named_actions() -> None:
    precise = customer("Precise", doc(allow(["sagemaker:InvokeEndpoint"], ENDPOINT)))
    deny = customer("NoIam", doc({"Effect": "Deny", "Action": "*", "Resource": "*"}))
    prefix = customer("Readers", doc(allow("sagemaker:Describe*", ENDPOINT)))
    findings = run(user("admin", attached=(ADMIN,)), policies=[precise, deny, prefix])
    assert not only(findings, "wildcard-action")
    assert not only(findings, "wildcard-resource")


def test_resource_star_on_actions_with_a_resource_type_is_medium() -> None:
    mine = customer("InvokeAny", doc(allow("sagemaker:InvokeEndpoint")))
    [finding] = only(run(policies=[mine]), "wildcard-resource")
    assert finding.severity == "medium"
    assert "sagemaker:InvokeEndpoint" in finding.detail
    assert "arn:aws:sagemaker:us-east-1:123456789012:endpoint/" in finding.detail


def test_resource_star_on_list_actions_is_fine() -> None:
    mine = customer("Lists", doc(allow(["sagemaker:ListEndpoints", "kennel:ListDatasets"])))
    assert not only(run(policies=[mine]), "wildcard-resource")


def test_not_resource_in_an_allow_is_medium() -> None:
    mine = customer(
        "AllButProd",
        doc({"Effect": "Allow", "Action": "sagemaker:DeleteEndpoint", "NotResource": ENDPOINT}),
    )
    [finding] = only(run(policies=[mine]), "wildcard-resource")
    assert "NotResource" in finding.detail


# -- open-trust-policy -----------------------------------------------------------------------------


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*", "123456789012"]}])
def test_open_trust_policy_is_high(principal: Any) -> None:
    r = role("open", trust_policy=trusted_by(principal))
    [finding] = only(run(r), "open-trust-policy")
    assert finding.severity == "high" and finding.principal == r.arn
    assert "update-assume-role-policy --role-name open" in finding.fix


def test_not_principal_allow_is_open() -> None:
    trust = doc(
        {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/mallory"},
            "Action": "sts:AssumeRole",
        }
    )
    assert only(run(role("open", trust_policy=trust)), "open-trust-policy")


@pytest.mark.parametrize(
    "trust",
    [
        trusted_by("*", Condition={"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}),
        trusted_by({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        LAMBDA_TRUST,
        doc({"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}),
    ],
)
def test_closed_trust_policies(trust: dict[str, Any]) -> None:
    assert not only(run(role("closed", trust_policy=trust)), "open-trust-policy")


# -- access keys -----------------------------------------------------------------------------------


def key(created: datetime, last_used: datetime | None, status: str = "Active") -> KeyInfo:
    return KeyInfo("AKIAEXAMPLEKEY000001", status, created, last_used)


def key_rules(k: KeyInfo, **kw: Any) -> list[str]:
    findings = run(user("bob", keys=(k,), mfa_enabled=True), **kw)
    return sorted(f.id for f in findings if f.id.endswith("access-key"))


def test_old_but_used_key() -> None:
    findings = run(user("bob", keys=(key(OLD, RECENT),), mfa_enabled=True))
    [finding] = only(findings, "old-access-key")
    assert finding.severity == "medium"
    assert "AKIAEXAMPLEKEY000001" in finding.detail and "200 days" in finding.detail
    assert "create-access-key --user-name bob" in finding.fix
    assert not only(findings, "unused-access-key")


def test_old_never_used_key_is_old_and_unused() -> None:
    assert key_rules(key(OLD, None)) == ["old-access-key", "unused-access-key"]


def test_key_idle_longer_than_stale_days_is_unused() -> None:
    idle = key(NOW - timedelta(days=80), NOW - timedelta(days=45))
    assert key_rules(idle) == []
    assert key_rules(idle, stale_days=30) == ["old-access-key", "unused-access-key"]


@pytest.mark.parametrize(
    "k",
    [key(RECENT, None), key(NOW - timedelta(days=30), RECENT), key(OLD, None, status="Inactive")],
)
def test_fresh_or_inactive_keys_are_fine(k: KeyInfo) -> None:
    assert key_rules(k) == []


def test_stale_days_threshold() -> None:
    assert key_rules(key(OLD, None), stale_days=365) == []


# -- unused-principal / orphaned-role --------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        user("ghost", last_used_at=None),
        role("ghost", last_used_at=NOW - timedelta(days=100)),
    ],
)
def test_unused_principal_is_low(principal: PrincipalInfo) -> None:
    [finding] = only(run(principal), "unused-principal")
    assert finding.severity == "low"
    assert f"delete-{principal.kind} --{principal.kind}-name ghost" in finding.fix


@pytest.mark.parametrize(
    "principal",
    [
        user("new", created_at=RECENT, last_used_at=None),
        user("busy"),
        user("keyed", last_used_at=None, keys=(key(OLD, RECENT),)),
        role("serving", last_used_at=None, used_by=(ENDPOINT,)),
        group("g"),
    ],
)
def test_used_or_new_principals_are_not_unused(principal: PrincipalInfo) -> None:
    assert not only(run(principal), "unused-principal")


def test_orphaned_role() -> None:
    orphan = role("old-fn", was_used_by_deleted=True)
    [finding] = only(run(orphan), "orphaned-role")
    assert finding.severity == "medium"
    assert "delete-role --role-name old-fn" in finding.fix
    adopted = role("old-fn", was_used_by_deleted=True, used_by=(ENDPOINT,))
    assert not only(run(adopted), "orphaned-role")
    assert not only(run(role("fn")), "orphaned-role")


# -- no-mfa ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"keys": (key(RECENT, RECENT),)},
        {"attached": (READ_ONLY,)},
        {"inline": {"p": doc(allow("sagemaker:ListModels"))}},
        {"groups": ("readers",)},
    ],
)
def test_user_without_mfa(extra: dict[str, Any]) -> None:
    readers = group("readers", attached=(READ_ONLY,))
    [finding] = only(run(user("bob", **extra), readers), "no-mfa")
    assert finding.severity == "medium"
    assert "kennel iam mfa enable bob" in finding.fix


@pytest.mark.parametrize(
    "principal",
    [
        user("bob", keys=(key(RECENT, RECENT),), mfa_enabled=True),
        user("bare"),
        user("off", keys=(key(RECENT, RECENT, status="Inactive"),)),
        role("r", attached=(READ_ONLY,)),
        group("g", attached=(READ_ONLY,)),
    ],
)
def test_no_mfa_finding(principal: PrincipalInfo) -> None:
    assert not only(run(principal), "no-mfa")


# -- privilege-escalation --------------------------------------------------------------------------


def trainer_role(**extra: Any) -> PrincipalInfo:
    extra.setdefault("trust_policy", SAGEMAKER_TRUST)
    extra.setdefault("attached", (SAGEMAKER_FULL,))
    return role("trainer", used_by=(), **extra)


def passer(*actions: str, resource: str = "*", **extra: Any) -> PrincipalInfo:
    statements = [allow(["iam:PassRole", *actions], resource)]
    return user("bob", inline={"jobs": doc(*statements)}, mfa_enabled=True, **extra)


def test_pass_stronger_role_to_training_job() -> None:
    trainer = trainer_role()
    bob = passer("sagemaker:CreateTrainingJob")
    [finding] = only(run(bob, trainer), "privilege-escalation")
    assert finding.severity == "high" and finding.principal == bob.arn
    assert finding.detail.startswith(
        "User bob can iam:PassRole role/trainer (has sagemaker:* (except "
        "sagemaker:CreateTrainingJob) that this user lacks) to sagemaker:CreateTrainingJob"
    )
    assert "kennel iam generate-policy --principal" in finding.fix


def test_pass_role_to_lambda_create_function() -> None:
    runner = role("fn-admin", attached=(ADMIN,), trust_policy=LAMBDA_TRUST)
    bob = passer("lambda:CreateFunction")
    [finding] = only(run(bob, runner), "privilege-escalation")
    assert "to lambda:CreateFunction" in finding.detail


def test_pass_role_limited_by_passed_to_service_condition() -> None:
    runner = role("fn-admin", attached=(ADMIN,), trust_policy=LAMBDA_TRUST)
    conditional = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": "*",
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    bob = user("bob", inline={"p": doc(conditional, allow("lambda:CreateFunction"))})
    assert not only(run(bob, runner), "privilege-escalation")
    sm_runner = role("sm-admin", attached=(ADMIN,), trust_policy=SAGEMAKER_TRUST)
    carol = user("carol", inline={"p": doc(conditional, allow("sagemaker:CreateModel"))})
    assert only(run(carol, sm_runner), "privilege-escalation")


@pytest.mark.parametrize(
    "bob",
    [
        # no way to run anything with the role
        user("bob", inline={"p": doc(allow("iam:PassRole"))}),
        # can run things, but may not pass the role
        user("bob", inline={"p": doc(allow("sagemaker:CreateTrainingJob"))}),
        # may pass only another role
        passer("sagemaker:CreateTrainingJob", resource=f"arn:aws:iam::{ACCOUNT}:role/other"),
        # already has everything the role has
        user("bob", inline={"p": doc(allow(["iam:PassRole", "sagemaker:*"]))}),
        # its boundary forbids passing roles
        passer("sagemaker:CreateTrainingJob", boundary=f"arn:aws:iam::{ACCOUNT}:policy/Bound"),
    ],
)
def test_no_escalation_through_pass_role(bob: PrincipalInfo) -> None:
    bound = customer("Bound", doc(allow("sagemaker:CreateTrainingJob")))
    assert not only(run(bob, trainer_role(), policies=[bound]), "privilege-escalation")


def test_no_escalation_when_the_service_cannot_assume_the_role() -> None:
    lambda_only = trainer_role(trust_policy=LAMBDA_TRUST)
    assert not only(run(passer("sagemaker:CreateTrainingJob"), lambda_only), "privilege-escalation")


def test_least_privilege_role_is_not_stronger_than_a_sagemaker_user() -> None:
    bob = user("bob", inline={"p": doc(allow(["iam:PassRole", "sagemaker:*"]))})
    narrow = least_privilege_role(trust_policy=SAGEMAKER_TRUST)
    assert not only(run(bob, narrow), "privilege-escalation")
    weaker = user("dan", inline={"p": doc(allow(["iam:PassRole", "sagemaker:CreateModel"]))})
    [finding] = only(run(weaker, narrow), "privilege-escalation")
    assert "sagemaker:InvokeEndpoint" in finding.detail


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (
            user("bob", inline={"p": doc(allow("iam:AttachUserPolicy", principal_arn()))}),
            "iam:AttachUserPolicy on user/bob",
        ),
        (
            user(
                "bob",
                inline={
                    "p": doc(
                        allow("iam:PutUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}")
                    )
                },
            ),
            "iam:PutUserPolicy on user/bob",
        ),
        (
            role("fn", inline={"p": doc(allow("iam:PutRolePolicy"))}),
            "iam:PutRolePolicy on role/fn",
        ),
        (
            user("bob", groups=("devs",), inline={"p": doc(allow("iam:AttachGroupPolicy"))}),
            "iam:AttachGroupPolicy on group/devs",
        ),
        (
            user("bob", attached=(f"arn:aws:iam::{ACCOUNT}:policy/Mine",)),
            "iam:CreatePolicyVersion on policy/Mine",
        ),
    ],
)
def test_changing_own_permissions(principal: PrincipalInfo, expected: str) -> None:
    mine = customer("Mine", doc(allow("iam:CreatePolicyVersion")))
    [finding] = only(run(principal, group("devs"), policies=[mine]), "privilege-escalation")
    assert finding.severity == "high"
    assert finding.principal == principal.arn
    assert expected in finding.detail
    assert "can change its own permissions" in finding.title


def test_permissions_actions_on_someone_else_are_not_self_escalation() -> None:
    bob = user("bob", inline={"p": doc(allow("iam:AttachUserPolicy", principal_arn("carol")))})
    assert not only(run(bob), "privilege-escalation")


def test_builtin_attached_policies_cannot_be_versioned() -> None:
    bob = user("bob", attached=(READ_ONLY,), inline={"p": doc(allow("iam:CreatePolicyVersion"))})
    assert not only(run(bob), "privilege-escalation")


def test_administrators_have_nothing_to_escalate_to() -> None:
    findings = run(user("admin", attached=(ADMIN,)), trainer_role())
    assert not only(findings, "privilege-escalation")


# -- unparseable documents, ordering, helpers ------------------------------------------------------


def test_unparseable_documents_are_reported_and_skipped() -> None:
    bad = customer("Broken", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]})
    bob = user(
        "bob",
        attached=(bad.arn,),
        inline={"typo": {"Version": "2012-10-17", "Statement": "nope"}},
        mfa_enabled=True,
    )
    broken_trust = role("r", trust_policy={"Statement": []})
    findings = run(bob, broken_trust, policies=[bad])
    unparseable = only(findings, "unparseable-policy")
    assert {f.principal for f in unparseable} == {bad.arn, bob.arn, broken_trust.arn}
    assert all(f.severity == "low" for f in unparseable)
    assert any("Policy statement must contain actions." in f.detail for f in unparseable)
    assert effective_policies(snapshot(bob, policies=[bad]), bob) == []


def test_findings_are_sorted_by_severity_then_principal() -> None:
    findings = run(
        user("zed", keys=(key(OLD, None),), attached=(ADMIN,)),
        user("amy", last_used_at=None, mfa_enabled=True),
        role("open", trust_policy=trusted_by("*")),
        role("fn", attached=(SAGEMAKER_FULL,)),
    )
    ranks = {"high": 0, "medium": 1, "low": 2}
    keys = [(ranks[f.severity], f.principal) for f in findings]
    assert keys == sorted(keys)
    assert findings[0].severity == "high" and findings[-1].severity == "low"
    assert len(findings) == len(set(findings))


def test_finding_to_dict() -> None:
    [finding] = only(run(role("old-fn", was_used_by_deleted=True)), "orphaned-role")
    data = finding.to_dict()
    assert set(data) == {"id", "severity", "principal", "title", "detail", "fix"}
    assert data["id"] == "orphaned-role"


def test_effective_policies_and_boundary() -> None:
    mine = customer("Mine", doc(allow("sagemaker:ListModels")))
    bound = customer("Bound", doc(allow("sagemaker:*")))
    devs = group("devs", attached=(READ_ONLY,), inline={"g": doc(allow("kennel:ListDatasets"))})
    bob = user(
        "bob",
        attached=(mine.arn,),
        inline={"own": doc(allow("sagemaker:ListEndpoints"))},
        groups=("devs", "missing"),
        boundary=bound.arn,
    )
    snap = snapshot(bob, devs, policies=[mine, bound])
    names = [p.name for p in effective_policies(snap, bob)]
    assert names == ["Mine", "ReadOnlyAccess", "own", "g"]
    boundary = boundary_policy(snap, bob)
    assert boundary is not None and boundary.name == "Bound"
    assert boundary_policy(snap, devs) is None


def test_naive_datetimes_are_treated_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    bob = user(
        "bob",
        created_at=OLD.replace(tzinfo=None),
        last_used_at=None,
        keys=(key(OLD.replace(tzinfo=None), None),),
    )
    findings = audit(snapshot(bob), naive)
    assert only(findings, "old-access-key") and only(findings, "unused-principal")


def test_catalog_is_what_the_rules_expand() -> None:
    # The wildcard-resource rule needs at least one action with and one without a resource type.
    assert any(a.resource == "*" for a in ACTIONS.values())
    assert any(a.resource != "*" for a in ACTIONS.values())
