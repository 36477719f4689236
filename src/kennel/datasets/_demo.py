"""The demo data set: scikit-learn's handwritten digits rendered as small RGB images.

It lets every part of kennel (training, tuning, endpoints) run end to end in seconds
without downloading the dog-breed set. The digits ship inside scikit-learn, so nothing
is fetched. Folder and class names mimic dogImages (``train/001.zero/0001.jpg``) so the
same code paths are exercised.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from kennel._errors import ValidationError
from kennel.datasets._layout import SPLITS, DatasetSummary, validate_layout

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

FloatArray = npt.NDArray[np.float64]


def class_name(digit: int) -> str:
    """``001.zero`` ... ``010.nine``: numbered like the dog breeds, so they sort the same."""
    return f"{digit + 1:03d}.{DIGIT_NAMES[digit]}"


def make_demo(
    dest: Path,
    *,
    image_size: int = 64,
    per_class: tuple[int, int, int] = (60, 15, 15),
    seed: int = 0,
    classes: int = 10,
) -> DatasetSummary:
    """Write ``dest/{train,valid,test}/NNN.name/NNNN.jpg`` and return its validated summary.

    ``per_class`` is the number of images per class in train, valid and test. The same
    seed always gives byte-identical files. Source digits are disjoint across splits
    (when a split asks for more than its share, its own digits are reused with different
    augmentations), so validation accuracy means something.
    """
    _check_args(image_size, per_class, seed, classes)
    _check_empty(dest)
    images, labels = _load_digits()
    plan = _source_plan(labels, per_class, classes, seed)
    for split_index, split in enumerate(SPLITS):
        for digit in range(classes):
            folder = dest / split / class_name(digit)
            folder.mkdir(parents=True)
            rng = np.random.default_rng((seed, split_index, digit))
            _write_class(folder, images[plan[split][digit]], image_size, rng)
    return validate_layout(dest)


def _write_class(folder: Path, digits: FloatArray, size: int, rng: np.random.Generator) -> None:
    """Render and save in chunks, so memory stays small whatever the counts and size."""
    chunk = max(1, 2**20 // (size * size))
    for start in range(0, len(digits), chunk):
        rendered = _render(digits[start : start + chunk], size, rng)
        for offset, pixels in enumerate(rendered, start + 1):
            Image.fromarray(pixels).save(folder / f"{offset:04d}.jpg", quality=90)


def _check_args(image_size: int, per_class: tuple[int, int, int], seed: int, classes: int) -> None:
    if not 8 <= image_size <= 1024:
        raise ValidationError(
            f"image_size {image_size} is out of range.", hint="Use 8 to 1024 pixels."
        )
    if len(per_class) != len(SPLITS) or min(per_class) < 1:
        raise ValidationError(
            f"per_class {per_class} is not valid.",
            hint="Give three counts of at least 1: images per class in train, valid, test.",
        )
    if not 1 <= classes <= len(DIGIT_NAMES):
        raise ValidationError(f"classes {classes} is out of range.", hint="Use 1 to 10 classes.")
    if seed < 0:
        raise ValidationError(f"seed {seed} is negative.", hint="Use a seed of 0 or more.")


def _check_empty(dest: Path) -> None:
    """Refuse to mix the demo into an existing folder: validation would blame the demo."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValidationError(
            f"{dest} already exists and is not an empty folder.",
            hint="Pick a new output folder for the demo data set.",
        )


def _load_digits() -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The 1797 8x8 digits (values 0..16) bundled with scikit-learn, and their labels."""
    from sklearn.datasets import load_digits  # slow import; only the demo needs it

    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def _source_plan(
    labels: npt.NDArray[np.int64], per_class: tuple[int, int, int], classes: int, seed: int
) -> dict[str, list[list[int]]]:
    """split -> digit -> indices into the source images, disjoint between splits."""
    rng = np.random.default_rng(seed)
    plan: dict[str, list[list[int]]] = {split: [] for split in SPLITS}
    for digit in range(classes):
        pool = [int(i) for i in rng.permutation(np.flatnonzero(labels == digit))]
        for split, indices in zip(SPLITS, _split_pool(pool, per_class), strict=True):
            plan[split].append(indices)
    return plan


def _split_pool(pool: list[int], wanted: tuple[int, ...]) -> list[list[int]]:
    """A disjoint share of ``pool`` per split, cycled when a split wants more than that."""
    shares = list(wanted)
    if sum(wanted) > len(pool):
        shares = [max(1, len(pool) * w // sum(wanted)) for w in wanted]
        while sum(shares) > len(pool):
            shares[shares.index(max(shares))] -= 1
    out: list[list[int]] = []
    start = 0
    for want, share in zip(wanted, shares, strict=True):
        own = pool[start : start + share]
        start += share
        out.append([own[i % share] for i in range(want)])
    return out


def _render(digits: FloatArray, size: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """Upscale N 8x8 digits to N x size x size RGB, each with its own tint and shift.

    One batch of matrix products instead of N rounds of per-image work: this is what
    keeps the demo set at a second or so.
    """
    count = len(digits)
    reach = max(1, size // 16)
    shifts = rng.integers(-reach, reach + 1, size=(count, 2))
    paper = rng.uniform(0.0, 0.35, size=(count, 1, 1, 3))
    colour = rng.uniform(0.55, 1.0, size=(count, 1, 1, 3))
    rows = np.stack([_upscale_matrix(size, int(dy)) for dy in shifts[:, 1]])
    cols = np.stack([_upscale_matrix(size, int(dx)) for dx in shifts[:, 0]])
    ink = np.clip(rows @ (digits / 16.0) @ cols.transpose(0, 2, 1), 0.0, 1.0)
    rgb = paper + (colour - paper) * ink[..., None]
    return np.asarray(np.round(rgb * 255), dtype=np.uint8)


@lru_cache(maxsize=64)
def _upscale_matrix(size: int, shift: int) -> FloatArray:
    """``size`` x 8 bilinear interpolation weights, moved by ``shift`` output pixels.

    ``M @ digit @ M'.T`` upscales and shifts in one go; rows that the shift uncovers
    stay zero, i.e. background.
    """
    out = np.zeros((size, 8))
    where = np.arange(size) - shift
    source = np.clip((where + 0.5) * 8 / size - 0.5, 0, 7)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, 7)
    weight = source - low
    rows = np.arange(size)
    np.add.at(out, (rows, low), 1 - weight)
    np.add.at(out, (rows, high), weight)
    out[(where < 0) | (where >= size)] = 0
    out.setflags(write=False)
    return out
