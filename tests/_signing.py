"""Hand-signed requests, for tests that need to bend one part of a SigV4 signature."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests._server import RunningServer


def wrong_secret(secret: str) -> str:
    """The secret with its last character changed: never the secret itself, whatever it ends in."""
    return secret[:-1] + ("y" if secret.endswith("x") else "x")


def send_signed(
    server: RunningServer,
    method: str = "GET",
    path: str = "/api/v1/status",
    body: bytes = b"",
    *,
    key: str | None = None,
    secret: str | None = None,
    region: str = "us-east-1",
    service: str = "sagemaker",
    when: datetime | None = None,
    send_body: bytes | None = None,
) -> httpx.Response:
    """Sign like botocore does, optionally at another time or with a tampered body."""
    real_key, real_secret = server.credentials()
    creds = Credentials(key or real_key, secret or real_secret)
    request = AWSRequest(method=method, url=server.url + path, data=body)
    timestamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = timestamp
    request.headers["X-Amz-Date"] = timestamp
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    if body:
        request.headers["Content-Type"] = "application/json"
    signer = SigV4Auth(creds, service, region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signed_headers = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return httpx.request(
        method,
        server.url + path,
        content=body if send_body is None else send_body,
        headers=dict(request.headers.items()),
    )


def assert_aws_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["x-amzn-ErrorType"] == code
    body = response.json()
    assert body["__type"] == code
    assert response.headers["x-amzn-RequestId"]
    return str(body["message"])


def aws_error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    """What a boto3 call that failed got back: (HTTP status, AWS error code, message)."""
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )
