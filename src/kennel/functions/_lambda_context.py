"""The ``context`` object a handler receives, shaped like AWS's Python runtime's.

Handlers written for AWS read these attributes, log ``context`` (so ``str()`` matters) and
call ``get_remaining_time_in_millis()`` to stop before their deadline; code moved between
AWS and kennel must see the same names, types and text. As on AWS, ``memory_limit_in_mb``
and ``function_version`` come from the environment's variables, so they are strings.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from typing import Any

from kennel import _json


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity: dict[str, Any] | None = None) -> None:
        identity = identity or {}
        self.cognito_identity_id = identity.get("cognitoIdentityId")
        self.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")

    def __repr__(self) -> str:
        return (
            "CognitoIdentity(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client:
    """The mobile client a caller described in its ClientContext (``client`` key)."""

    __slots__ = (
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    )

    def __init__(self, values: dict[str, Any]) -> None:
        self.installation_id = values.get("installation_id")
        self.app_title = values.get("app_title")
        self.app_version_name = values.get("app_version_name")
        self.app_version_code = values.get("app_version_code")
        self.app_package_name = values.get("app_package_name")

    def __repr__(self) -> str:
        return (
            "Client(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __init__(self, values: dict[str, Any]) -> None:
        self.custom = values.get("custom")
        self.env = values.get("env")
        client = values.get("client")
        self.client = Client(client) if isinstance(client, dict) else client

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


class ClientContextError(ValueError):
    """X-Amz-Client-Context was not base64 of a JSON object."""


def parse_client_context(encoded: str | None) -> ClientContext | None:
    """The ``client_context`` attribute from the invoke frame's base64 JSON (or None)."""
    if not encoded:
        return None
    try:
        value = _json.loads(base64.b64decode(encoded, validate=True))
    except ValueError as exc:
        raise ClientContextError(f"Unable to parse Client Context JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ClientContextError("Unable to parse Client Context JSON: not a JSON object")
    return ClientContext(value)


class LambdaContext:
    """One invocation's context; the deadline is an epoch time in ms, as on AWS."""

    def __init__(
        self,
        aws_request_id: str,
        invoked_function_arn: str,
        deadline_epoch_ms: int,
        client_context: ClientContext | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = client_context
        self.identity = CognitoIdentity(identity)
        self.tenant_id: str | None = None
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._deadline_epoch_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, message: object) -> None:
        """AWS's ``context.log``: text straight into the invocation's log."""
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return (
            "LambdaContext(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity}"
            "])"
        )
