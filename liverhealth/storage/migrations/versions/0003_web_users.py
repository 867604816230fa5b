"""web interface accounts, and the account that saved each result

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_user",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    with op.batch_alter_table("segmentation_result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_segmentation_result_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("segmentation_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segmentation_result_owner"))
        batch_op.drop_column("owner")
    op.drop_table("web_user")
