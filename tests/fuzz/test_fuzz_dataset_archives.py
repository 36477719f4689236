"""Data set archives (the body of ``PUT /api/v1/datasets/{name}``) on hostile input.

Seeds are small zip (stored, deflated, bzip2, lzma) and tar (plain, gz, bz2, xz)
archives in the train/valid/test layout, with a folder and a symlink; they are mutated
byte by byte. ``safe_extract`` must unpack one, or refuse it with a ValidationError or
PayloadTooLargeError (400, 413), and leave the destination as it found it.
"""

from __future__ import annotations

import io
import itertools
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from tests.fuzz._fuzz import assert_client_error, fuzz_settings, mutated, outcome, quick

from kennel._errors import KennelError
from kennel.datasets._archive import safe_extract

FILES = {"train/cat/a.txt": b"hello" * 20, "valid/cat/b.txt": b"x" * 100, "test/dog/c.txt": b"c"}


def _zip(compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in FILES.items():
            archive.writestr(name, data)
        archive.writestr("train/dog/", "")
    return buffer.getvalue()


def _tar(mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("train/dog")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        link = tarfile.TarInfo("train/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "../elsewhere"
        archive.addfile(link)
    return buffer.getvalue()


SEEDS = [
    *(
        _zip(c)
        for c in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
    ),
    *(_tar(mode) for mode in ("w", "w:gz", "w:bz2", "w:xz")),
]
_numbers = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")


@given(data=mutated(SEEDS))
@fuzz_settings(max_examples=400)
def test_archives_unpack_or_are_refused(folder: Path, data: bytes) -> None:
    number = next(_numbers)
    archive, dest = folder / f"upload-{number}", folder / f"extracted-{number}"
    archive.write_bytes(data)
    dest.mkdir()
    try:
        with quick("safe_extract"):
            result = outcome(lambda: safe_extract(archive, dest), KennelError)
        if isinstance(result, KennelError):
            assert_client_error(result)
            assert not any(dest.iterdir()), "a refused archive left files behind"
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        archive.unlink()
