"""Safe extraction of uploaded data set archives (.zip, .tar, .tar.gz / .bz2 / .xz).

Archives arrive from the network, so every member is treated as hostile. All names and
member types are checked before the first byte is written (no absolute paths, no ``..``,
no drive letters or backslash tricks, no links, devices or FIFOs, no duplicates), and
the size limits are enforced twice: on what the headers declare (to fail fast, before
writing anything) and on the bytes actually written (headers can lie). Whatever the
reason for a rejection, everything already written into ``dest`` is removed again.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import os
import re
import stat
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Literal

from kennel._errors import PayloadTooLargeError, ValidationError

log = logging.getLogger(__name__)

ArchiveKind = Literal["zip", "tar"]
Progress = Callable[[int, int], None]
_TarMode = Literal["r:", "r:gz", "r:bz2", "r:xz"]

_CHUNK = 2**20
_RATIO_SLACK_BYTES = 2**20
"""Members (or tar archives) smaller than this skip the ratio check: a blank BMP or a
text file compresses far beyond 200:1 and is harmless at this size."""
_RAW_ENTRY_FACTOR = 4
"""Before parsing, an archive may list this many times ``max_files`` entries (folders
and macOS ``__MACOSX`` shadows count there); beyond it, it is refused unread."""
_MAX_DEPTH = 32
_MAX_COMPONENT_BYTES = 255
_MAX_NAME_BYTES = 1024
_ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, 14})
"""Stored, deflate, bzip2 and LZMA (14): what Python's zipfile can read."""
_DRIVE = re.compile(r"[A-Za-z]:")
_COMPRESSED_MAGIC: tuple[tuple[bytes, _TarMode], ...] = (
    (b"\x1f\x8b", "r:gz"),
    (b"BZh", "r:bz2"),
    (b"\xfd7zXZ\x00", "r:xz"),
)
_DECOMPRESSORS: dict[_TarMode, Callable[[Path], io.BufferedIOBase]] = {
    "r:gz": gzip.GzipFile,
    "r:bz2": bz2.BZ2File,
    "r:xz": lzma.LZMAFile,
}
_JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db"})
_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    struct.error,
)
_REPACK_HINT = (
    "Re-create the archive from the data set folder, e.g. `zip -r dogImages.zip dogImages` "
    "or `tar czf dogImages.tar.gz dogImages`, so that it holds only plain files and folders."
)


@dataclass(frozen=True)
class ExtractLimits:
    """What one archive may unpack to; the server fills these from its settings."""

    max_total_bytes: int = 20 * 2**30
    """Uncompressed total (``KENNEL_DATASET_MAX_BYTES``)."""
    max_files: int = 200_000
    """Files, and separately folders (``KENNEL_DATASET_MAX_FILES``)."""
    max_member_bytes: int = 2 * 2**30
    max_ratio: float = 200.0
    """Decompression-bomb guard: uncompressed / compressed, per zip member and for a
    whole tar archive (its total against the archive file's size)."""


@dataclass(frozen=True)
class _Format:
    kind: ArchiveKind
    tar_mode: _TarMode = "r:"


@dataclass(frozen=True)
class _Entry:
    """One member that will be materialised: a safe relative path and how to read it."""

    name: str
    """The name as the archive spells it, for messages."""
    parts: tuple[str, ...]
    is_dir: bool
    size: int
    """Uncompressed size as the header declares it (not trusted while writing)."""
    packed: int | None
    """Compressed size of a zip member; None for tar (checked against the whole archive)."""
    open: Callable[[], IO[bytes]]


# Recognising archives --------------------------------------------------------------


def archive_kind(path: Path) -> ArchiveKind | None:
    """``"zip"`` or ``"tar"`` (plain, gz, bz2 or xz) by the file's content, else None.

    The name is ignored on purpose: uploads arrive under temporary names and users
    rename files freely.
    """
    found = _sniff(path)
    return found.kind if found else None


