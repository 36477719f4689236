"""Deployment packages: checked on the way in, kept in the artifact store by content.

A package is stored once per function and digest, under
``functions/<name>/<sha256>.zip``; environments on any node fetch it from there by URI.
Like AWS, a package is accepted whatever its handler file says: a missing module is an
invocation error (``Runtime.ImportModuleError``), not a deployment error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from kennel.functions._errors import InvalidParameterValueError, RequestTooLargeError
from kennel.store import ArtifactStore

MAX_UNZIPPED_BYTES = 262_144_000
"""AWS's limit on a package's unzipped size (250 MB)."""

_UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."


@dataclass(frozen=True)
class StoredCode:
    uri: str
    sha256: str
    """Hex digest."""
    size: int


def decode_zip_file(value: str) -> bytes:
    """A ``ZipFile`` field as boto3 sends it (base64 in the JSON body)."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValueError(_UNZIP_FAILED) from None


def check_zip(data: bytes, max_zip_bytes: int) -> None:
    """Refuse what Lambda refuses: too big, not a zip, too big unzipped, unsafe paths."""
    if len(data) > max_zip_bytes:
        raise RequestTooLargeError(f"Zipped size must be smaller than {max_zip_bytes} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise InvalidParameterValueError(_UNZIP_FAILED) from None
    if sum(entry.file_size for entry in entries) > MAX_UNZIPPED_BYTES:
        raise InvalidParameterValueError(
            f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
        )
    for entry in entries:
        path = PurePosixPath(entry.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts:
            raise InvalidParameterValueError(_UNZIP_FAILED)


def store_code(
    artifacts: ArtifactStore, function: str, data: bytes, *, max_zip_bytes: int
) -> StoredCode:
    check_zip(data, max_zip_bytes)
    digest = hashlib.sha256(data).hexdigest()
    key = code_key(function, digest)
    if not artifacts.exists(key):
        with artifacts.open(key, "wb") as out:
            out.write(data)
    return StoredCode(artifacts.uri(key), digest, len(data))


def code_key(function: str, sha256: str) -> str:
    return f"functions/{function}/{sha256}.zip"


def prune_code(artifacts: ArtifactStore, function: str, keep: set[str]) -> None:
    """Remove the function's packages whose digests are not in ``keep``."""
    for key in artifacts.list(f"functions/{function}"):
        name = key.rsplit("/", 1)[-1]
        if name.endswith(".zip") and name[: -len(".zip")] not in keep:
            artifacts.delete(key)


def sha256_base64(hex_digest: str) -> str:
    """AWS shows CodeSha256 as the base64 of the digest's bytes."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
