"""the study's identity (date, time, accession, description, institution, referring physician,
study UID), the patient's birth date and a research site's keyed pseudonym

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14 09:00:00

Plain ADD COLUMN statements (no table rebuild, which on SQLite would run with foreign keys on);
rows saved before keep NULL there (a study without identity).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STUDY_COLUMNS = (
    ("identity", 16),
    ("study_date", 8),
    ("study_time", 16),
    ("accession", 64),
    ("study_description", 255),
    ("institution", 255),
    ("referring_physician", 255),
    ("study_uid", 128),
)
INDEXES = (("ix_study_study_date", "study", "study_date"), ("ix_study_accession", "study", "accession"))


def upgrade() -> None:
    op.add_column("patient", sa.Column("birth_date", sa.String(length=8), nullable=True))
    op.add_column("patient", sa.Column("pseudonym", sa.String(length=64), nullable=True))
    op.create_index("ix_patient_pseudonym", "patient", ["pseudonym"])
    for name, length in STUDY_COLUMNS:
        op.add_column("study", sa.Column(name, sa.String(length=length), nullable=True))
    for index, table, column in INDEXES:
        op.create_index(index, table, [column])


def downgrade() -> None:
    for index, table, _ in INDEXES:
        op.drop_index(index, table_name=table)
    for name, _ in reversed(STUDY_COLUMNS):
        op.drop_column("study", name)
    op.drop_index("ix_patient_pseudonym", table_name="patient")
    op.drop_column("patient", "pseudonym")
    op.drop_column("patient", "birth_date")
