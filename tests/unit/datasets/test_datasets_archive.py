"""safe_extract and archive_kind: good archives unpack, hostile ones leave no trace."""

from __future__ import annotations

import bz2
import gzip
import random
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kennel._errors import PayloadTooLargeError, ValidationError
from kennel.datasets import ExtractLimits, _archive, archive_kind, find_dataset_root, safe_extract

if TYPE_CHECKING:
    from conftest import Archives, Sandbox

KINDS = ["zip", "tar", "tar.gz"]
TAR_KINDS = ["tar", "tar.gz"]
OK = ("dogImages/train/001.a/ok.jpg", b"fine")
MiB = 2**20


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# Recognising archives ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_archive_kind_reads_content_not_name(archives: Archives, kind: str) -> None:
    path = archives.build(kind, [OK])
    disguised = path.rename(path.with_name("upload.bin"))
    assert archive_kind(disguised) == ("zip" if kind == "zip" else "tar")


def test_archive_kind_rejects_non_archives(tmp_path: Path) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("this is not an archive " * 50)
    gz_text = tmp_path / "notes.tar.gz"
    gz_text.write_bytes(gzip.compress(b"plain text, not a tar " * 50))
    bz_text = tmp_path / "notes.tar.bz2"
    bz_text.write_bytes(bz2.compress(b"plain text, not a tar " * 50))
    empty = tmp_path / "empty.tar"
    empty.touch()
    for path in (text, gz_text, bz_text, empty, tmp_path, tmp_path / "missing.zip"):
        assert archive_kind(path) is None, path


def test_not_an_archive_is_a_validation_error(tmp_path: Path, sandbox: Sandbox) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not an archive" * 10)
    with pytest.raises(ValidationError, match="archive"):
        safe_extract(junk, sandbox.dest)
    sandbox.assert_untouched()


