"""make_demo: the digits set has the dogImages layout, decodes, and is reproducible."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kennel._errors import ValidationError
from kennel.datasets import SPLITS, DatasetSummary, make_demo, validate_layout
from kennel.datasets._demo import _source_plan

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DatasetSummary, float]:
    """The demo with its defaults, as the server makes it; also how long it took."""
    from sklearn.datasets import load_digits

    load_digits()  # the slow sklearn import is not the demo's own cost
    root = tmp_path_factory.mktemp("default") / "digits"
    started = time.perf_counter()
    summary = make_demo(root)
    return root, summary, time.perf_counter() - started


def test_default_demo_layout_and_counts(default_demo: tuple[Path, DatasetSummary, float]) -> None:
    root, summary, _ = default_demo
    expected = [f"{i + 1:03d}.{name}" for i, name in enumerate(DIGITS)]
    assert summary.classes == expected
    assert sorted(p.name for p in root.iterdir()) == sorted(SPLITS)
    for split, count in zip(SPLITS, (60, 15, 15), strict=True):
        assert sorted(p.name for p in (root / split).iterdir()) == expected
        assert summary.splits[split].counts == dict.fromkeys(expected, count)
        files = sorted((root / split / "001.zero").iterdir())
        assert [p.name for p in files] == [f"{i:04d}.jpg" for i in range(1, count + 1)]
    assert summary.total_images == 900
    assert summary == validate_layout(root)


def test_default_demo_images_are_64px_rgb_and_distinct(
    default_demo: tuple[Path, DatasetSummary, float],
) -> None:
    root, _, _ = default_demo
    images = sorted(root.rglob("*.jpg"))
    assert len(images) == 900
    for path in images:
        with Image.open(path) as img:
            assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (64, 64))
    assert len(set(digests(root).values())) == 900


def test_default_demo_is_quick(default_demo: tuple[Path, DatasetSummary, float]) -> None:
    """Aim is under 3 s; the bound leaves room for a loaded CI machine."""
    assert default_demo[2] < 10


def test_digits_are_recognisable(default_demo: tuple[Path, DatasetSummary, float]) -> None:
    """Images of the same digit look more alike than images of different digits.

    Guards against rendering that scrambles or blanks the digits: the mean "zero" and the
    mean "one" must differ clearly, and a nearest-mean classifier must mostly work.
    """
    root, summary, _ = default_demo

    def load(split: str, name: str) -> np.ndarray:
        files = sorted((root / split / name).iterdir())
        return np.stack([np.asarray(Image.open(p).convert("L"), dtype=float) for p in files])

    means = {c: load("train", c).mean(axis=0) for c in summary.classes}
    correct = total = 0
    for true in summary.classes:
        for image in load("test", true):
            guess = min(means, key=lambda c: float(((image - means[c]) ** 2).sum()))
            correct += guess == true
            total += 1
    assert correct / total > 0.5


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kwargs = {"image_size": 24, "per_class": (4, 2, 2), "classes": 3}
    make_demo(tmp_path / "a", seed=7, **kwargs)  # type: ignore[arg-type]
    make_demo(tmp_path / "b", seed=7, **kwargs)  # type: ignore[arg-type]
    make_demo(tmp_path / "c", seed=8, **kwargs)  # type: ignore[arg-type]
    a, b, c = (digests(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_small_demo_options(tmp_path: Path) -> None:
    summary = make_demo(tmp_path / "d", image_size=16, per_class=(5, 1, 2), classes=3)
    assert summary.classes == ["001.zero", "002.one", "003.two"]
    assert {s: sum(summary.splits[s].counts.values()) for s in SPLITS} == {
        "train": 15,
        "valid": 3,
        "test": 6,
    }
    with Image.open(next((tmp_path / "d" / "valid" / "002.one").iterdir())) as img:
        assert (img.mode, img.size) == ("RGB", (16, 16))


@pytest.mark.parametrize("per_class", [(60, 15, 15), (150, 40, 40), (1000, 300, 300)])
def test_source_digits_are_disjoint_across_splits(per_class: tuple[int, int, int]) -> None:
    """Even when a split wants more images than there are digits to spare."""
    from sklearn.datasets import load_digits

    labels = np.asarray(load_digits().target)
    plan = _source_plan(labels, per_class, 10, seed=3)
    for digit in range(10):
        used = [set(plan[split][digit]) for split in SPLITS]
        assert all(labels[i] == digit for chosen in used for i in chosen)
        assert not (used[0] & used[1]) and not (used[0] & used[2]) and not (used[1] & used[2])
        for split, want in zip(SPLITS, per_class, strict=True):
            assert len(plan[split][digit]) == want
        if sum(per_class) <= 174:  # the rarest digit has 174 samples: no reuse needed
            assert sum(len(u) for u in used) == sum(per_class)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_size": 4},
        {"image_size": 5000},
        {"per_class": (10, 0, 5)},
        {"per_class": (10, 5)},
        {"classes": 0},
        {"classes": 11},
        {"seed": -1},
    ],
)
def test_bad_arguments_are_rejected(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make_demo(tmp_path / "d", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "d").exists()


def test_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("x")
    with pytest.raises(ValidationError, match="not an empty folder"):
        make_demo(tmp_path / "d", per_class=(1, 1, 1), classes=1)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["mine.txt"]
