"""AddPermission's statements, written exactly as Lambda writes them.

The authorizer reads a function's resource policy (``IamService.resource_policy``) for
every ``lambda:`` action on it, so a statement made here is what lets another principal,
a service or anyone (``*``, for a function URL with AuthType NONE) invoke the function.
"""

from __future__ import annotations

import re
from typing import Any

from kennel.functions._errors import InvalidParameterValueError
from kennel.functions._spec import PermissionSpec

_ACCOUNT = re.compile(r"^\d{12}$")
_IAM_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:.+$")


def principal_element(principal: str) -> Any:
    """The ``Principal`` element for AddPermission's Principal parameter."""
    if principal == "*":
        return "*"
    if principal.endswith(".amazonaws.com"):
        return {"Service": principal}
    if _ACCOUNT.match(principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if _IAM_ARN.match(principal):
        return {"AWS": principal}
    raise InvalidParameterValueError(
        "The provided principal was invalid. Please check the principal and try again."
    )


def build_statement(resource_arn: str, spec: PermissionSpec) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": spec.statement_id,
        "Effect": "Allow",
        "Principal": principal_element(spec.principal),
        "Action": spec.action,
        "Resource": resource_arn,
    }
    equals: dict[str, str] = {}
    if spec.function_url_auth_type:
        equals["lambda:FunctionUrlAuthType"] = spec.function_url_auth_type
    if spec.principal_org_id:
        equals["aws:PrincipalOrgID"] = spec.principal_org_id
    if spec.source_account:
        equals["AWS:SourceAccount"] = spec.source_account
    if spec.event_source_token:
        equals["lambda:EventSourceToken"] = spec.event_source_token
    condition: dict[str, Any] = {}
    if equals:
        condition["StringEquals"] = equals
    if spec.source_arn:
        condition["ArnLike"] = {"AWS:SourceArn": spec.source_arn}
    if condition:
        statement["Condition"] = condition
    return statement


def empty_policy() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Id": "default", "Statement": []}
