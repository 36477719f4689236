"""IAM: groups, roles, managed and inline policies, boundaries, sessions, MFA, access log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("user_id", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("path", sa.String(512), nullable=False, server_default="/"))
    with op.batch_alter_table("access_keys") as batch:
        batch.add_column(sa.Column("last_used_service", sa.String(32), nullable=True))
    op.create_table(
        "iam_groups",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("arn", sa.String(256), nullable=False, unique=True),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "iam_group_members",
        sa.Column(
            "group_name",
            sa.String(128),
            sa.ForeignKey("iam_groups.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_name",
            sa.String(64),
            sa.ForeignKey("users.name", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_table(
        "iam_roles",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("arn", sa.String(256), nullable=False, unique=True),
        sa.Column("role_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("trust_policy", sa.Text(), nullable=False),
        sa.Column("max_session_duration", sa.Integer(), nullable=False),
        sa.Column("permissions_boundary", sa.String(256), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS, nullable=True),
    )
    op.create_table(
        "iam_policies",
        sa.Column("arn", sa.String(256), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("policy_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("default_version_id", sa.String(16), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "iam_attachments",
        sa.Column("principal_kind", sa.String(8), primary_key=True),
        sa.Column("principal_name", sa.String(128), primary_key=True),
        sa.Column(
            "policy_arn",
            sa.String(256),
            sa.ForeignKey("iam_policies.arn", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attached_at", _TS, nullable=False),
    )
    op.create_table(
        "iam_inline_policies",
        sa.Column("principal_kind", sa.String(8), primary_key=True),
        sa.Column("principal_name", sa.String(128), primary_key=True),
        sa.Column("policy_name", sa.String(128), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_table(
        "iam_boundaries",
        sa.Column("principal_kind", sa.String(8), primary_key=True),
        sa.Column("principal_name", sa.String(128), primary_key=True),
        sa.Column("policy_arn", sa.String(256), nullable=False),
    )
    op.create_table(
        "iam_sessions",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("principal_name", sa.String(128), nullable=False),
        sa.Column("principal_arn", sa.String(256), nullable=False),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("source_arn", sa.String(256), nullable=False),
        sa.Column("mfa", sa.Boolean(), nullable=False),
        sa.Column("session_policy", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("ix_iam_sessions_principal_arn", "iam_sessions", ["principal_arn"])
    op.create_index("ix_iam_sessions_expires_at", "iam_sessions", ["expires_at"])
    op.create_table(
        "iam_mfa_devices",
        sa.Column("serial_number", sa.String(256), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("seed_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("enabled_at", _TS, nullable=True),
        sa.Column("last_code_step", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "iam_resource_policies",
        sa.Column("resource_arn", sa.String(512), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_table(
        "iam_access_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("time", _TS, nullable=False),
        sa.Column("principal_arn", sa.String(256), nullable=False),
        sa.Column("access_key_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("statement", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index("ix_iam_access_log_request_id", "iam_access_log", ["request_id"])
    op.create_index("ix_iam_access_log_time", "iam_access_log", ["time"])
    op.create_index("ix_iam_access_log_principal_arn", "iam_access_log", ["principal_arn"])


def downgrade() -> None:
    for table in (
        "iam_access_log",
        "iam_resource_policies",
        "iam_mfa_devices",
        "iam_sessions",
        "iam_boundaries",
        "iam_inline_policies",
        "iam_attachments",
        "iam_policies",
        "iam_roles",
        "iam_group_members",
        "iam_groups",
    ):
        op.drop_table(table)
    with op.batch_alter_table("access_keys") as batch:
        batch.drop_column("last_used_service")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("path")
        batch.drop_column("user_id")
