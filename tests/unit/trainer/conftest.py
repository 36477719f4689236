"""Fixtures for the trainer tests: a tiny demo set and a clean environment for runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.trainer._helpers import IMAGE_SIZE, trainer_env

from kennel.datasets import make_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 classes of 32 px digits: 20 train, 6 valid, 6 test images per class."""
    root = tmp_path_factory.mktemp("trainer-demo") / "digits"
    make_demo(root, image_size=IMAGE_SIZE, per_class=(20, 6, 6))
    return root


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """A subprocess environment with no SM_*/DDP variables and an empty torch hub."""
    return trainer_env(tmp_path / "torch-home")
