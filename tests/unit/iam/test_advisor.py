"""generate-policy and unused permissions: least privilege from the access log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kennel.iam._actions import ACTIONS
from kennel.iam._advisor import (
    AccessRecord,
    Unused,
    generate_policy,
    representative_resources,
    unused_permissions,
)
from kennel.iam._policy import AuthzRequest, Policy, evaluate, parse_policy

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/classify-fn"
T0 = datetime(2025, 6, 1, tzinfo=UTC)


def endpoint(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}"


def record(
    action: str, resource: str = "*", *, allowed: bool = True, principal: str = ROLE, n: int = 0
) -> AccessRecord:
    return AccessRecord(T0 + timedelta(seconds=n), principal, action, resource, allowed)


def allows(policy: dict[str, Any] | Policy, action: str, resource: str) -> bool:
    parsed = policy if isinstance(policy, Policy) else parse_policy(policy, name="generated")
    return evaluate(AuthzRequest(ROLE, action, resource), [parsed]).allowed


def function_role_records() -> list[AccessRecord]:
    invokes = [record("sagemaker:InvokeEndpoint", endpoint("classifier"), n=i) for i in range(5)]
    return [*invokes, record("sagemaker:ListEndpoints", "*", n=9)]


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# -- generate_policy -------------------------------------------------------------------------------


def test_function_role_gets_invoke_on_its_endpoint_and_list() -> None:
    assert generate_policy(function_role_records()) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SagemakerInvokeEndpoint1",
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": endpoint("classifier"),
            },
            {
                "Sid": "SagemakerListEndpoints2",
                "Effect": "Allow",
                "Action": "sagemaker:ListEndpoints",
                "Resource": "*",
            },
        ],
    }


def test_generated_policy_round_trips_through_parse_and_evaluate() -> None:
    policy = parse_policy(generate_policy(function_role_records()), name="generated")
    assert allows(policy, "sagemaker:InvokeEndpoint", endpoint("classifier"))
    assert allows(policy, "sagemaker:ListEndpoints", "*")
    assert not allows(policy, "sagemaker:InvokeEndpoint", endpoint("other"))
    assert not allows(policy, "sagemaker:DeleteEndpoint", endpoint("classifier"))
    assert not allows(policy, "sagemaker:ListModels", "*")


def test_actions_with_the_same_resources_share_a_statement() -> None:
    records = [
        record("sagemaker:DescribeEndpoint", endpoint("b")),
        record("sagemaker:InvokeEndpoint", endpoint("a")),
        record("sagemaker:DescribeEndpoint", endpoint("a")),
        record("sagemaker:InvokeEndpoint", endpoint("b")),
        record("sagemaker:ListModels"),
        record("sagemaker:ListEndpoints"),
        record("kennel:ListDatasets"),
    ]
    statements = generate_policy(records)["Statement"]
    assert [s["Action"] for s in statements] == [
        "kennel:ListDatasets",
        ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
        ["sagemaker:ListEndpoints", "sagemaker:ListModels"],
    ]
    assert statements[1]["Resource"] == [endpoint("a"), endpoint("b")]
    assert [s["Sid"] for s in statements] == ["KennelListDatasets1", "Sagemaker2", "Sagemaker3"]


def test_untyped_actions_get_star_even_if_a_resource_was_logged() -> None:
    statements = generate_policy([record("sagemaker:ListEndpoints", endpoint("x"))])["Statement"]
    assert statements[0]["Resource"] == "*"


def test_star_covers_concrete_resources_of_the_same_action() -> None:
    # An action outside the catalog logged once on "*" and once on an ARN.
    records = [
        record("lambda:CreateFunction", "*"),
        record("lambda:CreateFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"),
    ]
    [statement] = generate_policy(records)["Statement"]
    assert statement["Resource"] == "*"
    assert statement["Sid"] == "LambdaCreateFunction1"


def test_action_case_follows_the_catalog() -> None:
    [statement] = generate_policy([record("SageMaker:invokeendpoint", endpoint("e"))])["Statement"]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"


def test_denied_calls_only_with_include_denied() -> None:
    records = [
        *function_role_records(),
        record("sagemaker:DeleteEndpoint", endpoint("x"), allowed=False),
    ]
    actions = [s["Action"] for s in generate_policy(records)["Statement"]]
    assert "sagemaker:DeleteEndpoint" not in actions
    with_denied = generate_policy(records, include_denied=True)
    assert allows(with_denied, "sagemaker:DeleteEndpoint", endpoint("x"))


def test_no_records_is_an_error_naming_the_window() -> None:
    with pytest.raises(ValueError, match="no calls were recorded for this principal in the window"):
        generate_policy([])


def test_only_denied_records_is_an_error_that_says_so() -> None:
    denied = [record("sagemaker:DeleteEndpoint", endpoint("x"), allowed=False)]
    with pytest.raises(ValueError, match=f"no allowed calls were recorded for {ROLE}.*1 denied"):
        generate_policy(denied)


def test_wildcard_characters_in_a_logged_resource_are_literal() -> None:
    odd = f"arn:aws:kennel:{REGION}:{ACCOUNT}:dataset/a*b?c$d"
    policy = generate_policy([record("kennel:DescribeDataset", odd)])
    assert allows(policy, "kennel:DescribeDataset", odd)
    assert not allows(policy, "kennel:DescribeDataset", odd.replace("a*b", "aXXb"))


_NAMES = st.sampled_from(["a", "b", "classifier", "resnet-50"])
_CATALOG = st.sampled_from(sorted(ACTIONS))


@st.composite
def access_records(draw: st.DrawFn) -> AccessRecord:
    name = draw(_CATALOG)
    resource = ACTIONS[name].arn(REGION, ACCOUNT, draw(_NAMES))
    return record(name, resource, allowed=True, n=draw(st.integers(0, 1000)))


@settings(max_examples=60, deadline=None)
@given(st.lists(access_records(), min_size=1, max_size=12), st.randoms())
def test_generated_policy_allows_exactly_the_records(
    records: list[AccessRecord], random: Any
) -> None:
    generated = generate_policy(records)
    policy = parse_policy(generated, name="generated")
    for r in records:
        assert allows(policy, r.action, r.resource), r
    for name in set(ACTIONS) - {r.action for r in records}:
        assert not allows(policy, name, ACTIONS[name].arn(REGION, ACCOUNT, "zzz")), name
    shuffled = list(records)
    random.shuffle(shuffled)
    assert generate_policy(shuffled) == generated
    sids = [s["Sid"] for s in generated["Statement"]]
    assert len(sids) == len(set(sids))
    assert all(re.fullmatch(r"[0-9A-Za-z]+", sid) for sid in sids)


# -- unused_permissions ----------------------------------------------------------------------------


def identity(name: str, *statements: dict[str, Any]) -> Policy:
    return parse_policy(doc(*statements), name=name)


def unused(policies: list[Policy], records: list[AccessRecord]) -> list[Unused]:
    return unused_permissions(policies, records, region=REGION, account=ACCOUNT)


def test_full_access_used_for_invoke_and_list() -> None:
    full = identity(
        "AmazonSageMakerFullAccess", {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}
    )
    [finding] = unused([full], function_role_records())
    assert finding.policy == "AmazonSageMakerFullAccess"
    assert finding.sid is None and finding.statement_index == 0
    assert finding.used == ("sagemaker:InvokeEndpoint", "sagemaker:ListEndpoints")
    every = sorted(a for a in ACTIONS if a.startswith("sagemaker:"))
    assert list(finding.actions) == [a for a in every if a not in finding.used]


def test_a_fully_used_least_privilege_policy_has_nothing_unused() -> None:
    generated = parse_policy(generate_policy(function_role_records()), name="least")
    assert unused([generated], function_role_records()) == []


def test_not_action_is_expanded_through_the_catalog() -> None:
    broad = identity(
        "AllButIam", {"Sid": "Most", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    )
    [finding] = unused([broad], function_role_records())
    assert finding.sid == "Most"
    assert not any(a.startswith("iam:") for a in finding.actions)
    assert "kennel:ListDatasets" in finding.actions
    assert "sts:GetCallerIdentity" in finding.actions


def test_use_counts_only_through_the_statement_that_covers_the_resource() -> None:
    policy = identity(
        "TwoEndpoints",
        {
            "Sid": "A",
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": endpoint("a"),
        },
        {
            "Sid": "B",
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": endpoint("b"),
        },
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "sagemaker:Delete*", "Resource": "*"},
    )
    records = [
        record("sagemaker:InvokeEndpoint", endpoint("b")),
        record("sagemaker:InvokeEndpoint", endpoint("a"), allowed=False),
    ]
    [finding] = unused([policy], records)
    assert (finding.sid, finding.actions, finding.used) == ("A", ("sagemaker:InvokeEndpoint",), ())


def test_partial_resource_patterns_count_as_grants() -> None:
    policy = identity(
        "Prod",
        {"Effect": "Allow", "Action": "sagemaker:*Endpoint", "Resource": endpoint("prod-*")},
    )
    [finding] = unused([policy], [record("sagemaker:InvokeEndpoint", endpoint("prod-1"))])
    assert finding.used == ("sagemaker:InvokeEndpoint",)
    assert set(finding.actions) == {
        "sagemaker:CreateEndpoint",
        "sagemaker:DeleteEndpoint",
        "sagemaker:DescribeEndpoint",
        "sagemaker:UpdateEndpoint",
    }


def test_conditional_grants_count_and_variables_resolve_for_users() -> None:
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice"
    policy = identity(
        "Self",
        {
            "Effect": "Allow",
            "Action": ["iam:GetUser", "iam:ListAccessKeys"],
            "Resource": f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        },
    )
    [finding] = unused([policy], [record("iam:GetUser", alice, principal=alice)])
    assert finding.used == ("iam:GetUser",)
    assert finding.actions == ("iam:ListAccessKeys",)


def test_unused_to_dict() -> None:
    item = Unused("p", "S", 0, ("a:B",), ("a:C",))
    assert item.to_dict() == {
        "policy": "p",
        "sid": "S",
        "statement_index": 0,
        "actions": ["a:B"],
        "used": ["a:C"],
    }


def test_representative_resources() -> None:
    invoke = representative_resources(
        "sagemaker:InvokeEndpoint",
        ["*", endpoint("prod-*"), f"arn:aws:iam::{ACCOUNT}:role/x"],
        region=REGION,
        account=ACCOUNT,
    )
    assert invoke == (endpoint("*"), endpoint("prod-*"))
    assert representative_resources(
        "sagemaker:ListEndpoints", [endpoint("a")], region=REGION, account=ACCOUNT
    ) == ("*",)
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"
    # An action outside the catalog: "*" and the patterns of its service.
    assert representative_resources(
        "lambda:CreateEventSourceMapping", [function, endpoint("a")], region=REGION, account=ACCOUNT
    ) == ("*", function)
    assert representative_resources(
        "lambda:CreateFunction", [function, endpoint("a")], region=REGION, account=ACCOUNT
    ) == (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*", function)
