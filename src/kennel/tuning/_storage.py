"""Where Optuna keeps its studies: kennel's database, beside (not inside) kennel's tables.

Optuna's RDB storage migrates its schema with Alembic and, like kennel, keeps the
revision in a table named ``alembic_version`` (kennel holds ``0007`` there, Optuna
``v3.2.0.a``). In one schema the two would overwrite each other's revision and each
would then refuse or re-run the other's migrations. So:

- SQLite (the embedded default): a sibling file ``optuna.db`` next to ``kennel.db``, in
  the kennel home. Same lifetime and backup story, no shared tables.
- PostgreSQL (a cluster): the same database, in its own schema ``optuna`` (created on
  first use), selected with the connection's ``search_path``.

Every other backend is refused with a message rather than guessed at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from kennel._errors import ValidationError

OPTUNA_SCHEMA = "optuna"


def storage_url(database_url: str) -> tuple[str, dict[str, Any]]:
    """Optuna's storage URL and engine options, derived from kennel's database URL."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            # An in-memory kennel (tests) gets an in-memory Optuna: nothing to share.
            return "sqlite:///:memory:", {}
        path = Path(url.database).with_name("optuna.db")
        # A generous timeout: trials of several tuning jobs write from several threads.
        return f"sqlite:///{path}", {"connect_args": {"timeout": 30}}
    if backend == "postgresql":
        return url.render_as_string(hide_password=False), {
            "connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}
        }
    raise ValidationError(
        f"Tuning jobs cannot keep Optuna studies in a {backend} database.",
        hint="Use SQLite (the default) or PostgreSQL for KENNEL_DATABASE_URL.",
    )


def open_storage(database_url: str) -> Any:
    """An Optuna RDBStorage for kennel's database (its schema is created if missing)."""
    import optuna
    from sqlalchemy import create_engine, text

    url, engine_kwargs = storage_url(database_url)
    if url == "sqlite:///:memory:":
        # Each SQLite connection would get its own empty memory database: keep it in Python.
        return optuna.storages.InMemoryStorage()
    if make_url(url).get_backend_name() == "postgresql":
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
        finally:
            engine.dispose()
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
