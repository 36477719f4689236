"""Policy evaluation: AWS's documented examples, condition operators, and properties.

The properties (hypothesis) pin down the decision logic: an applicable Deny always wins, an
Allow ``*``/``*`` allows everything, statement order and the case of the action never matter.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kennel.iam._conditions import condition_matches, wildcard_match
from kennel.iam._policy import AuthzRequest, Decision, Policy, evaluate, parse_policy

ACCOUNT = "123456789012"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ENDPOINT = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/e"


def policy(*statements: dict[str, Any], kind: Any = "identity", name: str = "p") -> Policy:
    return parse_policy(
        {"Version": "2012-10-17", "Statement": list(statements)}, kind=kind, name=name
    )


def request(
    action: str = "sagemaker:InvokeEndpoint",
    resource: str = ENDPOINT,
    principal: str = ALICE,
    **context: str | list[str],
) -> AuthzRequest:
    return AuthzRequest(principal, action, resource, context)


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# -- AWS's documented examples -----------------------------------------------------------------


def test_no_policy_is_implicit_deny_with_aws_message() -> None:
    decision = evaluate(request(), [])
    assert decision == Decision(False, "implicit-deny")
    assert decision.message(ALICE, "sagemaker:InvokeEndpoint", ENDPOINT) == (
        f"User: {ALICE} is not authorized to perform: sagemaker:InvokeEndpoint on resource: "
        f"{ENDPOINT} because no identity-based policy allows the sagemaker:InvokeEndpoint action"
    )


def test_explicit_deny_beats_allow() -> None:
    granted = policy(allow("sagemaker:*"), name="grant")
    blocked = policy({**deny("sagemaker:InvokeEndpoint"), "Sid": "NoInvoke"}, name="block")
    decision = evaluate(request(), [granted, blocked])
    assert not decision.allowed
    assert decision.reason == "explicit-deny"
    assert decision.statement is not None
    assert (decision.statement.policy, decision.statement.sid) == ("block", "NoInvoke")
    assert decision.message(ALICE, "sagemaker:InvokeEndpoint", ENDPOINT).endswith(
        "with an explicit deny in an identity-based policy"
    )


def test_allow_reports_the_deciding_statement() -> None:
    decision = evaluate(request(), [policy(deny("s3:*"), allow("sagemaker:Invoke*"))])
    assert decision.allowed and decision.reason == "allowed"
    assert decision.statement is not None
    assert (decision.statement.index, decision.statement.sid) == (1, None)
    assert decision.message(ALICE, "a", "b") == ""


def test_not_action_with_allow() -> None:
    everything_but_iam = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate(request(), [everything_but_iam]).allowed
    assert not evaluate(request("iam:CreateUser", "*"), [everything_but_iam]).allowed


def test_not_resource_with_deny() -> None:
    p = policy(
        allow("s3:*"),
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"],
        },
    )
    assert evaluate(request("s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x"), [p]).allowed
    other = evaluate(request("s3:GetObject", "arn:aws:s3:::Other/x"), [p])
    assert other.reason == "explicit-deny"


def test_source_ip_condition() -> None:
    p = policy(
        allow(),
        deny(Condition={"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}}),
    )
    assert evaluate(request(**{"aws:SourceIp": "192.0.2.7"}), [p]).allowed
    outside = evaluate(request(**{"aws:SourceIp": "198.51.100.1"}), [p])
    assert outside.reason == "explicit-deny"


def test_username_variable_in_resource() -> None:
    p = policy(allow("iam:ChangePassword", "arn:aws:iam::*:user/${aws:username}"))
    own = request("iam:ChangePassword", ALICE, **{"aws:username": "alice"})
    assert evaluate(own, [p]).allowed
    bob = f"arn:aws:iam::{ACCOUNT}:user/bob"
    other = request("iam:ChangePassword", bob, **{"aws:username": "alice"})
    assert not evaluate(other, [p]).allowed
    assert not evaluate(request("iam:ChangePassword", ALICE), [p]).allowed  # no username


def test_principal_arn_variable_and_escapes() -> None:
    p = policy(allow("s3:GetObject", "arn:aws:s3:::b/${aws:PrincipalArn}/${*}"))
    assert evaluate(request("s3:GetObject", f"arn:aws:s3:::b/{ALICE}/*"), [p]).allowed
    assert not evaluate(request("s3:GetObject", f"arn:aws:s3:::b/{ALICE}/x"), [p]).allowed


def test_variables_are_literal_in_version_2008() -> None:
    statement = {**allow("s3:*", "arn:aws:s3:::b/${x}"), "Principal": "*"}
    p = parse_policy({"Version": "2008-10-17", "Statement": [statement]}, kind="resource")
    assert evaluate(request("s3:GetObject", "arn:aws:s3:::b/${x}"), [], resource_policy=p).allowed


def test_if_exists() -> None:
    p = policy(allow(Condition={"StringEqualsIfExists": {"ec2:InstanceType": "t2.micro"}}))
    assert evaluate(request(), [p]).allowed
    assert evaluate(request(**{"ec2:InstanceType": "t2.micro"}), [p]).allowed
    assert not evaluate(request(**{"ec2:InstanceType": "m5.large"}), [p]).allowed
    strict = policy(allow(Condition={"StringEquals": {"ec2:InstanceType": "t2.micro"}}))
    assert not evaluate(request(), [strict]).allowed


def test_for_all_values_with_empty_key_is_true_for_any_value_false() -> None:
    all_values = policy(allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": "Dept"}}))
    any_value = policy(allow(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": "Dept"}}))
    assert evaluate(request(), [all_values]).allowed
    empty = AuthzRequest(ALICE, "s3:GetObject", "*", {"aws:TagKeys": []})
    assert evaluate(empty, [all_values]).allowed
    assert not evaluate(request(), [any_value]).allowed
    tagged = AuthzRequest(ALICE, "s3:GetObject", "*", {"aws:TagKeys": ["Dept", "Owner"]})
    assert not evaluate(tagged, [all_values]).allowed
    assert evaluate(tagged, [any_value]).allowed
    # An empty string is a null data set too (ForAllValues true, ForAnyValue false).
    blank = AuthzRequest(ALICE, "s3:GetObject", "*", {"aws:TagKeys": ""})
    assert evaluate(blank, [all_values]).allowed
    assert not evaluate(blank, [any_value]).allowed
    any_not = policy(allow(Condition={"ForAnyValue:StringNotEquals": {"aws:TagKeys": "Dept"}}))
    assert not evaluate(blank, [any_not]).allowed


def test_boundary_limits_an_allow() -> None:
    identity = policy(allow())
    boundary = policy(allow("s3:*"), name="boundary")
    assert evaluate(request("s3:GetObject", "*"), [identity], boundary=boundary).allowed
    decision = evaluate(request(), [identity], boundary=boundary)
    assert decision.reason == "implicit-deny" and decision.blocked_by_boundary
    assert decision.message(ALICE, "sagemaker:InvokeEndpoint", ENDPOINT).endswith(
        "because no permissions boundary allows the sagemaker:InvokeEndpoint action"
    )
    # A boundary alone grants nothing.
    assert not evaluate(request("s3:GetObject", "*"), [], boundary=boundary).allowed


def test_boundary_deny_is_explicit() -> None:
    boundary = policy(allow(), deny("sagemaker:*"))
    decision = evaluate(request(), [policy(allow())], boundary=boundary)
    assert decision.reason == "explicit-deny"
    assert decision.message("u", "a", "r").endswith("explicit deny in a permissions boundary")


def test_resource_policy_alone_allows() -> None:
    bucket = policy(
        {**allow("s3:GetObject", "arn:aws:s3:::b/*"), "Principal": {"AWS": ALICE}},
        kind="resource",
        name="bucket",
    )
    decision = evaluate(request("s3:GetObject", "arn:aws:s3:::b/k"), [], resource_policy=bucket)
    assert decision.allowed
    assert decision.statement is not None and decision.statement.source == "resource"
    bob = request("s3:GetObject", "arn:aws:s3:::b/k", f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert not evaluate(bob, [], resource_policy=bucket).allowed


def test_resource_policy_deny_is_explicit() -> None:
    bucket = policy({**deny(), "Principal": "*"}, kind="resource")
    decision = evaluate(request(), [policy(allow())], resource_policy=bucket)
    assert decision.reason == "explicit-deny"
    assert decision.message("u", "a", "r").endswith("in a resource-based policy")


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ("*", ALICE, True),
        ({"AWS": "*"}, ALICE, True),
        ({"AWS": ACCOUNT}, ALICE, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, ALICE, True),
        ({"AWS": "210987654321"}, ALICE, False),
        ({"AWS": [f"arn:aws:iam::{ACCOUNT}:user/bob", ALICE]}, ALICE, True),
        ({"Service": "lambda.amazonaws.com"}, "lambda.amazonaws.com", True),
        ({"Service": "lambda.amazonaws.com"}, ALICE, False),
        (
            {"AWS": f"arn:aws:iam::{ACCOUNT}:role/R"},
            f"arn:aws:sts::{ACCOUNT}:assumed-role/R/session",
            True,
        ),
    ],
)
def test_principal_matching(principal: Any, caller: str, expected: bool) -> None:
    trust = policy(
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}, kind="trust"
    )
    decision = evaluate(request("sts:AssumeRole", "*", caller), [], resource_policy=trust)
    assert decision.allowed is expected


def test_not_principal() -> None:
    bucket = policy(
        {**deny(), "NotPrincipal": {"AWS": ALICE}}, {**allow(), "Principal": "*"}, kind="resource"
    )
    assert evaluate(request(), [], resource_policy=bucket).allowed
    bob = request(principal=f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert evaluate(bob, [], resource_policy=bucket).reason == "explicit-deny"


ROOT = f"arn:aws:iam::{ACCOUNT}:root"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/R/s1"


@pytest.mark.parametrize("account", [ROOT, ACCOUNT])
def test_not_principal_account_spares_only_its_root_user(account: str) -> None:
    bucket = policy(
        {**deny(), "NotPrincipal": {"AWS": [account, f"arn:aws:iam::{ACCOUNT}:role/R"]}},
        kind="resource",
    )
    everything = [policy(allow())]
    assert evaluate(request(principal=ROOT), everything, resource_policy=bucket).allowed
    assert evaluate(request(principal=SESSION), everything, resource_policy=bucket).allowed
    alice = evaluate(request(), everything, resource_policy=bucket)
    assert alice.reason == "explicit-deny"


def test_not_principal_deny_always_applies_to_a_bounded_principal() -> None:
    bucket = policy({**deny("s3:*"), "NotPrincipal": {"AWS": [ALICE, ROOT]}}, kind="resource")
    everything = [policy(allow())]
    s3 = request("s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(s3, everything, resource_policy=bucket).allowed
    bounded = evaluate(s3, everything, resource_policy=bucket, boundary=policy(allow()))
    assert bounded.reason == "explicit-deny"
    assert bounded.statement is not None and bounded.statement.source == "resource"
    # The rest of the statement still has to match.
    assert evaluate(request(), everything, resource_policy=bucket, boundary=policy(allow())).allowed


@pytest.mark.parametrize(
    ("principal", "caller", "limited"),
    [
        ({"AWS": SESSION}, SESSION, False),
        ({"AWS": ALICE}, ALICE, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/R"}, SESSION, True),
        ({"AWS": ROOT}, ALICE, True),
        ({"AWS": ACCOUNT}, SESSION, True),
        ("*", ALICE, True),
    ],
)
def test_resource_policy_allow_and_permissions_boundary(
    principal: Any, caller: str, limited: bool
) -> None:
    bucket = policy({**allow("s3:GetObject"), "Principal": principal}, kind="resource")
    s3 = request("s3:GetObject", "arn:aws:s3:::b/k", caller)
    assert evaluate(s3, [], resource_policy=bucket).allowed
    narrow = evaluate(s3, [], resource_policy=bucket, boundary=policy(allow("cloudwatch:*")))
    assert narrow.allowed is not limited
    if limited:
        assert narrow.reason == "implicit-deny" and narrow.blocked_by_boundary
    wide = evaluate(s3, [], resource_policy=bucket, boundary=policy(allow("s3:*")))
    assert wide.allowed
    assert wide.statement is not None and wide.statement.source == "resource"


def test_direct_resource_grant_wins_over_an_earlier_indirect_one() -> None:
    bucket = policy(
        {**allow("s3:GetObject"), "Principal": {"AWS": ACCOUNT}},
        {**allow("s3:GetObject"), "Principal": {"AWS": ALICE}, "Sid": "Alice"},
        kind="resource",
    )
    s3 = request("s3:GetObject", "arn:aws:s3:::b/k")
    decision = evaluate(s3, [], resource_policy=bucket, boundary=policy(allow("cloudwatch:*")))
    assert decision.allowed
    assert decision.statement is not None and decision.statement.sid == "Alice"


# -- matching and condition operators ------------------------------------------------------------


def test_wildcards() -> None:
    assert wildcard_match("s3:Get*", "S3:GETOBJECT", ignore_case=True)
    assert not wildcard_match("s3:Get*", "S3:GETOBJECT")
    assert wildcard_match("ec2:Describe?nstances", "ec2:DescribeInstances")
    assert not wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::B/x")
    assert wildcard_match("a.b[c]", "a.b[c]") and not wildcard_match("a.b", "axb")


CTX: dict[str, str | list[str]] = {
    "aws:username": "alice",
    "aws:currenttime": "2024-06-01T12:00:00Z",
    "aws:epochtime": "1717243200",
    "aws:securetransport": "true",
    "aws:multifactorauthpresent": "false",
    "aws:sourceip": "10.1.2.3",
    "s3:max-keys": "10",
    "aws:principalarn": ALICE,
}


@pytest.mark.parametrize(
    ("operator", "key", "values", "expected"),
    [
        ("StringEquals", "aws:username", ["bob", "alice"], True),
        ("StringEquals", "aws:username", ["Alice"], False),
        ("StringNotEquals", "aws:username", ["bob"], True),
        ("StringNotEquals", "aws:username", ["bob", "alice"], False),
        ("StringEqualsIgnoreCase", "aws:username", ["ALICE"], True),
        ("StringNotEqualsIgnoreCase", "aws:username", ["ALICE"], False),
        ("StringLike", "aws:username", ["al*"], True),
        ("StringLike", "aws:username", ["a?ice"], True),
        ("StringNotLike", "aws:username", ["b*"], True),
        ("StringEquals", "aws:Username", ["${aws:username}"], True),
        ("StringEquals", "aws:missing", ["x"], False),
        ("StringNotEquals", "aws:missing", ["x"], True),
        ("StringNotEqualsIfExists", "aws:missing", ["x"], True),
        ("StringNotEqualsIgnoreCase", "aws:missing", ["x"], True),
        ("StringNotLike", "aws:missing", ["x*"], True),
        ("ArnNotEquals", "aws:missing", [ALICE], True),
        ("ArnNotLike", "aws:missing", ["arn:*"], True),
        ("NumericNotEquals", "aws:missing", ["1"], True),
        ("DateNotEquals", "aws:missing", ["2024-01-01"], True),
        ("NotIpAddress", "aws:missing", ["10.0.0.0/8"], True),
        ("NotIpAddressIfExists", "aws:missing", ["10.0.0.0/8"], True),
        ("ArnLike", "aws:missing", ["arn:*"], False),
        ("IpAddress", "aws:missing", ["10.0.0.0/8"], False),
        ("ForAllValues:StringNotEquals", "aws:missing", ["x"], True),
        ("ForAnyValue:StringNotEquals", "aws:missing", ["x"], False),
        ("ArnEquals", "aws:PrincipalArn", [ALICE], True),
        ("ArnLike", "aws:PrincipalArn", ["arn:aws:iam::*:user/*"], True),
        ("ArnNotLike", "aws:PrincipalArn", ["arn:aws:iam::*:role/*"], True),
        ("ArnNotEquals", "aws:PrincipalArn", [ALICE], False),
        ("ArnLike", "aws:PrincipalArn", ["arn:aws:*:user/alice"], False),
        ("ArnLike", "aws:PrincipalArn", ["arn:aws:iam:*:*:user/*"], True),
        ("ArnLike", "aws:PrincipalArn", ["arn:aws:iam::?23456789012:*"], True),
        ("ArnEquals", "aws:PrincipalArn", ["arn:*:*:*:*:*"], True),
        ("ArnEquals", "aws:PrincipalArn", ["*"], False),
        ("ArnNotLike", "aws:PrincipalArn", ["arn:aws:*:user/alice"], True),
        ("ArnLike", "aws:username", ["*"], False),
        ("ArnNotLike", "aws:username", ["*"], True),
        ("ArnLike", "aws:PrincipalArn", ["${aws:PrincipalArn}"], True),
        ("NumericEquals", "s3:max-keys", ["10"], True),
        ("NumericNotEquals", "s3:max-keys", ["10"], False),
        ("NumericLessThan", "s3:max-keys", ["11"], True),
        ("NumericLessThanEquals", "s3:max-keys", ["10"], True),
        ("NumericGreaterThan", "s3:max-keys", ["10"], False),
        ("NumericGreaterThanEquals", "s3:max-keys", ["10.0"], True),
        ("NumericEquals", "s3:max-keys", ["ten"], False),
        ("DateGreaterThan", "aws:CurrentTime", ["2024-01-01T00:00:00Z"], True),
        ("DateLessThan", "aws:CurrentTime", ["2024-01-01"], False),
        ("DateEquals", "aws:CurrentTime", ["1717243200"], True),
        ("DateNotEquals", "aws:CurrentTime", ["1717243200"], False),
        ("DateLessThanEquals", "aws:EpochTime", ["2024-06-01T12:00:00+00:00"], True),
        ("DateGreaterThanEquals", "aws:CurrentTime", ["2024-06-01T13:00:00+02:00"], True),
        ("Bool", "aws:SecureTransport", ["true"], True),
        ("Bool", "aws:MultiFactorAuthPresent", ["true"], False),
        ("BoolIfExists", "aws:MultiFactorAuthPresent", ["false"], True),
        ("IpAddress", "aws:SourceIp", ["10.0.0.0/8"], True),
        ("IpAddress", "aws:SourceIp", ["10.1.2.3"], True),
        ("NotIpAddress", "aws:SourceIp", ["10.0.0.0/8"], False),
        ("IpAddress", "aws:SourceIp", ["2001:db8::/32"], False),
        ("Null", "aws:missing", ["true"], True),
        ("Null", "aws:username", ["true"], False),
        ("Null", "aws:username", ["false"], True),
        ("ForAnyValue:StringLike", "aws:username", ["x", "a*"], True),
        ("ForAllValues:StringLike", "aws:missing", ["x"], True),
        ("ForAnyValue:StringLike", "aws:missing", ["x"], False),
        ("ForAnyValue:StringEqualsIfExists", "aws:missing", ["x"], True),
    ],
)
def test_condition_operators(operator: str, key: str, values: list[str], expected: bool) -> None:
    assert condition_matches(operator, key, values, CTX) is expected


def test_multiple_keys_and_operators_are_anded() -> None:
    both = {
        "StringEquals": {"aws:username": "alice", "aws:PrincipalArn": ALICE},
        "Bool": {"aws:SecureTransport": "true"},
    }
    p = policy(allow(Condition=both))
    ok = {"aws:username": "alice", "aws:SecureTransport": "true"}
    assert evaluate(request(**ok), [p]).allowed
    assert not evaluate(request(**{**ok, "aws:SecureTransport": "false"}), [p]).allowed
    assert not evaluate(request(**{**ok, "aws:username": "bob"}), [p]).allowed


def test_condition_keys_are_case_insensitive_and_bool_values_parse() -> None:
    p = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": allow(Condition={"Bool": {"AWS:SecureTransport": True}}),
        }
    )
    assert evaluate(request(**{"aws:securetransport": "true"}), [p]).allowed


# -- properties ---------------------------------------------------------------------------------

_word = st.text(alphabet="abcdefgXYZ", min_size=1, max_size=6)
_action = st.builds(lambda s, a: f"{s}:{a}", _word, _word)
_resource = st.builds(lambda s, r: f"arn:aws:{s}:::{r}", _word, _word)
_pattern = st.one_of(
    st.just("*"),
    _action,
    st.builds(lambda s: f"{s}:*", _word),
    st.builds(lambda s, a: f"{s}:{a}*", _word, _word),
)
_resource_pattern = st.one_of(
    st.just("*"), _resource, st.builds(lambda s: f"arn:aws:{s}:::*", _word)
)
_statement = st.builds(
    lambda effect, action, resource: {"Effect": effect, "Action": action, "Resource": resource},
    st.sampled_from(["Allow", "Deny"]),
    _pattern,
    _resource_pattern,
)
_requests = st.builds(lambda a, r: request(a, r), _action, _resource)
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(st.lists(_statement, min_size=1, max_size=5), _requests, _pattern, _resource_pattern)
def test_matching_deny_always_wins(
    statements: list[dict[str, Any]], req: AuthzRequest, action: str, resource: str
) -> None:
    before = evaluate(req, [policy(*statements)])
    after = evaluate(req, [policy(*statements, deny(req.action, req.resource))])
    assert not after.allowed
    assert after.reason == "explicit-deny"
    assert after.statement is not None
    # Adding any Deny (matching or not) never turns a denial into an allow.
    other = evaluate(req, [policy(*statements, deny(action, resource))])
    if not before.allowed:
        assert not other.allowed


@FAST
@given(_requests)
def test_allow_everything_allows_any_request(req: AuthzRequest) -> None:
    decision = evaluate(req, [policy(allow("*", "*"))])
    assert decision.allowed and decision.reason == "allowed"


@FAST
@given(st.lists(_statement, min_size=1, max_size=6), _requests, st.randoms())
def test_statement_order_never_changes_the_decision(
    statements: list[dict[str, Any]], req: AuthzRequest, rnd: Any
) -> None:
    shuffled = list(statements)
    rnd.shuffle(shuffled)
    first = evaluate(req, [policy(*statements)])
    second = evaluate(req, [policy(*shuffled)])
    assert (first.allowed, first.reason) == (second.allowed, second.reason)


@FAST
@given(
    st.lists(_statement, min_size=1, max_size=5), _requests, st.sampled_from(["up", "low", "sw"])
)
def test_action_case_never_changes_the_decision(
    statements: list[dict[str, Any]], req: AuthzRequest, how: str
) -> None:
    recased = {"up": req.action.upper(), "low": req.action.lower(), "sw": req.action.swapcase()}
    other = AuthzRequest(req.principal_arn, recased[how], req.resource, req.context)
    first = evaluate(req, [policy(*statements)])
    second = evaluate(other, [policy(*statements)])
    assert (first.allowed, first.reason) == (second.allowed, second.reason)


def test_arn_operators_match_segment_by_segment() -> None:
    source = "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
    ctx = {"aws:sourcearn": source}
    assert condition_matches("ArnLike", "aws:SourceArn", ["arn:aws:lambda:*:*:function:*"], ctx)
    # A resource-part wildcard may cross colons; the other parts' wildcards may not.
    assert condition_matches("ArnLike", "aws:SourceArn", ["arn:aws:lambda:*:*:*"], ctx)
    assert not condition_matches("ArnLike", "aws:SourceArn", ["arn:aws:*:function:fn:live"], ctx)
    assert condition_matches("StringLike", "aws:SourceArn", ["arn:aws:*:function:fn:live"], ctx)
    short = {"aws:sourcearn": "arn:aws:lambda:us-east-1:fn"}
    assert not condition_matches("ArnLike", "aws:SourceArn", ["arn:aws:lambda:*"], short)
