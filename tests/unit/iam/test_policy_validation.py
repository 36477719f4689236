"""Policy validation: moto's corpus of AWS-checked documents, plus kind-specific rules.

Every ``valid`` document must parse and every invalid one must raise
:class:`MalformedPolicyDocumentError`; the message is compared with ``expected_error`` (AWS's
wording as recorded by moto) as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kennel.iam._policy import MalformedPolicyDocumentError, parse_policy

CORPUS = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "conformance"
    / "iam-policy-validation"
    / "moto_policy_validation.json"
)


def _cases() -> list[Any]:
    if not CORPUS.is_file():
        return []
    cases = json.loads(CORPUS.read_text())
    return [pytest.param(case, id=f"case{i}") for i, case in enumerate(cases)]


CASES = _cases()


@pytest.mark.parametrize("case", CASES or [pytest.param(None, id="absent")])
def test_corpus(case: dict[str, Any] | None) -> None:
    if case is None:
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    document = case["document"]
    if case["valid"]:
        policy = parse_policy(document)
        assert policy.statements
    else:
        with pytest.raises(MalformedPolicyDocumentError) as raised:
            parse_policy(document)
        assert raised.value.message == case["expected_error"]
        assert raised.value.status == 400
        assert raised.value.aws_code == "MalformedPolicyDocument"


def test_corpus_has_all_documents() -> None:
    if not CASES:
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    assert len(CASES) == 132


def _doc(statement: dict[str, Any], version: str = "2012-10-17") -> dict[str, Any]:
    return {"Version": version, "Statement": statement}


ALLOW = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


def test_json_text_is_accepted() -> None:
    policy = parse_policy(json.dumps(_doc(ALLOW)), name="p")
    assert policy.name == "p"
    assert policy.statements[0].actions == ("s3:GetObject",)


@pytest.mark.parametrize("text", ["[]", "null", "{", '"x"'])
def test_non_objects_are_syntax_errors(text: str) -> None:
    with pytest.raises(MalformedPolicyDocumentError, match="Syntax errors in policy."):
        parse_policy(text)


def test_identity_policy_refuses_principal() -> None:
    with pytest.raises(MalformedPolicyDocumentError, match="should not specify a principal"):
        parse_policy(_doc({**ALLOW, "Principal": "*"}))


def test_resource_policy_needs_principal() -> None:
    with pytest.raises(MalformedPolicyDocumentError, match="Principal"):
        parse_policy(_doc(ALLOW), kind="resource")
    policy = parse_policy(_doc({**ALLOW, "Principal": {"AWS": "123456789012"}}), kind="resource")
    assert policy.statements[0].principals == {"AWS": ("123456789012",)}


def test_trust_policy_refuses_resource() -> None:
    trust = {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert parse_policy(_doc(trust), kind="trust").kind == "trust"
    with pytest.raises(MalformedPolicyDocumentError, match="Has prohibited field Resource"):
        parse_policy(_doc({**trust, "Resource": "*"}), kind="trust")


@pytest.mark.parametrize("principal", [{"Bogus": "x"}, {}, {"AWS": []}, {"AWS": {}}, "me"])
def test_bad_principals_are_syntax_errors(principal: Any) -> None:
    with pytest.raises(MalformedPolicyDocumentError, match="Syntax errors"):
        parse_policy(_doc({**ALLOW, "Principal": principal}), kind="resource")


def test_version_2008_only_outside_identity_policies() -> None:
    statement = {**ALLOW, "Principal": "*"}
    assert parse_policy(_doc(statement, "2008-10-17"), kind="resource").version == "2008-10-17"
    with pytest.raises(MalformedPolicyDocumentError, match="version 2012-10-17"):
        parse_policy(_doc(ALLOW, "2008-10-17"))


def test_sid_must_be_alphanumeric_in_identity_policies() -> None:
    with pytest.raises(MalformedPolicyDocumentError, match="alpha-numeric"):
        parse_policy(_doc({**ALLOW, "Sid": "has space"}))
    assert parse_policy(_doc({**ALLOW, "Sid": "Ok123"})).statements[0].sid == "Ok123"


@pytest.mark.parametrize("operator", ["StringEqualz", "ForSomeValues:StringLike", "NullIfExists"])
def test_unknown_condition_operators(operator: str) -> None:
    with pytest.raises(MalformedPolicyDocumentError, match="Syntax errors"):
        parse_policy(_doc({**ALLOW, "Condition": {operator: {"aws:username": "a"}}}))


def test_condition_values_are_normalised_to_strings() -> None:
    condition = {"Bool": {"aws:SecureTransport": True}, "NumericLessThan": {"s3:max-keys": 10}}
    policy = parse_policy(_doc({**ALLOW, "Condition": condition}))
    values = {c.key: c.values for c in policy.statements[0].conditions}
    assert values == {"aws:SecureTransport": ("true",), "s3:max-keys": ("10",)}
