"""A signed HTTP client for the kennel API, shared by the CLI and the SDK.

It signs every request with SigV4 exactly as boto3 does (botocore's signer), so the
server checks the CLI the same way it checks any AWS SDK.
"""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import botocore.exceptions
import botocore.session
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kennel._errors import (
    KennelError,
    ServiceUnavailableError,
    UnrecognizedClientError,
    ValidationError,
    error_from_response,
)
from kennel._settings import Settings

SERVICE = "sagemaker"
TLS_FAILURE_HINT = (
    "For a certificate the usual trust store does not know (a self-signed one), point "
    "KENNEL_CA_BUNDLE or AWS_CA_BUNDLE at its PEM file; an http:// URL needs a plain-HTTP "
    "server, an https:// one a TLS server."
)


def _encode_query(params: Mapping[str, Any]) -> str:
    pairs = sorted((str(k), str(v)) for k, v in params.items() if v is not None)
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class KennelClient:
    """``request()`` signs, sends and turns an AWS-shaped error into a KennelError."""

    def __init__(
        self,
        endpoint_url: str,
        credentials: Credentials,
        region: str,
        *,
        timeout: float = 600.0,
        ca_bundle: str | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.credentials = credentials
        self.region = region
        self.ca_bundle = ca_bundle
        """PEM CA certificates an https endpoint is verified with (None: the usual trust
        store); boto3 clients made from this one take it as their ``verify``."""
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=5.0), verify=tls_verify(ca_bundle)
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, endpoint_url: str | None = None, timeout: float = 600.0
    ) -> KennelClient:
        """Credentials from the AWS profile the server wrote (``kennel`` by default)."""
        session = botocore.session.Session(profile=settings.profile)
        try:
            creds = session.get_credentials()
        except botocore.exceptions.ProfileNotFound:
            creds = None
        if creds is None:
            raise UnrecognizedClientError(
                f"No credentials found for AWS profile {settings.profile!r}.",
                hint="Start the server once (`kennel server --background`): its first start "
                "writes the profile. Or set KENNEL_PROFILE to a profile that has a kennel key.",
            )
        endpoint = endpoint_url or settings.endpoint_url or _profile_endpoint(session)
        region = session.get_config_variable("region") or settings.region
        return cls(
            endpoint or settings.resolved_endpoint_url,
            creds.get_frozen_credentials(),
            region,
            timeout=timeout,
            ca_bundle=ca_bundle_of(settings, session),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KennelClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Signing -----------------------------------------------------------------

    def _signed_headers(
        self, method: str, url: str, payload_hash: str, headers: Mapping[str, str]
    ) -> dict[str, str]:
        aws = AWSRequest(method=method, url=url, headers=dict(headers))
        aws.headers["X-Amz-Content-SHA256"] = payload_hash
        aws.headers["Host"] = urlsplit(url).netloc
        SigV4Auth(self.credentials, SERVICE, self.region).add_auth(aws)
        return {k: v for k, v in aws.headers.items() if k.lower() != "host"}

    # Requests -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        upload: Path | None = None,
        data: bytes | None = None,
        progress: Callable[[int], None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        query = _encode_query(params or {})
        url = self.endpoint_url + path + (f"?{query}" if query else "")
        extra = dict(headers or {})
        content: bytes | Iterator[bytes]
        if upload is not None:
            payload_hash = _file_sha256(upload)
            extra.setdefault("Content-Type", "application/octet-stream")
            extra["Content-Length"] = str(upload.stat().st_size)
            content = _read_chunks(upload.open("rb"), progress)
        elif data is not None:
            content = data
            extra.setdefault("Content-Type", "application/octet-stream")
            payload_hash = hashlib.sha256(content).hexdigest()
        else:
            content = b"" if json_body is None else json.dumps(json_body).encode()
            if json_body is not None:
                extra["Content-Type"] = "application/json"
            payload_hash = hashlib.sha256(content).hexdigest()
        signed = self._signed_headers(method, url, payload_hash, extra)
        try:
            response = self._http.request(method, url, content=content, headers=signed)
        except httpx.ConnectError as exc:
            if _tls_failure(exc):
                raise ServiceUnavailableError(
                    f"The TLS handshake with {self.endpoint_url} failed: {exc}",
                    hint=TLS_FAILURE_HINT,
                ) from exc
            raise ServiceUnavailableError(
                f"No kennel server answers at {self.endpoint_url}.",
                hint="Start it with `kennel server --background` (or set KENNEL_ENDPOINT_URL).",
            ) from exc
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"The request to {self.endpoint_url} failed: {exc}",
                hint="Check the server log (logs/server.log in the kennel home).",
            ) from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json_body=body, **kwargs).json()

    def delete(self, path: str, **kwargs: Any) -> None:
        self.request("DELETE", path, **kwargs)


def _read_chunks(f: BinaryIO, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    with f:
        for chunk in iter(lambda: f.read(2**20), b""):
            if progress:
                progress(len(chunk))
            yield chunk


def ca_bundle_of(settings: Settings, session: botocore.session.Session) -> str | None:
    """The CA bundle a client verifies the server with: ``KENNEL_CA_BUNDLE``, else what
    botocore would use (AWS_CA_BUNDLE, then the profile's ``ca_bundle``), else None."""
    if settings.ca_bundle is not None:
        return str(settings.ca_bundle)
    try:
        value = session.get_config_variable("ca_bundle")
    except botocore.exceptions.ProfileNotFound:
        return None
    return str(value) if value else None


def tls_verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a CA bundle (True: its default trust store)."""
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ValidationError(
            f"Cannot read the CA bundle {ca_bundle}: {exc}.",
            hint="Point KENNEL_CA_BUNDLE (or AWS_CA_BUNDLE, or the profile's ca_bundle) at "
            "a PEM file with the server's CA certificate.",
        ) from exc


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain httpx builds is a few links long
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _profile_endpoint(session: botocore.session.Session) -> str | None:
    try:
        value = session.get_scoped_config().get("endpoint_url")
    except botocore.exceptions.ProfileNotFound:
        return None
    return str(value) if value else None


def _error_of(response: httpx.Response) -> KennelError:
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text[:500] or f"HTTP {response.status_code}"}
    if not isinstance(body, dict):
        body = {"message": str(body)}
    body.setdefault("__type", response.headers.get("x-amzn-ErrorType", "").split(":")[0])
    return error_from_response(response.status_code, body)


def path_segment(value: str) -> str:
    """Percent-encode one path segment (a resource name) the way botocore does."""
    return quote(value, safe="-_.~")
