from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from kennel.store import Account, Base, Database, Dataset


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'k.db'}")
    database.upgrade()
    return database


def test_migrations_create_every_model_table(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert db.revision() == db.head_revision() == "0011"


def test_migration_columns_match_the_models(db: Database) -> None:
    inspector = inspect(db.engine)
    for name, table in Base.metadata.tables.items():
        migrated = {c["name"] for c in inspector.get_columns(name)}
        assert migrated == {c.name for c in table.columns}, name


def test_upgrade_is_idempotent_and_keeps_rows(db: Database) -> None:
    with db.session() as session:
        session.add(Account(account_id="123456789012", region="us-east-1"))
    db.upgrade()
    with db.session() as session:
        assert session.scalars(select(Account.account_id)).all() == ["123456789012"]


def test_session_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(Dataset(name="x", status="Creating", source="t"))
        session.flush()
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.get(Dataset, "x") is None


def test_display_url_hides_passwords() -> None:
    db = Database.__new__(Database)
    db.url = "postgresql+psycopg://kennel:s3cret@db:5432/kennel"
    assert "s3cret" not in db.display_url
