"""training jobs: debugger and profiler configuration, rule evaluation statuses

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults so rows of jobs made before this revision read as "none configured".
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("debugger_config", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("profiler_config", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("rule_evaluations", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("rule_evaluations")
        batch.drop_column("profiler_config")
        batch.drop_column("debugger_config")
