"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 22:33:51.614556
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# LONGBLOB / LONGTEXT on MySQL and MariaDB (their BLOB and TEXT stop at 64 KB)
BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("sex", sa.String(length=16), nullable=True),
        sa.Column("birth_year", sa.SmallInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_ref", sa.Integer(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_format", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=False),
        sa.Column("source_path", sa.String(length=1024), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("series_uid", sa.String(length=128), nullable=True),
        sa.Column("slice_count", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("column_count", sa.Integer(), nullable=False),
        sa.Column("spacing_z_mm", sa.Float(), nullable=True),
        sa.Column("spacing_y_mm", sa.Float(), nullable=True),
        sa.Column("spacing_x_mm", sa.Float(), nullable=True),
        sa.Column("affine", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_ref"], ["patient.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_content_sha256"), ["content_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_study_patient_ref"), ["patient_ref"], unique=False)

    op.create_table(
        "segmentation_result",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("labels_zlib", BLOB, nullable=False),
        sa.Column("labels_shape", sa.String(length=64), nullable=False),
        sa.Column("labels_sha256", sa.String(length=64), nullable=False),
        sa.Column("overlay_png", BLOB, nullable=True),
        sa.Column("measurements", sa.JSON(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("liver_volume_ml", sa.Float(), nullable=True),
        sa.Column("tumour_volume_ml", sa.Float(), nullable=True),
        sa.Column("lesion_count", sa.Integer(), nullable=False),
        sa.Column("workstation", sa.String(length=255), nullable=True),
        sa.Column("user_name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("segmentation_result", schema=None) as batch_op:
        batch_op.create_index("ix_result_model_created", ["model_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_segmentation_result_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_segmentation_result_study_id"), ["study_id"], unique=False)

    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("findings_text", LONG_TEXT, nullable=False),
        sa.Column("draft_text", LONG_TEXT, nullable=True),
        sa.Column("draft_notice", sa.String(length=512), nullable=True),
        sa.Column("llm_endpoint", sa.String(length=255), nullable=True),
        sa.Column("llm_model", sa.String(length=128), nullable=True),
        sa.Column("pdf", BLOB, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["result_id"], ["segmentation_result.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_result_id"), ["result_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_result_id"))

    op.drop_table("report")
    with op.batch_alter_table("segmentation_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segmentation_result_study_id"))
        batch_op.drop_index(batch_op.f("ix_segmentation_result_created_at"))
        batch_op.drop_index("ix_result_model_created")

    op.drop_table("segmentation_result")
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_patient_ref"))
        batch_op.drop_index(batch_op.f("ix_study_content_sha256"))

    op.drop_table("study")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_patient_id"))

    op.drop_table("patient")
