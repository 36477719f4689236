"""validate_layout and find_dataset_root: every problem is named, a good set is counted."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from kennel._errors import ValidationError
from kennel.datasets import SPLITS, find_dataset_root, validate_layout

CLASSES = ["001.zero", "002.one", "003.two", "004.three"]
PER_SPLIT = {"train": 3, "valid": 2, "test": 2}


def problems_of(root: Path, *, max_problems: int = 20) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_layout(root, max_problems=max_problems)
    assert caught.value.status == 400 and caught.value.hint
    return caught.value


def first_image(folder: Path) -> Path:
    return sorted(folder.iterdir())[0]


# A valid set ----------------------------------------------------------------------------


def test_valid_set_is_counted(demo_set: Path) -> None:
    calls: list[tuple[int, int]] = []
    summary = validate_layout(demo_set, progress=lambda d, t: calls.append((d, t)))

    assert summary.root == demo_set
    assert summary.classes == CLASSES
    assert list(summary.splits) == list(SPLITS)
    for split, count in PER_SPLIT.items():
        assert summary.splits[split].name == split
        assert summary.splits[split].counts == dict.fromkeys(CLASSES, count)
    assert summary.total_images == 4 * 7
    images = list(demo_set.rglob("*.jpg"))
    assert summary.total_bytes == sum(p.stat().st_size for p in images)
    assert calls[0] == (0, 28) and calls[-1] == (28, 28)


def test_summary_to_dict_is_json(demo_set: Path) -> None:
    info = validate_layout(demo_set).to_dict()
    assert json.loads(json.dumps(info)) == info
    assert info["num_classes"] == 4 and info["classes"] == CLASSES
    assert info["splits"]["valid"] == {"counts": dict.fromkeys(CLASSES, 2), "images": 8}
    assert info["total_images"] == 28


def test_hidden_files_and_os_junk_are_ignored(dataset: Path) -> None:
    (dataset / ".DS_Store").write_bytes(b"finder")
    (dataset / "README.md").write_text("top-level notes are allowed")
    (dataset / "train" / ".DS_Store").write_bytes(b"finder")
    (dataset / "train" / "__MACOSX").mkdir()
    (dataset / "train" / "__MACOSX" / "junk.bin").write_bytes(b"junk")
    (dataset / "train" / "001.zero" / "._0001.jpg").write_bytes(b"apple double")
    (dataset / "valid" / "002.one" / "Thumbs.db").write_bytes(b"windows")
    summary = validate_layout(dataset)
    assert summary.total_images == 28 and summary.classes == CLASSES


def test_uppercase_suffixes_are_images(dataset: Path) -> None:
    image = first_image(dataset / "train" / "001.zero")
    image.rename(image.with_suffix(".JPG"))
    assert validate_layout(dataset).splits["train"].counts["001.zero"] == 3


# Each problem is named ---------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
def test_missing_split(dataset: Path, split: str) -> None:
    shutil.rmtree(dataset / split)
    err = problems_of(dataset)
    assert f"{split}/: missing split folder" in err.message


def test_split_without_class_folders(dataset: Path) -> None:
    for folder in (dataset / "test").iterdir():
        shutil.rmtree(folder)
    err = problems_of(dataset)
    assert "test/: has no class folders" in err.message
    assert "missing class" not in err.message  # not also blamed for each class


def test_class_missing_from_one_split(dataset: Path) -> None:
    shutil.rmtree(dataset / "test" / "003.two")
    err = problems_of(dataset)
    assert "test/: missing class folder(s) 003.two (present in train/, valid/)" in err.message
    assert err.message.count("missing class") == 1


def test_extra_class_in_one_split(dataset: Path) -> None:
    extra = dataset / "train" / "005.extra"
    extra.mkdir()
    shutil.copy(first_image(dataset / "train" / "001.zero"), extra / "a.jpg")
    err = problems_of(dataset)
    assert "valid/: missing class folder(s) 005.extra" in err.message
    assert "test/: missing class folder(s) 005.extra" in err.message


def test_empty_class_folder(dataset: Path) -> None:
    for image in (dataset / "train" / "002.one").iterdir():
        image.unlink()
    err = problems_of(dataset)
    assert "train/002.one/: empty class folder" in err.message


def test_non_image_file(dataset: Path) -> None:
    (dataset / "valid" / "004.three" / "labels.csv").write_text("a,b\n")
    err = problems_of(dataset)
    assert "valid/004.three/labels.csv: not an image (suffix '.csv')" in err.message


def test_stray_file_at_split_level(dataset: Path) -> None:
    shutil.copy(first_image(dataset / "train" / "001.zero"), dataset / "train" / "loose.jpg")
    err = problems_of(dataset)
    assert "train/loose.jpg: stray file" in err.message


def test_folder_inside_a_class(dataset: Path) -> None:
    (dataset / "train" / "001.zero" / "more").mkdir()
    err = problems_of(dataset)
    assert "train/001.zero/more/: unexpected folder" in err.message


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:40], id="header-only"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated-half"),
        pytest.param(lambda data: data[:-10], id="truncated-tail"),
        pytest.param(lambda data: b"GIF89a but not really" * 5, id="garbage"),
    ],
)
def test_corrupt_image_is_named(dataset: Path, damage: Callable[[bytes], bytes]) -> None:
    victim = first_image(dataset / "train" / "002.one")
    victim.write_bytes(damage(victim.read_bytes()))
    err = problems_of(dataset)
    assert f"train/002.one/{victim.name}: cannot be decoded as an image" in err.message
    assert str(dataset) not in err.message  # no server paths in user-facing messages


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas: the decompression-bomb shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_image_is_refused(dataset: Path) -> None:
    (dataset / "test" / "001.zero" / "bomb.png").write_bytes(png_claiming(40_000, 40_000))
    err = problems_of(dataset)
    assert "test/001.zero/bomb.png: too many pixels" in err.message


def test_image_over_configured_pixel_limit_is_refused(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between Pillow's warning and error thresholds Pillow only warns: we refuse."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # 16x16 = 256: warning zone
    with pytest.warns(Image.DecompressionBombWarning):
        err = problems_of(dataset, max_problems=100)
    assert "train/001.zero/0001.jpg: 16x16 pixels is over the limit of 200 pixels" in err.message


def test_all_problems_are_reported_together(dataset: Path) -> None:
    shutil.rmtree(dataset / "valid")
    (dataset / "train" / "001.zero" / "notes.txt").write_text("x")
    victim = first_image(dataset / "test" / "004.three")
    victim.write_bytes(victim.read_bytes()[:100])
    err = problems_of(dataset)
    assert err.message.startswith("The data set has 3 problems:")
    assert "valid/: missing split folder" in err.message
    assert "train/001.zero/notes.txt: not an image" in err.message
    assert f"test/004.three/{victim.name}: cannot be decoded" in err.message
    assert len(err.details["problems"]) == 3


def test_problem_list_is_capped(dataset: Path) -> None:
    for i in range(30):
        (dataset / "train" / "003.two" / f"note{i:02d}.txt").write_text("x")
    err = problems_of(dataset, max_problems=5)
    assert err.message.startswith("The data set has 30 problems:")
    assert err.message.count("not an image") == 5
    assert err.message.rstrip().endswith("... and 25 more")
    assert len(err.details["problems"]) == 5


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        validate_layout(tmp_path / "nope")


# Finding the root ------------------------------------------------------------------------


def make_splits(folder: Path) -> Path:
    for split in SPLITS:
        (folder / split / "001.a").mkdir(parents=True)
    return folder


def test_root_is_the_folder_itself(tmp_path: Path) -> None:
    assert find_dataset_root(make_splits(tmp_path)) == tmp_path


def test_root_inside_one_top_folder(tmp_path: Path) -> None:
    root = make_splits(tmp_path / "dogImages")
    (tmp_path / "__MACOSX" / "dogImages").mkdir(parents=True)
    (tmp_path / ".DS_Store").write_bytes(b"x")
    (tmp_path / "LICENSE.txt").write_text("CC")
    assert find_dataset_root(tmp_path) == root


def test_root_beside_other_folders(tmp_path: Path) -> None:
    root = make_splits(tmp_path / "dogImages")
    (tmp_path / "docs").mkdir()
    assert find_dataset_root(tmp_path) == root


def test_root_under_wrapper_folders(tmp_path: Path) -> None:
    root = make_splits(tmp_path / "export" / "v2" / "dogImages")
    assert find_dataset_root(tmp_path) == root


def test_root_with_a_missing_split_is_still_found(tmp_path: Path) -> None:
    """So that validation can say which split is missing rather than "nothing found"."""
    (tmp_path / "dogImages" / "train" / "001.a").mkdir(parents=True)
    assert find_dataset_root(tmp_path) == tmp_path / "dogImages"


def test_no_root_lists_what_was_found(tmp_path: Path) -> None:
    (tmp_path / "images" / "001.a").mkdir(parents=True)
    (tmp_path / "labels.csv").write_text("x")
    (tmp_path / "other").mkdir()
    with pytest.raises(ValidationError) as caught:
        find_dataset_root(tmp_path)
    assert "images/, labels.csv, other/" in caught.value.message
    assert "train/" in caught.value.message and "dogImages/train/001" in (caught.value.hint or "")


def test_empty_folder_has_no_root(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="empty"):
        find_dataset_root(tmp_path)


def test_two_data_sets_side_by_side(tmp_path: Path) -> None:
    make_splits(tmp_path / "one")
    make_splits(tmp_path / "two")
    with pytest.raises(ValidationError, match="several data sets"):
        find_dataset_root(tmp_path)
