"""The storage suite's database: every test that takes ``db`` runs once on each back end.

SQLite (the embedded default) gets a file copied from one migrated once per session;
PostgreSQL gets a fresh database cloned from a migrated template on a throw-away server
(``tests/_postgres.py``). Set ``KENNEL_TEST_BACKENDS=sqlite`` to run only one of them.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests._postgres import PostgresServer

from kennel.store import Database

BACKENDS = [b for b in os.environ.get("KENNEL_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
_numbers = itertools.count()


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database file, copied for each test (migrating takes ~0.1 s)."""
    path = tmp_path_factory.mktemp("template") / "k.db"
    template = Database(f"sqlite:///{path}")
    template.upgrade()
    template.engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    """A migrated PostgreSQL database that each test's database is cloned from."""
    template = Database(postgres.create_database("kennel_template"))
    template.upgrade()
    template.dispose()
    return "kennel_template"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path, migrated: Path) -> Database:
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        template = request.getfixturevalue("pg_template")
        database = Database(server.create_database(f"t{next(_numbers)}", template=template))
        request.addfinalizer(database.dispose)
    else:
        shutil.copyfile(migrated, tmp_path / "k.db")
        database = Database(f"sqlite:///{tmp_path / 'k.db'}")
    assert database.revision() == database.head_revision()
    return database


@pytest.fixture
def stored_bytes(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Database], bytes]:
    """What the back end keeps of ``db`` on disk, every byte (to look for secrets in clear)."""

    def read(database: Database) -> bytes:
        database.engine.dispose()
        if database.is_sqlite:
            return b"".join(p.read_bytes() for p in tmp_path.glob("k.db*"))
        server: PostgresServer = request.getfixturevalue("postgres")
        name = database.engine.url.database
        assert name is not None
        return server.stored_bytes(name)

    return read
