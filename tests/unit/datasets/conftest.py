"""Fixtures for the data set tests: a small demo set, archive builders and a sandbox.

Archives are always built outside the sandbox, so "nothing escaped" can be checked by
looking at the sandbox alone.
"""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kennel.datasets import make_demo

TAR_MODES = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}
KINDS = ["zip", *TAR_MODES]


@dataclass
class Archives:
    """Builds test archives in their own folder from (name, bytes) members."""

    folder: Path
    made: int = field(default=0)

    def _path(self, kind: str) -> Path:
        self.made += 1
        return self.folder / f"archive{self.made}.{kind}"

    def build(
        self,
        kind: str,
        files: Sequence[tuple[str, bytes]] = (),
        *,
        symlinks: Sequence[tuple[str, str]] = (),
        hardlinks: Sequence[tuple[str, str]] = (),
        specials: Sequence[tuple[str, bytes]] = (),
    ) -> Path:
        """``specials`` are (name, tar type) members such as FIFOs or devices (tar only)."""
        if kind == "zip":
            assert not hardlinks and not specials, "zip has no hard links or special members"
            return self.zip(files, symlinks=symlinks)
        return self.tar(kind, files, symlinks=symlinks, hardlinks=hardlinks, specials=specials)

    def zip(
        self,
        files: Sequence[tuple[str, bytes]],
        *,
        symlinks: Sequence[tuple[str, str]] = (),
        compression: int = zipfile.ZIP_DEFLATED,
    ) -> Path:
        path = self._path("zip")
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in files:
                zf.writestr(name, data)
            for name, target in symlinks:
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, target)
        return path

    def tar(
        self,
        kind: str,
        files: Sequence[tuple[str, bytes]],
        *,
        symlinks: Sequence[tuple[str, str]] = (),
        hardlinks: Sequence[tuple[str, str]] = (),
        specials: Sequence[tuple[str, bytes]] = (),
    ) -> Path:
        path = self._path(kind)
        with tarfile.open(path, TAR_MODES[kind]) as tf:  # type: ignore[call-overload]
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            links = [(n, t, tarfile.SYMTYPE) for n, t in symlinks]
            links += [(n, t, tarfile.LNKTYPE) for n, t in hardlinks]
            for name, target, kind_byte in links:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind_byte, target
                tf.addfile(info)
            for name, type_byte in specials:
                info = tarfile.TarInfo(name)
                info.type = type_byte
                tf.addfile(info)
        return path

    def from_folder(self, kind: str, folder: Path, *, prefix: str = "") -> Path:
        files = [
            (prefix + p.relative_to(folder).as_posix(), p.read_bytes())
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        ]
        return self.build(kind, files)


@dataclass
class Sandbox:
    """``parent/dest`` plus a sentinel file in ``parent``: extraction must touch neither."""

    parent: Path
    dest: Path
    sentinel: Path

    def assert_untouched(self) -> None:
        """Only dest and the sentinel in the parent; dest (if created) is empty."""
        assert sorted(p.name for p in self.parent.iterdir()) == sorted(
            [self.sentinel.name] + ([self.dest.name] if self.dest.exists() else [])
        )
        assert self.sentinel.read_text() == "keep me"
        if self.dest.exists():
            assert list(self.dest.iterdir()) == []


@pytest.fixture
def archives(tmp_path: Path) -> Archives:
    folder = tmp_path / "archives"
    folder.mkdir()
    return Archives(folder)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    parent = tmp_path / "sandbox"
    parent.mkdir()
    sentinel = parent / "sentinel.txt"
    sentinel.write_text("keep me")
    return Sandbox(parent, parent / "dest", sentinel)


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo set (4 classes; 3/2/2 images each); copy it before changing it."""
    root = tmp_path_factory.mktemp("demo") / "dogImages"
    make_demo(root, image_size=16, per_class=(3, 2, 2), classes=4)
    return root


@pytest.fixture
def dataset(demo_set: Path, tmp_path: Path) -> Path:
    """A private, writable copy of ``demo_set`` for tests that break it."""
    copy = tmp_path / "copy" / "dogImages"
    shutil.copytree(demo_set, copy)
    return copy
