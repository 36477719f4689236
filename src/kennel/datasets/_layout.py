"""The data set layout: ``train/ valid/ test/``, each with the same class folders of images.

This is the layout of the dog-breed set (``dogImages/train/001.Affenpinscher/*.jpg``) and
of torchvision's ImageFolder. Validation collects every problem it finds (up to a limit)
and reports them together, so a user fixes a broken upload in one round rather than one
error per attempt. Every image is decoded once here, so training never meets a file it
cannot read hours into a job.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from PIL import Image

from kennel._errors import ValidationError

SPLITS = ("train", "valid", "test")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})

Progress = Callable[[int, int], None]

_IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db"})
_MAX_WRAPPER_FOLDERS = 3
_DEFAULT_MAX_PIXELS = 89_478_485
"""Pillow's own default, used when Image.MAX_IMAGE_PIXELS has been set to None."""
_DRAFT_SIZE = (64, 64)
_BATCH = 256
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
)
"""What Pillow raises for broken files: plugins signal bad data in all of these ways."""
_EXAMPLE = "dogImages/train/001.Affenpinscher/Affenpinscher_00001.jpg"
_LAYOUT_HINT = (
    "Expected train/, valid/ and test/ folders, each holding the same class folders of "
    f"images, e.g. {_EXAMPLE}. Image suffixes: {', '.join(sorted(IMAGE_SUFFIXES))}."
)


@dataclass(frozen=True)
class SplitSummary:
    name: str
    counts: dict[str, int]
    """Class folder name -> number of images."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class DatasetSummary:
    root: Path
    classes: list[str]
    """Sorted class folder names, e.g. ``001.Affenpinscher``; index = label."""
    splits: dict[str, SplitSummary]
    total_images: int
    total_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the API.

        ``root`` is left out: it is a path on the server (often a staging folder that is
        gone by the time a client reads this) and means nothing to API callers.
        """
        return {
            "classes": list(self.classes),
            "num_classes": len(self.classes),
            "splits": {
                name: {"counts": dict(split.counts), "images": split.total}
                for name, split in self.splits.items()
            },
            "total_images": self.total_images,
            "total_bytes": self.total_bytes,
        }


# Finding the root --------------------------------------------------------------------


def find_dataset_root(folder: Path) -> Path:
    """The folder holding ``train/ valid/ test/``: ``folder`` itself or the one inside it.

    Archives are usually packed with a top folder (``dogImages/train/...``), sometimes
    without, sometimes with a wrapper or two more; macOS junk next to it is ignored. A
    folder with only some of the splits still counts, so validation can say which one
    is missing rather than "nothing found".
    """
    current = folder
    for _ in range(_MAX_WRAPPER_FOLDERS + 1):
        if _has_split(current):
            return current
        subfolders = [p for p in _visible(current) if p.is_dir()]
        holders = [p for p in subfolders if _has_split(p)]
        if len(holders) > 1:
            names = ", ".join(f"{p.name}/" for p in holders)
            raise ValidationError(
                f"Found several data sets side by side ({names}); expected one.",
                hint="Upload one data set per archive. " + _LAYOUT_HINT,
            )
        if holders:
            return holders[0]
        if len(subfolders) != 1:
            break
        current = subfolders[0]
    raise ValidationError(
        f"No train/, valid/ or test/ folder found. At the top level: {_listing(folder)}.",
        hint=_LAYOUT_HINT,
    )


def _has_split(folder: Path) -> bool:
    return any((folder / split).is_dir() for split in SPLITS)


def _visible(folder: Path) -> list[Path]:
    """Entries of ``folder`` that are not hidden files or OS junk, sorted by name."""
    return sorted(p for p in folder.iterdir() if not _ignored(p.name))


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _listing(folder: Path, shown: int = 10) -> str:
    entries = [f"{p.name}/" if p.is_dir() else p.name for p in _visible(folder)]
    if not entries:
        return "nothing (the archive is empty)"
    more = f" and {len(entries) - shown} more" if len(entries) > shown else ""
    return ", ".join(entries[:shown]) + more


# Validation ----------------------------------------------------------------------------


class _Problems:
    """Collects problem lines, keeping the first ``limit`` and counting the rest."""

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = max(1, limit)
        self.shown: list[str] = []
        self.count = 0

    def add(self, path: Path, text: str, *, folder: bool | None = None) -> None:
        """Record ``text`` about ``path`` (shown relative to the root, folders with a /)."""
        self.count += 1
        if len(self.shown) < self.limit:
            name = path.relative_to(self.root).as_posix()
            slash = "/" if (path.is_dir() if folder is None else folder) else ""
            self.shown.append(f"{name}{slash}: {text}")

    def raise_if_any(self) -> None:
        if not self.count:
            return
        lines = [f"  - {line}" for line in self.shown]
        if self.count > len(self.shown):
            lines.append(f"  ... and {self.count - len(self.shown)} more")
        noun = "problem" if self.count == 1 else "problems"
        raise ValidationError(
            f"The data set has {self.count} {noun}:\n" + "\n".join(lines),
            hint=_LAYOUT_HINT,
            problems=list(self.shown),
        )


