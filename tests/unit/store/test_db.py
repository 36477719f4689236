"""The storage suite's schema part: migrations and transactions on each back end."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError
from tests._postgres import PostgresServer

from kennel.store import Account, Base, Database, Dataset

_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A database with no schema yet, on each back end."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        database = Database(server.create_database(f"empty_{next(_numbers)}"))
    else:
        database = Database(f"sqlite:///{tmp_path}/k.db")
    request.addfinalizer(database.dispose)
    return database


def test_migrations_create_every_model_table(empty: Database) -> None:
    empty.upgrade()
    tables = set(inspect(empty.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert empty.revision() == empty.head_revision() == "0015"


def test_migration_columns_match_the_models(empty: Database) -> None:
    empty.upgrade()
    inspector = inspect(empty.engine)
    for name, table in Base.metadata.tables.items():
        migrated = {c["name"] for c in inspector.get_columns(name)}
        assert migrated == {c.name for c in table.columns}, name


def test_upgrade_is_idempotent_and_keeps_rows(empty: Database) -> None:
    empty.upgrade()
    with empty.session() as session:
        session.add(Account(account_id="123456789012", region="us-east-1"))
    empty.upgrade()
    with empty.session() as session:
        assert session.scalars(select(Account.account_id)).all() == ["123456789012"]


def test_every_migration_downgrades_to_nothing_and_back(empty: Database) -> None:
    """Each migration's downgrade runs on both back ends (a bad one is found here, not
    when someone needs to roll back)."""
    empty.upgrade()
    command.downgrade(empty._alembic_config(), "base")
    assert empty.revision() is None
    assert set(inspect(empty.engine).get_table_names()) <= {"alembic_version"}
    empty.upgrade()
    assert empty.revision() == empty.head_revision()


def test_session_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(Dataset(name="x", status="Creating", source="t"))
        session.flush()
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.get(Dataset, "x") is None


def test_a_duplicate_key_is_refused_and_the_first_row_kept(db: Database) -> None:
    with db.session() as session:
        session.add(Dataset(name="x", status="Creating", source="first"))
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(Dataset(name="x", status="Creating", source="second"))
    with db.session() as session:
        row = session.get(Dataset, "x")
        assert row is not None and row.source == "first"


def test_times_come_back_as_the_same_instant(db: Database) -> None:
    when = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    with db.session() as session:
        session.add(Dataset(name="t", status="Ready", source="s", created_at=when))
    with db.session() as session:
        row = session.get(Dataset, "t")
        assert row is not None
        back = row.created_at
        if back.tzinfo is None:  # stored as UTC without a zone, as the models document
            back = back.replace(tzinfo=UTC)
        assert back == when


def test_text_keeps_any_unicode(db: Database) -> None:
    source = "s3://bücket/ダックスフント/🐕 \"quoted\" 'and' \\ back" + "x" * 2000
    with db.session() as session:
        session.add(Dataset(name="u", status="Ready", source=source))
    with db.session() as session:
        assert session.scalars(select(Dataset.source).where(Dataset.name == "u")).one() == source


def test_concurrent_writers_each_see_their_update(db: Database) -> None:
    """Sessions from several threads, as the server's request handlers use them: every
    increment lands (no lost update, no "database is locked")."""
    with db.session() as session:
        session.add(Dataset(name="n", status="Ready", source="s", total_images=0))
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(20):
                with db.session() as session:
                    bumped = Dataset.total_images + 1
                    session.execute(
                        update(Dataset).where(Dataset.name == "n").values(total_images=bumped)
                    )
        except Exception as exc:  # noqa: BLE001 - reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    with db.session() as session:
        assert session.scalars(select(Dataset.total_images).where(Dataset.name == "n")).one() == 80


def test_timestamps_order_as_times(db: Database) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as session:
        for i in (3, 1, 2):
            session.add(
                Dataset(name=f"d{i}", status="Ready", source="s", created_at=base + timedelta(i))
            )
    with db.session() as session:
        names = session.scalars(select(Dataset.name).order_by(Dataset.created_at)).all()
    assert names == ["d1", "d2", "d3"]


def test_display_url_hides_passwords() -> None:
    db = Database.__new__(Database)
    db.url = "postgresql+psycopg://kennel:s3cret@db:5432/kennel"
    assert "s3cret" not in db.display_url
