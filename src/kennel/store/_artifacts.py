"""The artifact store: a local folder by default, any fsspec URL (``s3://...``) for a cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.core import url_to_fs


class ArtifactStore:
    """Files under one root URL, addressed by ``/``-separated keys.

    fsspec is the abstraction, so one class serves a local folder and s3 alike;
    keys never escape the root.
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        fs, root = url_to_fs(self.url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/")
        self.is_local = "file" in _protocols(fs)
        if self.is_local:
            self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        parts = [p for p in key.strip("/").split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError(f"artifact key {key!r} must not contain '.' or '..'")
        return "/".join([self.root, *parts])

    def uri(self, key: str) -> str:
        """The full URL of a key, as other nodes would open it."""
        path = self._path(key)
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def open(self, key: str, mode: str = "rb") -> IO[Any]:
        path = self._path(key)
        if "w" in mode and self.is_local:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        return self.fs.open(path, mode)  # type: ignore[no-any-return]

    def list(self, prefix: str) -> list[str]:
        """Keys of all files under a prefix, relative to the root."""
        base = self._path(prefix)
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        return sorted(str(p)[len(self.root) + 1 :] for p in found)

    def put_dir(
        self,
        local: Path,
        key: str,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Copy a local folder's files under ``key``; returns the number of bytes copied."""
        files = sorted(p for p in local.rglob("*") if p.is_file())
        copied = 0
        for done, file in enumerate(files, start=1):
            rel = file.relative_to(local).as_posix()
            target = self._path(f"{key}/{rel}")
            if self.is_local:
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(file), target)
            copied += file.stat().st_size
            if progress:
                progress(done, len(files))
        return copied

    def delete(self, prefix: str) -> None:
        """Remove a key or everything under a prefix; a missing prefix is not an error."""
        path = self._path(prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