def _sniff(path: Path) -> _Format | None:
    if not path.is_file():
        return None
    with path.open("rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _Format("zip")
    for magic, mode in _COMPRESSED_MAGIC:
        if head.startswith(magic):
            return _Format("tar", mode) if _is_tar_header(_first_block(path, mode)) else None
    return _Format("tar") if _is_tar_header(head) else None


def _first_block(path: Path, mode: _TarMode) -> bytes:
    try:
        with _DECOMPRESSORS[mode](path) as f:
            return f.read(512)
    except (OSError, EOFError, lzma.LZMAError, zlib.error):  # zlib's: a corrupt .gz
        return b""


def _is_tar_header(block: bytes) -> bool:
    """A POSIX/GNU magic, or failing that (old v7 tars) a valid header checksum."""
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 0x20 + sum(block[156:512])


# Extraction ---------------------------------------------------------------------------


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    limits: ExtractLimits = ExtractLimits(),
    progress: Progress | None = None,
) -> None:
    """Unpack ``archive`` into ``dest`` (created if missing), or reject it.

    Raises ValidationError for unsafe or corrupt archives and PayloadTooLargeError for
    archives over ``limits``; in both cases ``dest`` is left as it was found.
    ``progress(done_members, total_members)`` is called as members are written.
    """
    found = _sniff(archive)
    if found is None:
        raise ValidationError(
            f"{archive.name} is not a .zip or .tar(.gz/.bz2/.xz) archive.",
            hint="Pack the folder that holds train/ valid/ test/ into a zip or tar.gz.",
        )
    dest.mkdir(parents=True, exist_ok=True)
    if found.kind == "zip":
        _check_zip_directory_size(archive, limits)
        with _open_zip(archive) as zf:
            planned = _plan(_zip_entries(zf), _Meter(limits, None))
            _write_all(planned, dest, _Meter(limits, None), progress)
    else:
        whole = archive.stat().st_size
        with _open_tar(archive, found.tar_mode) as tf:
            planned = _plan(_tar_entries(tf, limits), _Meter(limits, whole))
            _write_all(planned, dest, _Meter(limits, whole), progress)


def _open_zip(archive: Path) -> zipfile.ZipFile:
    with _reading(archive.name):
        return zipfile.ZipFile(archive)


def _open_tar(archive: Path, mode: _TarMode) -> tarfile.TarFile:
    with _reading(archive.name):
        return tarfile.open(archive, mode=mode)


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn the many ways a damaged archive fails to read into one ValidationError."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise ValidationError(
            f"The archive is corrupt or truncated ({what}: {exc or type(exc).__name__}).",
            hint="Check the upload finished and the file opens locally, then pack it again.",
        ) from exc


def _plan(entries: Iterable[_Entry], meter: _Meter) -> list[_Entry]:
    """Every member that will be written, after all checks that need no writing."""
    planned: list[_Entry] = []
    for entry in entries:
        _check_declared(entry, meter)
        planned.append(entry)
    _check_tree(planned, meter.limits)
    return planned


def _check_declared(entry: _Entry, meter: _Meter) -> None:
    """Apply the limits to the sizes the headers declare: fails before anything is written.

    For tar this runs as the member list is read, so a bomb is refused before the
    decompressor has to wade through it.
    """
    if not entry.is_dir:
        meter.count_file()
        meter.charge(entry, entry.size, entry.size)


def _check_tree(planned: list[_Entry], limits: ExtractLimits) -> None:
    """No duplicates (also up to case and Unicode form), no name both file and folder."""
    files: dict[str, str] = {}
    dirs: set[str] = set()
    for entry in planned:
        keys = [_key(entry.parts[:i]) for i in range(1, len(entry.parts) + 1)]
        dirs.update(keys if entry.is_dir else keys[:-1])
        if entry.is_dir:
            continue
        if keys[-1] in files:
            raise _unsafe(entry.name, f"clashes with {files[keys[-1]]!r} (same path)")
        files[keys[-1]] = entry.name
    for key, name in files.items():
        if key in dirs:
            raise _unsafe(name, "is both a file and a folder")
    if len(dirs) > limits.max_files:
        raise _too_many(len(dirs), limits.max_files, "folders")


