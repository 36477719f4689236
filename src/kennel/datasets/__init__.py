"""Data sets: labelled images in the ``train/ valid/ test/`` class-folder layout.

``safe_extract`` unpacks an uploaded archive without letting it escape its folder or
exhaust the disk, ``find_dataset_root`` + ``validate_layout`` check it is a usable image
classification set (and decode every image), and ``make_demo`` renders a small set from
scikit-learn's digits so everything can run without downloading the dog-breed images.
"""

from kennel.datasets._archive import ExtractLimits, archive_kind, safe_extract
from kennel.datasets._demo import make_demo
from kennel.datasets._layout import (
    IMAGE_SUFFIXES,
    SPLITS,
    DatasetSummary,
    SplitSummary,
    find_dataset_root,
    validate_layout,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "SPLITS",
    "DatasetSummary",
    "ExtractLimits",
    "SplitSummary",
    "archive_kind",
    "find_dataset_root",
    "make_demo",
    "safe_extract",
    "validate_layout",
]