Found: TypeAlias = dict[str, dict[str, list[Path]]]
"""split -> class -> image files, for the splits that exist."""


def validate_layout(
    root: Path, *, progress: Progress | None = None, max_problems: int = 20
) -> DatasetSummary:
    """Check the layout and decode every image; one ValidationError lists all problems.

    ``progress(done_images, total_images)`` is called while images are decoded, which is
    the slow part.
    """
    if not root.is_dir():
        raise ValidationError(f"The data set folder {root} does not exist.", hint=_LAYOUT_HINT)
    problems = _Problems(root, max_problems)
    found: Found = {}
    for split in SPLITS:
        classes = _scan_split(root / split, problems)
        if classes is not None:
            found[split] = classes
    _check_classes(root, found, problems)
    images = [path for classes in found.values() for files in classes.values() for path in files]
    total_bytes = _check_images(images, problems, progress)
    problems.raise_if_any()
    return _summarize(root, found, total_bytes)


def _scan_split(folder: Path, problems: _Problems) -> dict[str, list[Path]] | None:
    """Class folder -> images of one split; None if the split is missing."""
    if not folder.is_dir():
        problems.add(
            folder, "missing split folder (every data set needs train/, valid/, test/)", folder=True
        )
        return None
    classes: dict[str, list[Path]] = {}
    for entry in _visible(folder):
        if entry.is_dir():
            classes[entry.name] = _scan_class(entry, problems)
        else:
            problems.add(
                entry,
                f"stray file; images belong in a class folder such as {folder.name}/<class>/",
            )
    if not classes:
        problems.add(folder, "has no class folders")
    return classes


def _scan_class(folder: Path, problems: _Problems) -> list[Path]:
    images: list[Path] = []
    for entry in _visible(folder):
        if entry.is_dir():
            problems.add(entry, "unexpected folder; put the images directly in the class folder")
        elif entry.suffix.lower() not in IMAGE_SUFFIXES:
            problems.add(entry, f"not an image (suffix {entry.suffix or 'none'!r})")
        else:
            images.append(entry)
    if not images:
        problems.add(folder, "empty class folder (no images)")
    return images


def _check_classes(root: Path, found: Found, problems: _Problems) -> None:
    """Every split must have the same classes, or labels would not line up."""
    present = {split: set(classes) for split, classes in found.items() if classes}
    everywhere = set().union(*present.values()) if present else set()
    for split, classes in present.items():
        missing = sorted(everywhere - classes)
        if missing:
            others = ", ".join(f"{s}/" for s in present if s != split)
            problems.add(
                root / split,
                f"missing class folder(s) {_names(missing)} (present in {others})",
            )


def _names(items: list[str], shown: int = 10) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _check_images(images: list[Path], problems: _Problems, progress: Progress | None) -> int:
    """Decode every image (in threads: Pillow releases the GIL); returns their total size."""
    total = len(images)
    done = 0
    size = 0
    if progress:
        progress(0, total)
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in _batches(images, _BATCH):
            for path, (nbytes, problem) in zip(batch, pool.map(_inspect, batch), strict=True):
                size += nbytes
                if problem:
                    problems.add(path, problem)
                done += 1
                if progress:
                    progress(done, total)
    return size


def _batches(items: list[Path], size: int) -> Iterable[list[Path]]:
    """Bounded batches, so a huge set does not queue one future per image at once."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _inspect(path: Path) -> tuple[int, str | None]:
    """File size and, if the image cannot be used, why."""
    return path.stat().st_size, _decode_problem(path)


def _decode_problem(path: Path) -> str | None:
    """Open + verify (structure, checksums), then reopen + load (catches truncation).

    JPEGs are loaded in draft mode (DCT scaling): still reads every byte, decodes faster.
    """
    limit = Image.MAX_IMAGE_PIXELS or _DEFAULT_MAX_PIXELS
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > limit:
                return (
                    f"{width}x{height} pixels is over the limit of {limit} pixels "
                    "(decompression-bomb guard)"
                )
            img.verify()
        with Image.open(path) as img:
            img.draft(None, _DRAFT_SIZE)
            img.load()
    except Image.DecompressionBombError as exc:
        return f"too many pixels, refused as a possible decompression bomb ({exc})"
    except _DECODE_ERRORS as exc:
        detail = str(exc).replace(str(path), path.name) or type(exc).__name__
        return f"cannot be decoded as an image ({detail})"
    return None


def _summarize(root: Path, found: Found, total_bytes: int) -> DatasetSummary:
    classes = sorted({name for split in found.values() for name in split})
    splits = {
        split: SplitSummary(split, {name: len(found[split][name]) for name in classes})
        for split in SPLITS
    }
    return DatasetSummary(
        root=root,
        classes=classes,
        splits=splits,
        total_images=sum(s.total for s in splits.values()),
        total_bytes=total_bytes,
    )
