"""Data capture on endpoint configs (SageMaker's DataCaptureConfig)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("endpoint_configs") as batch:
        batch.add_column(sa.Column("data_capture", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoint_configs") as batch:
        batch.drop_column("data_capture")
