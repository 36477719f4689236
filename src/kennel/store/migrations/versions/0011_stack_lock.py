"""stack lock (one ``kennel up``/``down`` at a time per stack; a killed one's lock expires)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_COLUMNS = (
    ("lock_owner", sa.String(64)),
    ("lock_holder", sa.Text()),
    ("lock_operation", sa.String(8)),
    ("lock_acquired_at", _TS),
    ("lock_renewed_at", _TS),
    ("lock_expires_at", _TS),
    ("lock_lease_seconds", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("stacks") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stacks") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
