"""IAM policy documents on hostile input: parsed, or refused as MalformedPolicyDocument.

Seeds are the conformance corpus (``shared/conformance/iam-policy-validation``, 54 valid
and 78 invalid documents), mutated as text (bytes flipped, cut, repeated) and as JSON (a
member swapped for an arbitrary value, or for one of the values that stress the parser and
the evaluator: many-star wildcards, odd condition operators and dates). Every document
that parses is then evaluated against requests, which must be decided quickly: a wildcard
like ``*a*a*a*a*a*a*a*a*b`` once took minutes against a long resource name.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, get_args

from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz._fuzz import (
    containers,
    fuzz_settings,
    json_texts,
    json_values,
    mutated_text,
    outcome,
    policy_corpus,
    quick,
)

from kennel.iam._conditions import (
    CONDITION_OPERATORS,
    compile_pattern,
    condition_matches,
    wildcard_match,
)
from kennel.iam._policy import (
    AuthzRequest,
    Decision,
    MalformedPolicyDocumentError,
    Policy,
    PolicyKind,
    evaluate,
    parse_policy,
)

CORPUS = [document for document in policy_corpus() if isinstance(document, dict)] or [
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
]
KINDS: tuple[PolicyKind, ...] = get_args(PolicyKind)
PRINCIPAL = "arn:aws:iam::123456789012:user/alice"
STARS = "*a" * 12 + "*b"

operators = st.sampled_from(sorted(CONDITION_OPERATORS)).flatmap(
    lambda op: st.sampled_from([op, f"{op}IfExists", f"ForAnyValue:{op}", f"ForAllValues:{op}"])
)
hostile_members = st.one_of(
    json_values,
    st.sampled_from(
        [
            STARS,
            "arn:aws:s3:::" + STARS,
            "arn:*:*:*:*:" + STARS,
            "arn:aws:iam::" + "*:" * 8,
            "${aws:username}" * 50,
            "${" * 100,
            "?" * 300,
            "*",
            ["*", None, 1],
            {"AWS": []},
            {"AWS": STARS},
            "99999-01-01T00:00:00Z",
            "-292275055",
            "9223372036854775808",
            "1e999",
            "::/0",
            "1.2.3.4/99",
            "2012-10-17",
            "2008-10-17",
        ]
    ),
    operators.flatmap(
        lambda op: st.fixed_dictionaries(
            {op: st.dictionaries(st.text(max_size=20), json_values, max_size=3)}
        )
    ),
)


@st.composite
def reshaped(draw: st.DrawFn) -> Any:
    """A corpus document with a few members replaced by hostile values."""
    document = copy.deepcopy(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 3))):
        found = containers(document)
        if not found:
            break
        target = draw(st.sampled_from(found))
        # A copy: sampled_from gives the same object every time, and a later round may
        # write into it (a shared {"AWS": []} once became a cycle, in later tests too).
        value = copy.deepcopy(draw(hostile_members))
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target)) | st.text(max_size=12))
            target[key] = value
        else:
            target[draw(st.integers(0, len(target) - 1))] = value
    return document


documents = st.one_of(
    reshaped(),
    reshaped().map(json.dumps),
    mutated_text([json.dumps(d) for d in CORPUS]),
    json_texts,
    json_values,
)
resources = st.sampled_from(
    [
        "a" * 300,
        "arn:aws:s3:::" + "a" * 300,
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/" + "a" * 200,
        "arn:aws:iam::123456789012:user/alice",
        "*",
        "",
    ]
) | st.text(max_size=60)
actions = st.sampled_from(
    ["sagemaker:InvokeEndpoint", "iam:CreateUser", "s3:GetObject", "a" * 200]
) | st.text(max_size=30)
contexts = st.dictionaries(
    st.sampled_from(["aws:username", "aws:SourceIp", "aws:CurrentTime", "s3:prefix", "x"])
    | st.text(max_size=10),
    st.text(max_size=40) | st.lists(st.text(max_size=20), max_size=3) | st.just("a" * 300),
    max_size=4,
)


def parsed(document: Any, kind: PolicyKind) -> Policy | MalformedPolicyDocumentError:
    with quick("parse_policy"):
        result = outcome(
            lambda: parse_policy(document, kind=kind, name="fuzz"), MalformedPolicyDocumentError
        )
    if isinstance(result, MalformedPolicyDocumentError):
        assert result.status == 400 and result.message
    return result


@given(document=documents, kind=st.sampled_from(KINDS))
@fuzz_settings(max_examples=500)
def test_documents_parse_or_are_malformed(document: Any, kind: PolicyKind) -> None:
    parsed(document, kind)


@given(
    document=reshaped(),
    kind=st.sampled_from(KINDS),
    action=actions,
    resource=resources,
    context=contexts,
)
@fuzz_settings(max_examples=300)
def test_what_parses_is_decided_quickly(
    document: Any, kind: PolicyKind, action: str, resource: str, context: dict[str, Any]
) -> None:
    policy = parsed(document, kind)
    if isinstance(policy, MalformedPolicyDocumentError):
        return
    request = AuthzRequest(PRINCIPAL, action, resource, context)
    with quick("evaluate"):
        if kind == "identity":
            decision = evaluate(request, [policy], boundary=policy)
        else:
            decision = evaluate(request, [], resource_policy=policy)
    assert isinstance(decision, Decision)


# --- the wildcard matcher ---------------------------------------------------------------------


def naive(pattern: str, arn: bool) -> re.Pattern[str]:
    """The textbook translation (``*`` -> ``.*``): right, but exponential on many stars."""
    body, colons = [], 0
    for char in pattern:
        colons += char == ":"
        if char not in "*?":
            body.append(re.escape(char))
        elif arn and colons < 5:
            body.append("[^:]*" if char == "*" else "[^:]")
        else:
            body.append(".*" if char == "*" else ".")
    return re.compile("".join(body), re.DOTALL)


small_patterns = st.text(alphabet="ab:*?", max_size=10)
small_values = st.text(alphabet="ab:", max_size=12)


@given(pattern=small_patterns, value=small_values)
@fuzz_settings(max_examples=500)
def test_wildcards_match_like_the_textbook_translation(pattern: str, value: str) -> None:
    expected = naive(pattern, arn=False).fullmatch(value) is not None
    assert wildcard_match(pattern, value) is expected
    plain = compile_pattern(pattern, None)
    assert plain is not None and (plain.fullmatch(value) is not None) is expected
    arn_expected = naive(pattern, arn=True).fullmatch(value) is not None
    compiled = compile_pattern(pattern, None, arn=True)
    assert compiled is not None and (compiled.fullmatch(value) is not None) is arn_expected


@given(
    stars=st.integers(5, 40),
    text=st.sampled_from(["a", "ab", "a:", ":a"]),
    length=st.integers(50, 2000),
    arn=st.booleans(),
)
@fuzz_settings(max_examples=60)
def test_many_star_wildcards_are_quick(stars: int, text: str, length: int, arn: bool) -> None:
    pattern = "arn:aws:s3:::" * arn + f"*{text}" * stars + "*b"
    value = "arn:aws:s3:::" * arn + "a" * length
    with quick(f"{pattern!r} against {length} characters", seconds=0.5):
        assert not wildcard_match(pattern, value)
        compiled = compile_pattern(pattern, None, arn=arn)
        assert compiled is not None and compiled.fullmatch(value) is None
        assert not condition_matches("StringLike", "k", [pattern], {"k": value})
        assert not condition_matches("ArnLike", "k", [pattern], {"k": value})
