"""Lambda's response shapes (what boto3's ``lambda`` client parses), from the store's rows."""

from __future__ import annotations

import json
from typing import Any

from kennel.functions._code import sha256_base64
from kennel.functions._names import LATEST, aws_time, iso_time
from kennel.store import (
    LambdaAlias,
    LambdaEventConfig,
    LambdaFunction,
    LambdaProvisioned,
    LambdaUrl,
    LambdaVersion,
)

_LISTING_LEAVES_OUT = (
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
)


def configuration(
    row: LambdaFunction | LambdaVersion,
    *,
    function: LambdaFunction,
    arn: str,
    listing: bool = False,
) -> dict[str, Any]:
    """A FunctionConfiguration of $LATEST (``row`` is the function) or of a version."""
    if isinstance(row, LambdaFunction):
        version, modified = LATEST, row.last_modified
    else:
        version, modified = str(row.version), row.created_at
    shape: dict[str, Any] = {
        "FunctionName": function.name,
        "FunctionArn": arn,
        "Runtime": row.runtime,
        "Role": row.role,
        "Handler": row.handler,
        "CodeSize": row.code_size,
        "Description": row.description,
        "Timeout": row.timeout_s,
        "MemorySize": row.memory_mb,
        "LastModified": aws_time(modified),
        "CodeSha256": sha256_base64(row.code_sha256),
        "Version": version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": row.revision_id,
        "State": function.state,
        "PackageType": "Zip",
        "Architectures": [row.architecture],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function.name}"},
    }
    if row.environment:
        shape["Environment"] = {"Variables": dict(row.environment)}
    if function.state_reason:
        shape["StateReason"] = function.state_reason
    if version == LATEST:
        shape["LastUpdateStatus"] = function.last_update_status
    if listing:
        for key in _LISTING_LEAVES_OUT:
            shape.pop(key, None)
    return shape


def alias(row: LambdaAlias, arn: str) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "AliasArn": arn,
        "Name": row.name,
        "FunctionVersion": row.function_version,
        "Description": row.description,
        "RevisionId": row.revision_id,
    }
    weights = (row.routing_config or {}).get("AdditionalVersionWeights")
    if weights:
        shape["RoutingConfig"] = {"AdditionalVersionWeights": dict(weights)}
    return shape


def provisioned(row: LambdaProvisioned, arn: str | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": row.requested,
        "AvailableProvisionedConcurrentExecutions": row.allocated,
        "AllocatedProvisionedConcurrentExecutions": row.allocated,
        "Status": row.status,
        "LastModified": aws_time(row.last_modified),
    }
    if row.status_reason:
        shape["StatusReason"] = row.status_reason
    if arn is not None:
        shape = {"FunctionArn": arn, **shape}
    return shape


def url_config(row: LambdaUrl, *, url: str, arn: str, modified: bool = True) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "FunctionUrl": url,
        "FunctionArn": arn,
        "AuthType": row.auth_type,
        "CreationTime": iso_time(row.created_at),
        "InvokeMode": row.invoke_mode,
    }
    if modified:
        shape["LastModifiedTime"] = iso_time(row.last_modified)
    if row.cors:
        shape["Cors"] = dict(row.cors)
    return shape


def event_invoke_config(row: LambdaEventConfig, arn: str) -> dict[str, Any]:
    destinations = row.destination_config or {}
    shape: dict[str, Any] = {
        "LastModified": row.last_modified.timestamp(),
        "FunctionArn": arn,
        "DestinationConfig": {
            "OnSuccess": dict(destinations.get("OnSuccess") or {}),
            "OnFailure": dict(destinations.get("OnFailure") or {}),
        },
    }
    if row.max_retry_attempts is not None:
        shape["MaximumRetryAttempts"] = row.max_retry_attempts
    if row.max_event_age_s is not None:
        shape["MaximumEventAgeInSeconds"] = row.max_event_age_s
    return shape


def compact(document: Any) -> str:
    """JSON the way Lambda writes policies: no spaces."""
    return json.dumps(document, separators=(",", ":"))
