"""Decisions taken from AWS's documented policy examples, replayed through :func:`evaluate`.

The corpus (``corpus/aws_doc_decisions.json``) transcribes example policies from the AWS IAM
User Guide (plus a few from the Lambda and SageMaker guides and one AWS Knowledge Center
article) together with the decision the documentation states, or that follows directly from
the documented evaluation rules. Each case names its source page. Placeholders are filled in
with account 123456789012 and region us-east-1; where a case adds a policy the page only
describes (e.g. "combine this Deny with a policy that allows..."), its ``notes`` say so.

Each case has this shape::

    {"id", "source", "identity_policies": [...], "resource_policy": {...} | null,
     "resource_policy_kind": "resource" | "trust" (optional, default "resource"),
     "boundary": {...} | null,
     "request": {"principal", "action", "resource", "context": {...}},
     "expect": "allowed" | "explicit-deny" | "implicit-deny",
     "notes": "..." (optional), "xfail": "why the engine disagrees" (optional)}

A case marked ``xfail`` is one where the engine disagrees with the documentation; it runs as
``xfail(strict=True)`` so that fixing the engine makes the mark fail and forces its removal.

Deliberately left out, because the engine only claims AWS's single-account logic:
cross-account requests (both accounts must allow), AWS Organizations SCPs/RCPs, session
policies, the root user's implicit full access, and KMS key policies (which, like trust
policies, must name the principal themselves). Same-account trust or resource policies that
name only the *account* as principal, without an identity policy, are also left out: the
pages transcribed here do not settle that case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kennel.iam._policy import AuthzRequest, Decision, evaluate, parse_policy

CORPUS = Path(__file__).parent / "corpus" / "aws_doc_decisions.json"
CASES: list[dict[str, Any]] = json.loads(CORPUS.read_text(encoding="utf-8"))

EXPECTATIONS = {"allowed", "explicit-deny", "implicit-deny"}
CASE_KEYS = {
    "id",
    "source",
    "identity_policies",
    "resource_policy",
    "resource_policy_kind",
    "boundary",
    "request",
    "expect",
    "notes",
    "xfail",
}
REQUIRED_KEYS = {"id", "source", "identity_policies", "resource_policy", "boundary", "request"}
SOURCE_PREFIXES = ("AWS ", "Amazon ")


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = []
        if "xfail" in case:
            marks.append(pytest.mark.xfail(reason=case["xfail"], strict=True))
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


def _decide(case: dict[str, Any]) -> Decision:
    identity = [
        parse_policy(document, kind="identity", name=f"identity[{index}]")
        for index, document in enumerate(case["identity_policies"])
    ]
    resource = None
    if case["resource_policy"] is not None:
        kind = case.get("resource_policy_kind", "resource")
        resource = parse_policy(case["resource_policy"], kind=kind, name=kind)
    boundary = None
    if case["boundary"] is not None:
        boundary = parse_policy(case["boundary"], kind="identity", name="boundary")
    request = case["request"]
    return evaluate(
        AuthzRequest(
            request["principal"], request["action"], request["resource"], request["context"]
        ),
        identity,
        resource_policy=resource,
        boundary=boundary,
    )


@pytest.mark.parametrize("case", _params())
def test_documented_decision(case: dict[str, Any]) -> None:
    decision = _decide(case)
    assert decision.reason == case["expect"], case.get("notes", case["source"])
    assert decision.allowed is (case["expect"] == "allowed")
    if decision.allowed:
        assert decision.statement is not None
    if decision.reason == "explicit-deny":
        assert decision.statement is not None


def test_corpus_is_large_enough_and_well_formed() -> None:
    assert len(CASES) >= 40
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert set(case) <= CASE_KEYS, case["id"]
        assert set(case) >= REQUIRED_KEYS | {"expect"}, case["id"]
        assert case["expect"] in EXPECTATIONS, case["id"]
        assert case.get("resource_policy_kind", "resource") in ("resource", "trust"), case["id"]
        assert set(case["request"]) == {"principal", "action", "resource", "context"}, case["id"]
        if "xfail" in case:
            assert case["xfail"].strip(), case["id"]


def test_every_case_names_its_source() -> None:
    for case in CASES:
        source = case["source"]
        assert isinstance(source, str) and source.startswith(SOURCE_PREFIXES), case["id"]
        assert ": " in source, f"{case['id']}: source should be '<guide>: <page title> (...)'"


def test_corpus_covers_every_outcome() -> None:
    outcomes = {case["expect"] for case in CASES}
    assert outcomes == EXPECTATIONS
    assert any(case["boundary"] is not None for case in CASES)
    assert any(case.get("resource_policy_kind") == "trust" for case in CASES)
    assert any(
        case["resource_policy"] is not None and not case["identity_policies"] for case in CASES
    )
