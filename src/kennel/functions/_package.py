"""Deployment packages made where the code is (the CLI, a stack): a folder zipped
reproducibly, a .zip as it is, or one .py file.

A folder's zip depends only on its files' paths, contents and executable bits (entries
sorted, timestamps fixed, modes normalised, caches left out), so the same code gives the
same bytes, hence the same CodeSha256, on any machine and at any time: unchanged code is
no update, and publishing it again makes no new version.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

from kennel._errors import ValidationError

SKIPPED = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"})
"""Folders never packaged, wherever they are in the tree."""
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip entry can carry: every entry gets it."""
_KINDS_HINT = "Give a folder (zipped on the fly), a .zip file or a single .py file."


def package(path: Path, *, what: str = "--code") -> bytes:
    """The deployment package at ``path``; ``what`` names it in errors (``--code``)."""
    if not path.exists():
        raise ValidationError(f"{what} {path} does not exist.", hint=_KINDS_HINT)
    if path.is_dir():
        return zip_folder(path, what=what)
    if zipfile.is_zipfile(path):
        return path.read_bytes()
    if path.suffix == ".py":
        return _zipped([(path.name, path)])
    raise ValidationError(
        f"{what} {path} is neither a folder, a .zip nor a .py file.", hint=_KINDS_HINT
    )


def zip_folder(folder: Path, *, what: str = "--code") -> bytes:
    """``folder`` zipped reproducibly, without caches and compiled files."""
    files = sorted(
        (p.relative_to(folder).as_posix(), p)
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix != ".pyc"
        and not SKIPPED.intersection(p.relative_to(folder).parts)
    )
    if not files:
        raise ValidationError(
            f"{what} {folder} has no files.", hint="Put your handler's module in it."
        )
    return _zipped(files)


def code_sha256(package_bytes: bytes) -> str:
    """Lambda's CodeSha256 of a package: the base64 of its SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(package_bytes).digest()).decode()


def _zipped(entries: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, file in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            # Only the executable bit is kept: a umask must not change the package.
            mode = 0o755 if file.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes())
    return buffer.getvalue()