def _key(parts: tuple[str, ...]) -> str:
    """Paths that one filesystem or another would treat as the same file."""
    return unicodedata.normalize("NFC", "/".join(parts)).casefold()


def _write_all(planned: list[_Entry], dest: Path, meter: _Meter, progress: Progress | None) -> None:
    """Write the planned members, counting real bytes; undo everything on any failure."""
    root = os.path.realpath(dest)
    created: list[Path] = []
    made: set[Path] = set()
    total = len(planned)
    try:
        if progress:
            progress(0, total)
        for done, entry in enumerate(planned, 1):
            folder_parts = entry.parts if entry.is_dir else entry.parts[:-1]
            _make_dirs(dest, folder_parts, created, made)
            if not entry.is_dir:
                target = dest.joinpath(*entry.parts)
                _ensure_inside(root, target, entry.name)
                meter.count_file()
                _write_file(entry, target, meter, created)
            if progress:
                progress(done, total)
    except BaseException:
        _remove(created)
        raise


def _make_dirs(dest: Path, parts: tuple[str, ...], created: list[Path], made: set[Path]) -> None:
    for i in range(1, len(parts) + 1):
        folder = dest.joinpath(*parts[:i])
        if folder in made:
            continue
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise ValidationError(
                f"Cannot extract into {'/'.join(parts[:i])}: it exists in the destination "
                "and is not a plain folder.",
                hint="Extract into an empty folder.",
            )
        if not folder.exists():
            folder.mkdir()
            created.append(folder)
        made.add(folder)


def _ensure_inside(root: str, target: Path, name: str) -> None:
    """Defence in depth: the name checks already exclude escapes; this checks the result."""
    real = os.path.realpath(target)
    if os.path.commonpath([root, real]) != root:
        raise _unsafe(name, "would be written outside the destination folder")


def _write_file(entry: _Entry, target: Path, meter: _Meter, created: list[Path]) -> None:
    with _reading(entry.name):
        source = entry.open()
    with source:
        try:
            out = target.open("xb")
        except FileExistsError as exc:
            raise ValidationError(
                f"Cannot extract {entry.name!r}: the file already exists in the destination.",
                hint="Extract into an empty folder.",
            ) from exc
        created.append(target)
        with out:
            _copy_limited(source, out, entry, meter)


def _copy_limited(source: IO[bytes], out: IO[bytes], entry: _Entry, meter: _Meter) -> int:
    """Copy in chunks, charging each chunk to ``meter`` before it is written.

    The counts are of bytes actually produced by the decompressor, so a header that
    understates a member's size cannot sneak more data past the limits.
    """
    written = 0
    while True:
        with _reading(entry.name):
            chunk = source.read(_CHUNK)
        if not chunk:
            return written
        meter.charge(entry, written + len(chunk), len(chunk))
        out.write(chunk)
        written += len(chunk)


def _remove(created: list[Path]) -> None:
    """Undo in reverse creation order: files first, then their (now empty) folders."""
    for path in reversed(created):
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
        except OSError as exc:
            log.warning("could not remove %s while undoing an extraction: %s", path, exc)


# Limits ---------------------------------------------------------------------------------


