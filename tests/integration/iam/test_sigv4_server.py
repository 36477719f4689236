"""SigV4 on the wire: real botocore/boto3 signing against a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.exceptions import ClientError
from tests._server import RunningServer
from tests._signing import assert_aws_error, send_signed


def test_signed_request_passes(server: RunningServer) -> None:
    response = send_signed(server)
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["server"]["caller"].endswith(":user/admin")
    assert len(info["account"]["account_id"]) == 12
    assert response.headers["x-amzn-RequestId"]


def test_signed_post_with_body_passes(server: RunningServer) -> None:
    body = b'{"name": "bad name!", "demo": {}}'
    # Signature fine; the body is then rejected by validation, not by auth.
    response = send_signed(server, "POST", "/api/v1/datasets", body)
    assert "not valid" in assert_aws_error(response, 400, "ValidationException")


def test_tampered_body_is_rejected(server: RunningServer) -> None:
    response = send_signed(
        server, "POST", "/api/v1/datasets", b'{"name": "a"}', send_body=b'{"name": "b"}'
    )
    message = assert_aws_error(response, 403, "InvalidSignatureException")
    assert "x-amz-content-sha256" in message


def test_wrong_secret_is_rejected(server: RunningServer) -> None:
    response = send_signed(server, secret="x" * 40)
    message = assert_aws_error(response, 403, "InvalidSignatureException")
    assert "signature we calculated does not match" in message
    _, real_secret = server.credentials()
    assert real_secret not in message


def test_expired_date_is_rejected(server: RunningServer) -> None:
    response = send_signed(server, when=datetime.now(UTC) - timedelta(minutes=10))
    assert "Signature expired" in assert_aws_error(response, 403, "InvalidSignatureException")


def test_future_date_is_rejected(server: RunningServer) -> None:
    response = send_signed(server, when=datetime.now(UTC) + timedelta(minutes=10))
    assert "Signature" in assert_aws_error(response, 403, "InvalidSignatureException")


def test_wrong_region_is_rejected(server: RunningServer) -> None:
    response = send_signed(server, region="eu-west-1")
    assert "region" in assert_aws_error(response, 403, "InvalidSignatureException")


def test_wrong_service_is_rejected(server: RunningServer) -> None:
    response = send_signed(server, service="s3")
    assert "service" in assert_aws_error(response, 403, "InvalidSignatureException")


def test_unsigned_request_is_rejected(server: RunningServer) -> None:
    response = httpx.get(server.url + "/api/v1/status")
    assert_aws_error(response, 403, "MissingAuthenticationTokenException")


def test_unknown_access_key_is_rejected(server: RunningServer) -> None:
    response = send_signed(server, key="AKIAAAAAAAAAAAAAAAAA")
    assert_aws_error(response, 403, "UnrecognizedClientException")


def test_json_body_over_limit_is_rejected(server: RunningServer) -> None:
    body = b"x" * (6 * 2**20 + 1)
    response = send_signed(server, "POST", "/api/v1/datasets", body)
    assert_aws_error(response, 413, "RequestTooLargeException")


def test_boto3_sagemaker_runtime_is_verified(server: RunningServer) -> None:
    """Plain boto3 code signs; kennel verifies and answers in SageMaker's error shape."""
    runtime = server.session.client("sagemaker-runtime", endpoint_url=server.url)
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName="no-such-endpoint", Body=b'{"url": "x"}', ContentType="application/json"
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"].startswith("Endpoint no-such-endpoint of account ")


def test_boto3_with_wrong_secret_gets_aws_error(server: RunningServer) -> None:
    import boto3

    key, _ = server.credentials()
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key="y" * 40,
    )
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="e", Body=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
