"""one study per scan: unique content hash (duplicates from concurrent saves merged)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    duplicated = connection.execute(
        sa.text("SELECT content_sha256, MIN(id) FROM study GROUP BY content_sha256 HAVING COUNT(*) > 1")
    ).all()
    for content_sha256, keep in duplicated:
        others = (
            connection.execute(
                sa.text("SELECT id FROM study WHERE content_sha256 = :h AND id <> :k"), {"h": content_sha256, "k": keep}
            )
            .scalars()
            .all()
        )
        for other in others:  # the results of a duplicate study move to the first one
            connection.execute(
                sa.text("UPDATE segmentation_result SET study_id = :k WHERE study_id = :o"), {"k": keep, "o": other}
            )
            connection.execute(sa.text("DELETE FROM study WHERE id = :o"), {"o": other})
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_content_sha256"))
        batch_op.create_index(batch_op.f("ix_study_content_sha256"), ["content_sha256"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_content_sha256"))
        batch_op.create_index(batch_op.f("ix_study_content_sha256"), ["content_sha256"], unique=False)