class _Meter:
    """Counts files and bytes against the limits and raises the moment one is crossed."""

    def __init__(self, limits: ExtractLimits, archive_bytes: int | None) -> None:
        self.limits = limits
        self.archive_bytes = archive_bytes
        self.files = 0
        self.total = 0

    def count_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise _too_many(self.files, self.limits.max_files, "files")

    def charge(self, entry: _Entry, member_total: int, added: int) -> None:
        """Account ``added`` more bytes of ``entry``, which is now ``member_total`` long."""
        lim = self.limits
        self.total += added
        if self.total > lim.max_total_bytes:
            raise PayloadTooLargeError(
                f"The archive unpacks to more than {_human(lim.max_total_bytes)} "
                f"({lim.max_total_bytes} bytes), the data set size limit.",
                hint="Raise KENNEL_DATASET_MAX_BYTES on the server if this data set is "
                "expected to be that large.",
            )
        if member_total > lim.max_member_bytes:
            raise PayloadTooLargeError(
                f"Archive member {entry.name!r} unpacks to more than "
                f"{_human(lim.max_member_bytes)}, the limit for one file.",
                hint="Images are far smaller than this: check the archive holds what you "
                "expect, and leave files of that size out of the data set.",
            )
        if entry.packed is not None and member_total > _ratio_allowance(entry.packed, lim):
            raise _bomb(f"Archive member {entry.name!r}", lim)
        if self.archive_bytes is not None and self.total > _ratio_allowance(
            self.archive_bytes, lim
        ):
            raise _bomb("The archive", lim)


def _ratio_allowance(packed: int, limits: ExtractLimits) -> float:
    return max(packed * limits.max_ratio, _RATIO_SLACK_BYTES)


def _bomb(what: str, limits: ExtractLimits) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{what} expands more than {limits.max_ratio:g}:1, which looks like a decompression bomb.",
        hint="If the content really is that compressible, pack it without compression "
        "(`zip -0` or a plain .tar); it still has to fit KENNEL_DATASET_MAX_BYTES.",
    )


def _too_many(count: int, limit: int, what: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The archive holds more than {limit} {what} (found {count} so far), the data set limit.",
        hint="Raise KENNEL_DATASET_MAX_FILES on the server if this data set is expected "
        "to be that large.",
    )


def _check_raw_count(count: int, limits: ExtractLimits) -> None:
    """Bound memory before parsing: each listed entry costs a Python object."""
    bound = _RAW_ENTRY_FACTOR * limits.max_files + 1000
    if count > bound:
        raise PayloadTooLargeError(
            f"The archive lists more than {bound} entries (files, folders and OS junk), "
            f"far over the limit of {limits.max_files} files.",
            hint="Raise KENNEL_DATASET_MAX_FILES on the server if this data set is expected "
            "to be that large.",
        )


def _check_zip_directory_size(path: Path, limits: ExtractLimits) -> None:
    """Read the entry count from the end record, before zipfile loads every entry."""
    declared = _zip_declared_entries(path)
    if declared is not None:
        _check_raw_count(declared, limits)


