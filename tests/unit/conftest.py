"""A real, migrated SQLite database per test, copied from one migrated once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kennel.store import Database


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database file, copied for each test (migrating takes ~0.1 s)."""
    path = tmp_path_factory.mktemp("template") / "k.db"
    template = Database(f"sqlite:///{path}")
    template.upgrade()
    template.engine.dispose()
    return path


@pytest.fixture
def db(tmp_path: Path, migrated: Path) -> Database:
    shutil.copyfile(migrated, tmp_path / "k.db")
    database = Database(f"sqlite:///{tmp_path / 'k.db'}")
    assert database.revision() == database.head_revision()
    return database
