"""follow-up comparisons between two saved results

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study_comparison",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("baseline_result_id", sa.Integer(), nullable=False),
        sa.Column("followup_result_id", sa.Integer(), nullable=False),
        sa.Column("response", sa.String(length=4), nullable=False),
        sa.Column("followup_sum_mm", sa.Float(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["baseline_result_id"], ["segmentation_result.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["followup_result_id"], ["segmentation_result.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    with op.batch_alter_table("study_comparison", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_comparison_baseline_result_id"), ["baseline_result_id"])
        batch_op.create_index(batch_op.f("ix_study_comparison_followup_result_id"), ["followup_result_id"])


def downgrade() -> None:
    op.drop_table("study_comparison")
