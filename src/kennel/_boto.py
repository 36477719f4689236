"""boto3 clients pointed at a kennel server, with botocore's errors turned into kennel's.

A command or a stack handler that speaks an AWS API (IAM, STS, Lambda, Application Auto
Scaling) uses a plain boto3 client pointed at the server, so it exercises the same wire
protocol a user's code does; its errors come back as KennelErrors and print like every
other. The CLI resolves the profile, endpoint and region from its settings
(``kennel.cli._aws.aws_client``); the stack engine takes them from its signed client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.credentials import Credentials
from botocore.parsers import ResponseParserError

from kennel._client import TLS_FAILURE_HINT
from kennel._errors import (
    KennelError,
    ServiceUnavailableError,
    UnrecognizedClientError,
    ValidationError,
    error_from_response,
)

_HINTED = re.compile(r"(.*\S) \(([^()]+)\)", re.DOTALL)


class AwsClient:
    """A boto3 client whose errors come out as KennelErrors (rendered like every other)."""

    def __init__(self, raw: Any, endpoint_url: str) -> None:
        self.raw = raw
        self.endpoint_url = endpoint_url

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        method = getattr(self.raw, name)

        def call(**kwargs: Any) -> dict[str, Any]:
            with aws_errors(self.endpoint_url):
                result: dict[str, Any] = method(**kwargs)
            result.pop("ResponseMetadata", None)
            return result

        return call


def make_client(
    service: str,
    *,
    endpoint_url: str,
    region: str,
    core: botocore.session.Session | None = None,
    credentials: Credentials | None = None,
    raw_blobs: bool = False,
    ca_bundle: str | None = None,
) -> AwsClient:
    """A boto3 ``service`` client for the server at ``endpoint_url``.

    Credentials come from ``core`` (a botocore session with a profile) or are given.
    With ``raw_blobs`` binary fields come back as the text the server sent (not
    base64-decoded). ``ca_bundle`` verifies an https server (None: botocore's own
    choice, AWS_CA_BUNDLE or the profile's ``ca_bundle``).
    """
    import boto3
    from botocore.config import Config

    core = core or botocore.session.Session()
    if raw_blobs:
        core.get_component("response_parser_factory").set_parser_defaults(
            blob_parser=lambda value: value
        )
    session = boto3.Session(botocore_session=core)
    extra: dict[str, Any] = {}
    if credentials is not None:
        extra = {
            "aws_access_key_id": credentials.access_key,
            "aws_secret_access_key": credentials.secret_key,
            "aws_session_token": credentials.token,
        }
    endpoint = endpoint_url.rstrip("/")
    raw = session.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(connect_timeout=5, read_timeout=600, retries={"total_max_attempts": 1}),
        verify=ca_bundle,
        **extra,
    )
    return AwsClient(raw, endpoint)


@contextmanager
def aws_errors(endpoint_url: str) -> Iterator[None]:
    """botocore's errors as kennel's: same AWS code, message and HTTP status."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise client_error(exc) from exc
    except botocore.exceptions.SSLError as exc:
        raise ServiceUnavailableError(
            f"The TLS handshake with {endpoint_url} failed: {exc}", hint=TLS_FAILURE_HINT
        ) from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise ServiceUnavailableError(
            f"No kennel server answers at {endpoint_url}.",
            hint="Start it with `kennel server --background` (or set KENNEL_ENDPOINT_URL).",
        ) from exc
    except botocore.exceptions.ParamValidationError as exc:
        raise ValidationError(" ".join(str(exc).split())) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise UnrecognizedClientError(str(exc)) from exc
    except (botocore.exceptions.HTTPClientError, ResponseParserError) as exc:
        raise ServiceUnavailableError(
            f"The request to {endpoint_url} failed: {exc}",
            hint="Check the server log (logs/server.log in the kennel home).",
        ) from exc


def client_error(exc: botocore.exceptions.ClientError) -> KennelError:
    response: dict[str, Any] = dict(exc.response)
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    status = int(meta.get("HTTPStatusCode") or 500)
    err = error_from_response(
        status,
        {"__type": error.get("Code") or "InternalFailure", "message": error.get("Message") or ""},
    )
    hinted = _HINTED.fullmatch(err.message)
    if hinted and ("`" in hinted.group(2) or "kennel" in hinted.group(2)):
        # The Query protocol has no hint field: kennel sends "message (hint)".
        err.message, err.hint = hinted.group(1), hinted.group(2)
    request_id = meta.get("RequestId")
    denied = err.aws_code in ("AccessDenied", "AccessDeniedException")
    if status == 403 and denied and request_id and not err.hint:
        err.hint = f"Run `kennel iam explain {request_id}` to see what decided it."
    return err
