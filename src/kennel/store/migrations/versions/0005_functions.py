"""functions: $LATEST and versions, aliases, concurrency, URLs, async events, logs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _function_key() -> sa.Column[str]:
    return sa.Column(
        "function",
        sa.String(64),
        sa.ForeignKey("lambda_functions.name", ondelete="CASCADE"),
        primary_key=True,
    )


def _config_columns() -> list[sa.Column[object]]:
    """What $LATEST and a published version both carry."""
    return [
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("role", sa.String(256), nullable=False),
        sa.Column("handler", sa.String(128), nullable=False),
        sa.Column("runtime", sa.String(32), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("code_uri", sa.Text(), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("code_size", sa.BigInteger(), nullable=False),
        sa.Column("architecture", sa.String(16), nullable=False),
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.Column("config_revision", sa.String(36), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "lambda_functions",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("arn", sa.String(256), nullable=False),
        *_config_columns(),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("last_update_status", sa.String(16), nullable=False),
        sa.Column("reserved_concurrency", sa.Integer(), nullable=True),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_modified", _TS, nullable=False),
    )
    op.create_table(
        "lambda_versions",
        _function_key(),
        sa.Column("version", sa.Integer(), primary_key=True),
        *_config_columns(),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "lambda_aliases",
        _function_key(),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("function_version", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("routing_config", sa.JSON(), nullable=False),
        sa.Column("revision_id", sa.String(36), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "lambda_provisioned",
        _function_key(),
        sa.Column("qualifier", sa.String(128), primary_key=True),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("allocated", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("last_modified", _TS, nullable=False),
    )
    op.create_table(
        "lambda_urls",
        _function_key(),
        sa.Column("qualifier", sa.String(128), primary_key=True),
        sa.Column("url_id", sa.String(40), nullable=False),
        sa.Column("auth_type", sa.String(16), nullable=False),
        sa.Column("cors", sa.JSON(), nullable=False),
        sa.Column("invoke_mode", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_modified", _TS, nullable=False),
    )
    op.create_table(
        "lambda_event_configs",
        _function_key(),
        sa.Column("qualifier", sa.String(128), primary_key=True),
        sa.Column("max_retry_attempts", sa.Integer(), nullable=True),
        sa.Column("max_event_age_s", sa.Integer(), nullable=True),
        sa.Column("destination_config", sa.JSON(), nullable=False),
        sa.Column("last_modified", _TS, nullable=False),
    )
    op.create_table(
        "lambda_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("client_context", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.Column("executed_version", sa.String(16), nullable=True),
    )
    op.create_index("ix_lambda_events_function", "lambda_events", ["function"])
    op.create_index("ix_lambda_events_status_next", "lambda_events", ["status", "next_attempt_at"])
    op.create_table(
        "lambda_logs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("stream", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index("ix_lambda_logs_function", "lambda_logs", ["function"])


def downgrade() -> None:
    op.drop_index("ix_lambda_logs_function", "lambda_logs")
    op.drop_table("lambda_logs")
    op.drop_index("ix_lambda_events_status_next", "lambda_events")
    op.drop_index("ix_lambda_events_function", "lambda_events")
    op.drop_table("lambda_events")
    for table in (
        "lambda_event_configs",
        "lambda_urls",
        "lambda_provisioned",
        "lambda_aliases",
        "lambda_versions",
        "lambda_functions",
    ):
        op.drop_table(table)
