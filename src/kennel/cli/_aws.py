"""boto3 clients against the kennel server, as the CLI uses them, and durations.

A command that speaks an AWS API (IAM, STS, Lambda, Application Auto Scaling) uses a plain
boto3 client pointed at the server with the CLI's profile, endpoint and region, so it
exercises the same wire protocol a user's code does; its errors come back as KennelErrors
and print like every other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.parsers import ResponseParserError

from kennel._client import _profile_endpoint
from kennel._errors import (
    KennelError,
    ServiceUnavailableError,
    UnrecognizedClientError,
    ValidationError,
    error_from_response,
)
from kennel._settings import Settings
from kennel.cli._common import settings

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HINTED = re.compile(r"(.*\S) \(([^()]+)\)", re.DOTALL)


def parse_duration(text: str, option: str = "--since") -> float:
    """``30s``, ``15m``, ``1h``, ``7d``, ``90d`` as seconds; anything else is refused."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValidationError(
            f"{option} {text!r} is not a duration.",
            hint="Give a positive whole number and a unit: 30s, 15m, 1h, 7d or 90d.",
        )
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


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


def aws_client(service: str, *, cfg: Settings | None = None, raw_blobs: bool = False) -> AwsClient:
    """A boto3 ``service`` client with the profile, endpoint and region the CLI uses.

    Resolved exactly as :meth:`kennel._client.KennelClient.from_settings` does. With
    ``raw_blobs`` binary fields come back as the text the server sent (not base64-decoded).
    """
    import boto3
    from botocore.config import Config

    cfg = cfg or settings()
    core = botocore.session.Session(profile=cfg.profile)
    try:
        creds = core.get_credentials()
    except botocore.exceptions.ProfileNotFound:
        creds = None
    if creds is None:
        raise UnrecognizedClientError(
            f"No credentials found for AWS profile {cfg.profile!r}.",
            hint="Start the server once (`kennel server --background`): its first start "
            "writes the profile. Or set KENNEL_PROFILE to a profile that has a kennel key.",
        )
    endpoint = (cfg.endpoint_url or _profile_endpoint(core) or cfg.resolved_endpoint_url).rstrip(
        "/"
    )
    region = core.get_config_variable("region") or cfg.region
    if raw_blobs:
        core.get_component("response_parser_factory").set_parser_defaults(
            blob_parser=lambda value: value
        )
    session = boto3.Session(botocore_session=core)
    raw = session.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(connect_timeout=5, read_timeout=600, retries={"total_max_attempts": 1}),
    )
    return AwsClient(raw, endpoint)


@contextmanager
def aws_errors(endpoint_url: str) -> Iterator[None]:
    """botocore's errors as kennel's: same AWS code, message and HTTP status."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise client_error(exc) from exc
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
