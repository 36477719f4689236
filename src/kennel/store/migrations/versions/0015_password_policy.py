"""IAM's account password policy; login profiles remember when and what was set before

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "iam_account_password_policy",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("minimum_password_length", sa.Integer(), nullable=False),
        sa.Column("require_symbols", sa.Boolean(), nullable=False),
        sa.Column("require_numbers", sa.Boolean(), nullable=False),
        sa.Column("require_uppercase_characters", sa.Boolean(), nullable=False),
        sa.Column("require_lowercase_characters", sa.Boolean(), nullable=False),
        sa.Column("allow_users_to_change_password", sa.Boolean(), nullable=False),
        sa.Column("max_password_age", sa.Integer(), nullable=False),
        sa.Column("password_reuse_prevention", sa.Integer(), nullable=False),
        sa.Column("hard_expiry", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    with op.batch_alter_table("iam_login_profiles") as batch:
        batch.add_column(sa.Column("password_changed_at", _TS, nullable=True))
        batch.add_column(
            sa.Column("previous_password_hashes", sa.JSON(), nullable=False, server_default="[]")
        )
    # Before this revision kennel did not record when a password was changed; the profile's
    # creation is the earliest it can have been set, so a password ages from there (under
    # a MaxPasswordAge it may expire sooner than it should, never later).
    profiles = sa.table(
        "iam_login_profiles",
        sa.column("created_at", _TS),
        sa.column("password_changed_at", _TS),
    )
    op.execute(profiles.update().values(password_changed_at=profiles.c.created_at))
    with op.batch_alter_table("iam_login_profiles") as batch:
        batch.alter_column("password_changed_at", existing_type=_TS, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("iam_login_profiles") as batch:
        batch.drop_column("previous_password_hashes")
        batch.drop_column("password_changed_at")
    op.drop_table("iam_account_password_policy")