# Good archives ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_good_archive_extracts_exactly(
    archives: Archives, sandbox: Sandbox, demo_set: Path, kind: str
) -> None:
    archive = archives.from_folder(kind, demo_set, prefix="dogImages/")
    calls: list[tuple[int, int]] = []
    safe_extract(archive, sandbox.dest, progress=lambda done, total: calls.append((done, total)))

    root = find_dataset_root(sandbox.dest)
    assert root == sandbox.dest / "dogImages"
    assert files_under(root) == files_under(demo_set)
    total = calls[-1][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == list(range(total + 1))


def test_tar_with_dot_entries_extracts(sandbox: Sandbox, demo_set: Path, tmp_path: Path) -> None:
    """``tar czf x.tar.gz -C folder .`` stores ``.`` and ``./train/...``: both are fine."""
    archive = tmp_path / "dots.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(demo_set, arcname=".")
    safe_extract(archive, sandbox.dest)
    assert files_under(sandbox.dest) == files_under(demo_set)


def test_zip_with_backslash_separators_extracts(archives: Archives, sandbox: Sandbox) -> None:
    """Old Windows tools write ``train\\001.a\\x.jpg``; that is a path, not a trick."""
    safe_extract(archives.zip([("train\\001.a\\x.jpg", b"x")]), sandbox.dest)
    assert files_under(sandbox.dest) == {"train/001.a/x.jpg": b"x"}


@pytest.mark.parametrize("kind", KINDS)
def test_macos_junk_is_skipped(archives: Archives, sandbox: Sandbox, kind: str) -> None:
    archive = archives.build(
        kind,
        [
            ("__MACOSX/dogImages/train/._ok.jpg", b"apple double"),
            ("dogImages/.DS_Store", b"finder"),
            ("dogImages/train/001.a/._ok.jpg", b"apple double"),
            ("dogImages/train/001.a/Thumbs.db", b"windows"),
            OK,
        ],
    )
    safe_extract(archive, sandbox.dest)
    assert files_under(sandbox.dest) == {OK[0]: OK[1]}
    assert not (sandbox.dest / "__MACOSX").exists()


def test_existing_content_of_dest_survives_a_rejection(
    archives: Archives, sandbox: Sandbox
) -> None:
    sandbox.dest.mkdir()
    (sandbox.dest / "mine.txt").write_text("already here")
    with pytest.raises(ValidationError):
        safe_extract(archives.zip([OK, ("../evil", b"x")]), sandbox.dest)
    assert files_under(sandbox.dest) == {"mine.txt": b"already here"}


# Hostile names and members ---------------------------------------------------------------

EVIL_NAMES = [
    "../evil",
    "dogImages/../../evil",
    "dogImages/train/../../../evil",
    "C:/evil",
    "C:evil",
    "..\\evil",
    "dogImages\\..\\..\\evil",
    "\\evil",
    "//server/share/evil",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", EVIL_NAMES)
def test_escaping_names_are_rejected(
    archives: Archives, sandbox: Sandbox, tmp_path: Path, kind: str, name: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        safe_extract(archives.build(kind, [OK, (name, b"gotcha")]), sandbox.dest)
    assert repr(name) in caught.value.message
    assert caught.value.hint
    sandbox.assert_untouched()
    assert not list(tmp_path.rglob("evil")) and not (tmp_path.parent / "evil").exists()
    assert not Path("/server").exists() and not Path("/evil").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_absolute_names_are_rejected(
    archives: Archives, sandbox: Sandbox, tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "outside" / "abs-evil"
    with pytest.raises(ValidationError, match="absolute"):
        safe_extract(archives.build(kind, [OK, (str(target), b"gotcha")]), sandbox.dest)
    sandbox.assert_untouched()
    assert not target.exists() and not target.parent.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_symlinks_are_rejected(
    archives: Archives, sandbox: Sandbox, tmp_path: Path, kind: str
) -> None:
    """A link member followed by a file written "through" it is the classic escape."""
    archive = archives.build(
        kind,
        [OK, ("dogImages/link/evil", b"through the link")],
        symlinks=[("dogImages/link", str(tmp_path))],
    )
    with pytest.raises(ValidationError, match="symbolic link"):
        safe_extract(archive, sandbox.dest)
    sandbox.assert_untouched()
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind", TAR_KINDS)
def test_hardlinks_are_rejected(archives: Archives, sandbox: Sandbox, kind: str) -> None:
    archive = archives.build(kind, [OK], hardlinks=[("dogImages/passwd", "/etc/passwd")])
    with pytest.raises(ValidationError, match="hard link"):
        safe_extract(archive, sandbox.dest)
    sandbox.assert_untouched()


@pytest.mark.parametrize("type_byte", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_devices_and_fifos_are_rejected(
    archives: Archives, sandbox: Sandbox, type_byte: bytes
) -> None:
    archive = archives.build("tar", [OK], specials=[("dogImages/dev", type_byte)])
    with pytest.raises(ValidationError, match="device or FIFO"):
        safe_extract(archive, sandbox.dest)
    sandbox.assert_untouched()


def test_zip_device_member_is_rejected(archives: Archives, sandbox: Sandbox) -> None:
    path = archives.zip([OK])
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("dogImages/dev")
        info.create_system = 3
        info.external_attr = (0o020000 | 0o644) << 16  # S_IFCHR
        zf.writestr(info, b"")
    with pytest.raises(ValidationError, match="device"):
        safe_extract(path, sandbox.dest)
    sandbox.assert_untouched()


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("a/b.jpg", "a/b.jpg", "clashes"),
        ("a/b.jpg", "./a//b.jpg", "clashes"),
        ("a/B.jpg", "a/b.jpg", "clashes"),
        ("a/caf\u00e9.jpg", "a/cafe\u0301.jpg", "clashes"),
        ("a", "a/b.jpg", "both a file and a folder"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_duplicate_names_are_rejected(
    archives: Archives, sandbox: Sandbox, kind: str, first: str, second: str, reason: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about duplicates
        archive = archives.build(kind, [(first, b"1"), (second, b"2")])
    with pytest.raises(ValidationError, match=reason):
        safe_extract(archive, sandbox.dest)
    sandbox.assert_untouched()


def patch_zip(
    path: Path, *, local: dict[int, tuple[str, int]], central: dict[int, tuple[str, int]]
) -> None:
    """Overwrite header fields of a one-member zip: {offset: (struct format, value)}."""
    data = bytearray(path.read_bytes())
    for signature, fields in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = data.find(signature)
        assert at >= 0
        for offset, (fmt, value) in fields.items():
            struct.pack_into(fmt, data, at + offset, value)
    path.write_bytes(data)


def test_encrypted_zip_is_rejected(archives: Archives, sandbox: Sandbox) -> None:
    path = archives.zip([OK])
    patch_zip(path, local={6: ("<H", 1)}, central={8: ("<H", 1)})
    with pytest.raises(ValidationError, match="encrypted") as caught:
        safe_extract(path, sandbox.dest)
    assert "password" in (caught.value.hint or "")
    sandbox.assert_untouched()


def test_unsupported_zip_method_is_rejected(archives: Archives, sandbox: Sandbox) -> None:
    path = archives.zip([OK])
    patch_zip(path, local={8: ("<H", 9)}, central={10: ("<H", 9)})  # Deflate64
    with pytest.raises(ValidationError, match="compression method 9"):
        safe_extract(path, sandbox.dest)
    sandbox.assert_untouched()


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_archive_is_corrupt(archives: Archives, sandbox: Sandbox, kind: str) -> None:
    path = archives.build(kind, [OK, ("dogImages/train/001.a/big.jpg", bytes(range(256)) * 4000)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValidationError, match="corrupt or truncated"):
        safe_extract(path, sandbox.dest)
    sandbox.assert_untouched()


# Limits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeros() -> bytes:
    return bytes(50 * MiB)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_bomb_over_total_limit(
    archives: Archives, sandbox: Sandbox, zeros: bytes, kind: str
) -> None:
    archive = archives.build(kind, [OK, ("dogImages/train/001.a/zeros.jpg", zeros)])
    assert archive.stat().st_size < 1 * MiB
    with pytest.raises(PayloadTooLargeError) as caught:
        safe_extract(archive, sandbox.dest, limits=ExtractLimits(max_total_bytes=10 * MiB))
    assert "10.0 MiB" in caught.value.message
    assert "KENNEL_DATASET_MAX_BYTES" in (caught.value.hint or "")
    assert caught.value.status == 413
    sandbox.assert_untouched()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_bomb_over_ratio_limit(
    archives: Archives, sandbox: Sandbox, zeros: bytes, kind: str
) -> None:
    """Within the size limits, but 50 MB from ~50 KB is a decompression bomb."""
    archive = archives.build(kind, [OK, ("dogImages/train/001.a/zeros.jpg", zeros)])
    with pytest.raises(PayloadTooLargeError, match="decompression bomb"):
        safe_extract(archive, sandbox.dest)
    sandbox.assert_untouched()


def test_plain_tar_of_zeros_is_not_a_bomb(archives: Archives, sandbox: Sandbox) -> None:
    """Uncompressed tar cannot expand; highly compressible content is fine there."""
    safe_extract(archives.build("tar", [("zeros.bmp", bytes(3 * MiB))]), sandbox.dest)
    assert (sandbox.dest / "zeros.bmp").stat().st_size == 3 * MiB


def test_small_compressible_member_is_not_a_bomb(archives: Archives, sandbox: Sandbox) -> None:
    """A blank 500 KB BMP compresses ~1000:1 but is harmless: the ratio check has slack."""
    safe_extract(archives.zip([("blank.bmp", bytes(500_000))]), sandbox.dest)
    assert (sandbox.dest / "blank.bmp").stat().st_size == 500_000


@pytest.mark.parametrize("kind", KINDS)
def test_too_many_files(archives: Archives, sandbox: Sandbox, kind: str) -> None:
    archive = archives.build(kind, [(f"train/001.a/{i}.jpg", b"x") for i in range(30)])
    with pytest.raises(PayloadTooLargeError, match="more than 10 files") as caught:
        safe_extract(archive, sandbox.dest, limits=ExtractLimits(max_files=10))
    assert "KENNEL_DATASET_MAX_FILES" in (caught.value.hint or "")
    sandbox.assert_untouched()


def test_too_many_folders(archives: Archives, sandbox: Sandbox) -> None:
    archive = archives.zip([("/".join(f"d{i}" for i in range(15)) + "/x.jpg", b"x")])
    with pytest.raises(PayloadTooLargeError, match="more than 10 folders"):
        safe_extract(archive, sandbox.dest, limits=ExtractLimits(max_files=10))
    sandbox.assert_untouched()


@pytest.mark.parametrize("kind", KINDS)
def test_member_over_limit(archives: Archives, sandbox: Sandbox, kind: str) -> None:
    archive = archives.build(kind, [OK, ("big.jpg", bytes(range(256)) * 8192)])
    with pytest.raises(PayloadTooLargeError, match="'big.jpg'"):
        safe_extract(archive, sandbox.dest, limits=ExtractLimits(max_member_bytes=MiB))
    sandbox.assert_untouched()


def test_zip_header_understating_size_writes_nothing(archives: Archives, sandbox: Sandbox) -> None:
    """The headers claim 10 bytes for 5 MB of data: the size checks on the headers pass,
    but the extraction must not produce more than was declared, and must fail."""
    path = archives.zip([("train/001.a/liar.jpg", bytes(range(256)) * 20_480)])
    patch_zip(path, local={22: ("<I", 10)}, central={24: ("<I", 10)})
    assert zipfile.ZipFile(path).infolist()[0].file_size == 10
    with pytest.raises(ValidationError, match="corrupt"):
        safe_extract(path, sandbox.dest, limits=ExtractLimits(max_total_bytes=1000))
    sandbox.assert_untouched()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ExtractLimits(max_total_bytes=5 * MiB // 2), "data set size limit"),
        (ExtractLimits(max_member_bytes=5 * MiB // 4), "limit for one file"),
        (ExtractLimits(max_files=3), "more than 3 files"),
    ],
)
def test_limits_hold_on_bytes_actually_written(
    archives: Archives,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    limits: ExtractLimits,
    message: str,
) -> None:
    """With the header checks switched off (as if every header lied), the streaming
    counters alone stop the extraction at the limit and everything is removed."""
    monkeypatch.setattr(_archive, "_check_declared", lambda entry, meter: None)
    written: dict[Path, int] = {}
    remove = _archive._remove

    def spy(created: list[Path]) -> None:
        written.update({p: p.stat().st_size for p in created if p.is_file()})
        remove(created)

    monkeypatch.setattr(_archive, "_remove", spy)
    noise = random.Random(0).randbytes(3 * MiB // 2)  # incompressible: no ratio trouble
    members = [OK] + [(f"dogImages/train/001.a/{i}.jpg", noise) for i in range(3)]
    archive = archives.build(kind, members)
    with pytest.raises(PayloadTooLargeError, match=message):
        safe_extract(archive, sandbox.dest, limits=limits)
    assert written, "the streaming counter should have been reached after some writes"
    assert sum(written.values()) <= limits.max_total_bytes
    assert max(written.values()) <= limits.max_member_bytes
    assert len(written) <= limits.max_files
    sandbox.assert_untouched()


def test_streaming_ratio_check_stops_a_bomb(
    archives: Archives, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, zeros: bytes
) -> None:
    monkeypatch.setattr(_archive, "_check_declared", lambda entry, meter: None)
    archive = archives.zip([("zeros.jpg", zeros)])
    packed = zipfile.ZipFile(archive).infolist()[0].compress_size
    written: list[int] = []
    remove = _archive._remove

    def spy(created: list[Path]) -> None:
        written.extend(p.stat().st_size for p in created if p.is_file())
        remove(created)

    monkeypatch.setattr(_archive, "_remove", spy)
    with pytest.raises(PayloadTooLargeError, match="decompression bomb"):
        safe_extract(archive, sandbox.dest)
    assert written and written[0] <= max(packed * 200, MiB)
    sandbox.assert_untouched()


@pytest.mark.parametrize("kind", KINDS)
def test_huge_member_list_is_refused_before_reading_it(
    archives: Archives, sandbox: Sandbox, kind: str
) -> None:
    """Junk entries are skipped, but listing them still costs memory: that is bounded too."""
    archive = archives.build(kind, [OK] + [(f"__MACOSX/._{i}", b"") for i in range(1100)])
    with pytest.raises(PayloadTooLargeError, match="lists more than 1004 entries") as caught:
        safe_extract(archive, sandbox.dest, limits=ExtractLimits(max_files=1))
    assert "KENNEL_DATASET_MAX_FILES" in (caught.value.hint or "")
    sandbox.assert_untouched()


def test_zip64_entry_count_is_read(
    archives: Archives, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past 65535 entries the count lives in the zip64 end record and the classic record
    says 0xFFFF; build such an archive cheaply with 8 entries."""
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 5)  # makes zipfile write zip64 records
    archive = archives.zip([(f"train/001.a/{i}.jpg", b"x") for i in range(8)])
    data = bytearray(archive.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 0xFFFF, 0xFFFF)
    archive.write_bytes(data)
    assert b"PK\x06\x06" in data
    assert _archive._zip_declared_entries(archive) == 8
    safe_extract(archive, sandbox.dest)
    assert len(files_under(sandbox.dest)) == 8
