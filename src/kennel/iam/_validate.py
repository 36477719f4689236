"""Access Analyzer's ValidatePolicy for kennel: IAM's own verdict on a policy document
plus findings that say where (``Statement[0].Action[1]``) and what to fix, saving nothing.
The console's policy editor shows them before a version is saved."""

from __future__ import annotations

import difflib
import json
from typing import Any

from kennel.iam._actions import ACTIONS
from kennel.iam._conditions import wildcard_match
from kennel.iam._policy import STATEMENT_KEYS, MalformedPolicyDocumentError, parse_policy

Finding = dict[str, str]
_CATALOG_SERVICES = frozenset(name.partition(":")[0] for name in ACTIONS)
_LOWER_ACTIONS = {name.lower(): name for name in ACTIONS}


def _finding(severity: str, message: str, path: str = "") -> Finding:
    return {"severity": severity, "message": message, "path": path}


def _json_findings(document: str) -> tuple[Any, list[Finding]]:
    """The decoded document, or a finding that points at the line and column."""
    try:
        return json.loads(document), []
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        return None, [_finding("error", f"Not valid JSON: {error.msg} at {where}.", where)]
    except RecursionError:
        return None, [_finding("error", "The document is nested too deeply.")]


def _action_finding(action: Any, path: str, kind: str) -> Finding | None:
    """An action kennel can never authorize: a typo, or a service kennel does not have."""
    if not isinstance(action, str):
        return _finding("error", 'An action must be a string like "sagemaker:ListEndpoints".', path)
    service = action.partition(":")[0].lower()
    if action == "*" or service not in _CATALOG_SERVICES:
        if action != "*" and ":" in action:
            return _finding(
                "warning",
                f"kennel has no {service!r} service: {action} grants nothing here.",
                path,
            )
        return None
    if any(c in action for c in "*?"):
        if any(wildcard_match(action.lower(), name.lower()) for name in ACTIONS):
            return None
        return _finding("warning", f"{action} matches no action in kennel's catalog.", path)
    if action.lower() in _LOWER_ACTIONS:
        return None
    close = difflib.get_close_matches(action, list(ACTIONS), n=1, cutoff=0.75)
    fix = (
        f" Did you mean {close[0]}?"
        if close
        else " Check the spelling: kennel knows no such action."
    )
    # A trust policy may name STS actions kennel does not serve (sts:TagSession).
    severity = "warning" if kind == "trust" else "error"
    return _finding(severity, f"Unknown action {action}.{fix}", path)


def _statement_findings(statement: Any, path: str, kind: str) -> list[Finding]:
    if not isinstance(statement, dict):
        return [_finding("error", "A statement must be a JSON object.", path)]
    found = [
        _finding(
            "error",
            f"Unknown key {key!r}: use one of {', '.join(STATEMENT_KEYS)}.",
            f"{path}.{key}",
        )
        for key in statement
        if key not in STATEMENT_KEYS
    ]
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        found.append(
            _finding(
                "error",
                f'Effect must be "Allow" or "Deny", not {json.dumps(effect)}.',
                f"{path}.Effect",
            )
        )
    if "Action" not in statement and "NotAction" not in statement:
        found.append(
            _finding("error", "Add an Action (or NotAction): the actions it covers.", path)
        )
    for key in ("Action", "NotAction"):
        items = statement.get(key, [])
        for i, action in enumerate(items if isinstance(items, list) else [items]):
            finding = _action_finding(action, f"{path}.{key}[{i}]", kind)
            if finding:
                found.append(finding)
    has_resource = "Resource" in statement or "NotResource" in statement
    if kind == "identity" and not has_resource:
        found.append(_finding("error", 'Add a Resource: the ARNs it covers, or "*".', path))
    if kind == "trust" and has_resource:
        found.append(_finding("error", "A trust policy takes no Resource: remove it.", path))
    if kind != "identity" and "Principal" not in statement and "NotPrincipal" not in statement:
        found.append(_finding("error", "Add a Principal: who the statement is about.", path))
    if kind == "identity" and ("Principal" in statement or "NotPrincipal" in statement):
        found.append(_finding("error", "An identity policy takes no Principal: remove it.", path))
    if (
        effect == "Allow"
        and statement.get("Action") in ("*", ["*"])
        and statement.get("Resource") in ("*", ["*"])
    ):
        found.append(
            _finding("warning", "Allows every action on every resource: full admin.", path)
        )
    return found


def _document_findings(document: Any, kind: str) -> list[Finding]:
    if not isinstance(document, dict):
        return [_finding("error", "A policy must be a JSON object.")]
    found = []
    versions = ("2012-10-17",) if kind == "identity" else ("2012-10-17", "2008-10-17")
    if document.get("Version") not in versions:
        found.append(_finding("error", 'Set "Version": "2012-10-17".', "Version"))
    raw = document.get("Statement")
    if raw is None or raw == []:
        return [*found, _finding("error", "Add a Statement: a list of statements.", "Statement")]
    statements = raw if isinstance(raw, list) else [raw]
    for i, statement in enumerate(statements):
        path = f"Statement[{i}]" if isinstance(raw, list) else "Statement"
        found += _statement_findings(statement, path, kind)
    return found


def validate_document(document: str, kind: str) -> list[Finding]:
    """Findings for a policy document; AWS's own refusal (``parse_policy``) comes first."""
    decoded, found = _json_findings(document)
    if found:
        return found
    try:
        parse_policy(decoded, kind=kind)  # type: ignore[arg-type]
    except MalformedPolicyDocumentError as error:
        found.append(_finding("error", f"IAM refuses it: {error.message}"))
    return found + _document_findings(decoded, kind)
