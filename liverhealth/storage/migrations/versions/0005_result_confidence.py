"""the model's per-voxel confidence beside each result's labels

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import LONGBLOB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segmentation_result", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("confidence_zlib", sa.LargeBinary().with_variant(LONGBLOB, "mysql", "mariadb"), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("segmentation_result", schema=None) as batch_op:
        batch_op.drop_column("confidence_zlib")
