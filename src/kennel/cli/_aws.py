"""boto3 clients against the kennel server, as the CLI uses them, and durations.

A command that speaks an AWS API (IAM, STS, Lambda, Application Auto Scaling) uses a plain
boto3 client pointed at the server with the CLI's profile, endpoint and region, so it
exercises the same wire protocol a user's code does; its errors come back as KennelErrors
and print like every other.
"""

from __future__ import annotations

import re

import botocore.exceptions
import botocore.session

from kennel._boto import AwsClient, aws_errors, client_error, make_client
from kennel._client import _profile_endpoint
from kennel._errors import UnrecognizedClientError, ValidationError
from kennel._settings import Settings
from kennel.cli._common import settings

__all__ = ["AwsClient", "aws_client", "aws_errors", "client_error", "parse_duration"]

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, option: str = "--since") -> float:
    """``30s``, ``15m``, ``1h``, ``7d``, ``90d`` as seconds; anything else is refused."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValidationError(
            f"{option} {text!r} is not a duration.",
            hint="Give a positive whole number and a unit: 30s, 15m, 1h, 7d or 90d.",
        )
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def aws_client(service: str, *, cfg: Settings | None = None, raw_blobs: bool = False) -> AwsClient:
    """A boto3 ``service`` client with the profile, endpoint and region the CLI uses.

    Resolved exactly as :meth:`kennel._client.KennelClient.from_settings` does. With
    ``raw_blobs`` binary fields come back as the text the server sent (not base64-decoded).
    """
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
    endpoint = cfg.endpoint_url or _profile_endpoint(core) or cfg.resolved_endpoint_url
    region = core.get_config_variable("region") or cfg.region
    # botocore itself honours AWS_CA_BUNDLE and the profile's ca_bundle; KENNEL_CA_BUNDLE
    # is kennel's, so it is passed on.
    ca_bundle = str(cfg.ca_bundle) if cfg.ca_bundle is not None else None
    return make_client(
        service,
        endpoint_url=endpoint,
        region=region,
        core=core,
        raw_blobs=raw_blobs,
        ca_bundle=ca_bundle,
    )
