"""reader revisions of a result, and reports the reader edited, signed, compared

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:20:00

Plain ADD COLUMN statements (no table rebuild): on SQLite a rebuild of segmentation_result would
run with foreign keys on and delete its reports.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import LONGBLOB, LONGTEXT

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
BLOB = sa.LargeBinary().with_variant(LONGBLOB, "mysql", "mariadb")
TEXT = sa.Text().with_variant(LONGTEXT, "mysql", "mariadb")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a foreign key only inline
        op.execute(
            "ALTER TABLE segmentation_result ADD COLUMN revision_of_id INTEGER "
            "CONSTRAINT fk_result_revision_of REFERENCES segmentation_result (id) ON DELETE CASCADE"
        )
    else:
        op.add_column("segmentation_result", sa.Column("revision_of_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_result_revision_of",
            "segmentation_result",
            "segmentation_result",
            ["revision_of_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.add_column("segmentation_result", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("segmentation_result", sa.Column("author", sa.String(length=255), nullable=True))
    op.add_column("segmentation_result", sa.Column("changes", sa.JSON(), nullable=True))
    op.add_column("segmentation_result", sa.Column("reader_drawn_zlib", BLOB, nullable=True))
    op.create_index("ux_result_revision", "segmentation_result", ["revision_of_id", "revision"], unique=True)
    for name, type_ in (
        ("comparison_text", TEXT),
        ("impression_text", TEXT),
        ("author", sa.String(length=255)),
        ("signed_by", sa.String(length=255)),
        ("signed_at", sa.DateTime()),
    ):
        op.add_column("report", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name in ("signed_at", "signed_by", "author", "impression_text", "comparison_text"):
        op.drop_column("report", name)
    op.drop_index("ux_result_revision", table_name="segmentation_result")
    for name in ("reader_drawn_zlib", "changes", "author", "revision"):
        op.drop_column("segmentation_result", name)
    if op.get_bind().dialect.name == "sqlite":  # SQLite cannot drop a column a foreign key names: rebuild
        op.execute("PRAGMA foreign_keys=OFF")  # else dropping the old table would delete its reports
        with op.batch_alter_table("segmentation_result", recreate="always") as batch_op:
            batch_op.drop_column("revision_of_id")
        op.execute("PRAGMA foreign_keys=ON")
    else:
        op.drop_constraint("fk_result_revision_of", "segmentation_result", type_="foreignkey")
        op.drop_column("segmentation_result", "revision_of_id")
