"""Model monitoring: schedules (with their alarm) and executions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_schedules",
        sa.Column("endpoint", sa.String(63), primary_key=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("alarm", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_run_at", _TS, nullable=True),
    )
    op.create_table(
        "monitoring_executions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("endpoint", sa.String(63), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("window_end", _TS, nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("report_key", sa.Text(), nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
    )
    op.create_index(
        "ix_monitoring_executions_endpoint_started",
        "monitoring_executions",
        ["endpoint", "started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_monitoring_executions_endpoint_started", "monitoring_executions")
    op.drop_table("monitoring_executions")
    op.drop_table("monitoring_schedules")
