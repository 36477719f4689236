"""notebook instances (``kennel notebook``: JupyterLab recorded with its state and cost)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notebook_instances",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("arn", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("instance_type", sa.String(32), nullable=False),
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("client", sa.JSON(), nullable=False),
        sa.Column("running_seconds", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_modified_at", _TS, nullable=False),
        sa.Column("last_started_at", _TS, nullable=True),
        sa.Column("last_heartbeat_at", _TS, nullable=True),
        sa.Column("stopped_at", _TS, nullable=True),
    )
    op.create_index("ix_notebook_instances_status", "notebook_instances", ["status"])


def downgrade() -> None:
    op.drop_index("ix_notebook_instances_status", "notebook_instances")
    op.drop_table("notebook_instances")