def _zip_declared_entries(path: Path) -> int | None:
    """Entries the (zip64) end-of-central-directory record declares; None if absent."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        tail_size = min(size, 22 + 0xFFFF)
        f.seek(size - tail_size)
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        count: int = struct.unpack_from("<H", tail, at + 10)[0]
        locator = tail[at - 20 : at] if at >= 20 else b""
        if count != 0xFFFF or not locator.startswith(b"PK\x06\x07"):
            return count
        f.seek(struct.unpack_from("<Q", locator, 8)[0])
        record = f.read(56)
    if len(record) < 40 or not record.startswith(b"PK\x06\x06"):
        return None
    count64: int = struct.unpack_from("<Q", record, 32)[0]
    return count64


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# Members ---------------------------------------------------------------------------------


def _zip_entries(zf: zipfile.ZipFile) -> Iterator[_Entry]:
    for info in zf.infolist():
        parts = safe_parts(info.filename)
        is_dir = _zip_member_is_dir(info)
        if parts and not _is_junk(parts):
            yield _Entry(
                name=info.filename,
                parts=parts,
                is_dir=is_dir,
                size=0 if is_dir else info.file_size,
                packed=info.compress_size,
                open=partial(zf.open, info),
            )


def _zip_member_is_dir(info: zipfile.ZipInfo) -> bool:
    """Plain file or folder only: links and devices are refused, as are locked members."""
    if info.flag_bits & 0x1:
        raise _unsafe(info.filename, "is encrypted", hint="Pack the data set without a password.")
    if info.compress_type not in _ZIP_METHODS:
        raise _unsafe(
            info.filename,
            f"uses compression method {info.compress_type}, which kennel cannot read",
            hint="Pack it with standard deflate (`zip -r`; Windows' Deflate64 is not supported).",
        )
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise _unsafe(info.filename, "is a symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _unsafe(info.filename, "is a device, FIFO or socket")
    return info.is_dir() or kind == stat.S_IFDIR


def _tar_entries(tf: tarfile.TarFile, limits: ExtractLimits) -> Iterator[_Entry]:
    listed = 0
    while True:
        with _reading("reading the member list"):
            member = tf.next()
        if member is None:
            return
        listed += 1
        _check_raw_count(listed, limits)
        parts = safe_parts(member.name)
        is_dir = _tar_member_is_dir(member)
        if parts and not _is_junk(parts):
            yield _Entry(
                name=member.name,
                parts=parts,
                is_dir=is_dir,
                size=0 if is_dir else member.size,
                packed=None,
                open=partial(_tar_open, tf, member),
            )


def _tar_open(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    source = tf.extractfile(member)
    if source is None:
        raise _unsafe(member.name, "is not a regular file")
    return source


def _tar_member_is_dir(member: tarfile.TarInfo) -> bool:
    """Plain file or folder only; sparse files are refused (they expand past their header)."""
    if member.issym():
        raise _unsafe(member.name, f"is a symbolic link (to {member.linkname!r})")
    if member.islnk():
        raise _unsafe(member.name, f"is a hard link (to {member.linkname!r})")
    if member.isdev():
        raise _unsafe(member.name, "is a device or FIFO")
    if member.issparse():
        raise _unsafe(member.name, "is a sparse file")
    if member.isdir():
        return True
    if member.isfile():
        return False
    raise _unsafe(member.name, f"has an unsupported tar type {member.type!r}")


# Names ----------------------------------------------------------------------------------


def safe_parts(name: str) -> tuple[str, ...]:
    """The member name as safe relative path components, or ValidationError saying why not.

    Backslashes count as separators (zips made on Windows use them), ``.`` and empty
    components are dropped, and everything that could leave the destination is refused.
    An empty result means "the archive root itself" and is skipped by the caller.
    """
    if "\0" in name:
        raise _unsafe(name, "contains a NUL character")
    posix = name.replace("\\", "/")
    if posix.startswith("/"):
        raise _unsafe(name, "is an absolute path")
    parts = tuple(part for part in posix.split("/") if part not in ("", "."))
    if parts and _DRIVE.match(parts[0]):
        raise _unsafe(name, "starts with a drive letter")
    if ".." in parts:
        raise _unsafe(name, "contains a '..' component")
    if len(parts) > _MAX_DEPTH:
        raise _unsafe(name, f"is nested more than {_MAX_DEPTH} folders deep")
    if any(len(_fs_bytes(part)) > _MAX_COMPONENT_BYTES for part in parts):
        raise _unsafe(name, f"has a component longer than {_MAX_COMPONENT_BYTES} bytes")
    if len(_fs_bytes("/".join(parts))) > _MAX_NAME_BYTES:
        raise _unsafe(name, f"is longer than {_MAX_NAME_BYTES} bytes")
    return parts


def _fs_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _is_junk(parts: tuple[str, ...]) -> bool:
    """macOS/Windows droppings (``__MACOSX/``, ``.DS_Store``, ``._*``, ``Thumbs.db``)."""
    return any(part in _JUNK_NAMES for part in parts) or parts[-1].startswith("._")


def _unsafe(name: str, reason: str, *, hint: str = _REPACK_HINT) -> ValidationError:
    return ValidationError(
        f"Archive member {name!r} {reason}; nothing was extracted.",
        hint=hint,
    )
