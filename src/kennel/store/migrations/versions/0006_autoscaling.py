"""autoscaling: scalable targets, scaling policies, scheduled actions, scaling activities

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _target_key() -> sa.Column[str]:
    return sa.Column(
        "resource_id",
        sa.String(256),
        sa.ForeignKey("scaling_targets.resource_id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "scaling_targets",
        sa.Column("resource_id", sa.String(256), primary_key=True),
        sa.Column("service_namespace", sa.String(32), nullable=False),
        sa.Column("scalable_dimension", sa.String(64), nullable=False),
        sa.Column("min_capacity", sa.Integer(), nullable=False),
        sa.Column("max_capacity", sa.Integer(), nullable=False),
        sa.Column("role_arn", sa.String(256), nullable=False),
        sa.Column("suspended_state", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("arn", sa.String(256), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "scaling_policies",
        sa.Column("arn", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        _target_key(),
        sa.Column("policy_type", sa.String(32), nullable=False),
        sa.Column("configuration", sa.JSON(), nullable=False),
        sa.Column("alarms", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("resource_id", "name", name="uq_scaling_policies_name"),
    )
    op.create_index("ix_scaling_policies_resource_id", "scaling_policies", ["resource_id"])
    op.create_table(
        "scaling_scheduled_actions",
        sa.Column("arn", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        _target_key(),
        sa.Column("schedule", sa.String(256), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("start_time", _TS, nullable=True),
        sa.Column("end_time", _TS, nullable=True),
        sa.Column("min_capacity", sa.Integer(), nullable=True),
        sa.Column("max_capacity", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("resource_id", "name", name="uq_scaling_scheduled_actions_name"),
    )
    op.create_index(
        "ix_scaling_scheduled_actions_resource_id", "scaling_scheduled_actions", ["resource_id"]
    )
    op.create_table(
        "scaling_activities",
        sa.Column("activity_id", sa.String(36), primary_key=True),
        sa.Column("resource_id", sa.String(256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("status_code", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("start_time", _TS, nullable=False),
        sa.Column("end_time", _TS, nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_scaling_activities_resource_start", "scaling_activities", ["resource_id", "start_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_scaling_activities_resource_start", "scaling_activities")
    op.drop_table("scaling_activities")
    op.drop_index("ix_scaling_scheduled_actions_resource_id", "scaling_scheduled_actions")
    op.drop_table("scaling_scheduled_actions")
    op.drop_index("ix_scaling_policies_resource_id", "scaling_policies")
    op.drop_table("scaling_policies")
    op.drop_table("scaling_targets")
