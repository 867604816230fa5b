"""The results database schema (SQLAlchemy 2 declarative models).

patient 1—n study 1—n segmentation_result 1—n report; a reader's revision is a segmentation_result
pointing at the model's result it revises (revision_of_id, revision 1, 2, ...); study_comparison links two results
(baseline, follow-up); web_user holds the web interface's
accounts (a result's ``owner`` names one), web_session their logged-in sessions (hashed keys),
login_failure the failed logins behind the back-off, web_job the web jobs' states; audit_event is
the append-only audit trail. Patient identifiers live only in the
patient table and the study's identity (date, accession, ...) in the study table, all optional, so a
study can be saved without them; a research site keeps a keyed pseudonym and shifted dates instead
(``identity.py``). Deleting a study deletes
its results and their reports (ON DELETE CASCADE in the database, and in the ORM).
``sql/schema.sql`` is the same schema as MySQL DDL; a test keeps the two in step.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.mysql import LONGBLOB, LONGTEXT
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Blob = LargeBinary().with_variant(LONGBLOB, "mysql", "mariadb")
LongText = Text().with_variant(LONGTEXT, "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


class Patient(Base):
    """Optional patient identifiers; a study may have none."""

    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(255))
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    sex: Mapped[str | None] = mapped_column(String(16))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    birth_date: Mapped[str | None] = mapped_column(String(8))  # YYYYMMDD, as DICOM states it
    # a research site: HMAC-SHA256 of the patient ID under the site key, and no name, ID or birth date
    pseudonym: Mapped[str | None] = mapped_column(String(64), index=True)

    studies: Mapped[list[Study]] = relationship(back_populates="patient")


class Study(Base):
    """One scan, recognised again by its content hash, with the study's identity when kept."""

    __tablename__ = "study"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_ref: Mapped[int | None] = mapped_column(ForeignKey("patient.id", ondelete="SET NULL"), index=True)
    content_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True, unique=True)
    source_format: Mapped[str] = mapped_column(String(32), nullable=False)
    description: Mapped[str] = mapped_column(String(512), nullable=False)
    source_path: Mapped[str | None] = mapped_column(String(1024))
    modality: Mapped[str | None] = mapped_column(String(16))
    series_uid: Mapped[str | None] = mapped_column(String(128))
    slice_count: Mapped[int] = mapped_column(Integer, nullable=False)
    row_count: Mapped[int] = mapped_column(Integer, nullable=False)
    column_count: Mapped[int] = mapped_column(Integer, nullable=False)
    spacing_z_mm: Mapped[float | None] = mapped_column(Float)
    spacing_y_mm: Mapped[float | None] = mapped_column(Float)
    spacing_x_mm: Mapped[float | None] = mapped_column(Float)
    affine: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    # the study's identity as the source states it ("clinical"), or only the date shifted per
    # patient ("research"); NULL when it was saved without identity (or before these columns)
    identity: Mapped[str | None] = mapped_column(String(16))
    study_date: Mapped[str | None] = mapped_column(String(8), index=True)  # YYYYMMDD
    study_time: Mapped[str | None] = mapped_column(String(16))
    accession: Mapped[str | None] = mapped_column(String(64), index=True)
    study_description: Mapped[str | None] = mapped_column(String(255))
    institution: Mapped[str | None] = mapped_column(String(255))
    referring_physician: Mapped[str | None] = mapped_column(String(255))
    study_uid: Mapped[str | None] = mapped_column(String(128))

    patient: Mapped[Patient | None] = relationship(back_populates="studies")
    results: Mapped[list[SegmentationResult]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )


class SegmentationResult(Base):
    """A segmentation of a study by one model, with its measurements."""

    __tablename__ = "segmentation_result"
    __table_args__ = (
        Index("ix_result_model_created", "model_id", "created_at"),
        Index("ux_result_revision", "revision_of_id", "revision", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), nullable=False, index=True)
    model_id: Mapped[str] = mapped_column(String(64), nullable=False)
    model_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    labels_zlib: Mapped[bytes] = mapped_column(Blob, nullable=False)
    labels_shape: Mapped[str] = mapped_column(String(64), nullable=False)
    labels_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    overlay_png: Mapped[bytes | None] = mapped_column(Blob)
    confidence_zlib: Mapped[bytes | None] = mapped_column(Blob)  # the model's per-voxel confidence, uint8 %
    measurements: Mapped[dict] = mapped_column(JSON, nullable=False)
    timings: Mapped[dict] = mapped_column(JSON, nullable=False)
    liver_volume_ml: Mapped[float | None] = mapped_column(Float)
    tumour_volume_ml: Mapped[float | None] = mapped_column(Float)
    lesion_count: Mapped[int] = mapped_column(Integer, nullable=False)
    workstation: Mapped[str | None] = mapped_column(String(255))
    user_name: Mapped[str | None] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # the web account that saved it
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    # A reader's revision points at the model's result it revises (that row never changes); the
    # model's own result has revision 0 and no revision_of_id.
    revision_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("segmentation_result.id", name="fk_result_revision_of", ondelete="CASCADE")
    )
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    author: Mapped[str | None] = mapped_column(String(255))  # the reader who made the revision
    changes: Mapped[list | None] = mapped_column(JSON)  # one dict per edit, in order
    reader_drawn_zlib: Mapped[bytes | None] = mapped_column(Blob)  # bool mask of the voxels a reader edited

    study: Mapped[Study] = relationship(back_populates="results")
    reports: Mapped[list[Report]] = relationship(
        back_populates="result", cascade="all, delete-orphan", passive_deletes=True
    )


class Report(Base):
    """A diagnostic report for a result: measured findings, the LLM draft, the PDF."""

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("segmentation_result.id", ondelete="CASCADE"), nullable=False, index=True
    )
    findings_text: Mapped[str] = mapped_column(LongText, nullable=False)
    draft_text: Mapped[str | None] = mapped_column(LongText)
    draft_notice: Mapped[str | None] = mapped_column(String(512))
    llm_endpoint: Mapped[str | None] = mapped_column(String(255))
    llm_model: Mapped[str | None] = mapped_column(String(128))
    pdf: Mapped[bytes | None] = mapped_column(Blob)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    comparison_text: Mapped[str | None] = mapped_column(LongText)  # "Comparison with prior"
    impression_text: Mapped[str | None] = mapped_column(LongText)  # the reader's own words
    author: Mapped[str | None] = mapped_column(String(255))  # the reader who edited the text
    signed_by: Mapped[str | None] = mapped_column(String(255))  # set once: a signed report is locked
    signed_at: Mapped[datetime | None] = mapped_column(DateTime)

    result: Mapped[SegmentationResult] = relationship(back_populates="reports")


class StudyComparison(Base):
    """A follow-up result read against a baseline result (``liverhealth compare``): the RECIST
    response, the target sum (for later nadirs) and the whole comparison.json document."""

    __tablename__ = "study_comparison"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    baseline_result_id: Mapped[int] = mapped_column(
        ForeignKey("segmentation_result.id", ondelete="CASCADE"), nullable=False, index=True
    )
    followup_result_id: Mapped[int] = mapped_column(
        ForeignKey("segmentation_result.id", ondelete="CASCADE"), nullable=False, index=True
    )
    response: Mapped[str] = mapped_column(String(4), nullable=False)
    followup_sum_mm: Mapped[float] = mapped_column(Float, nullable=False)
    document: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class WebUser(Base):
    """An account of the web interface: the password only as an Argon2 hash."""

    __tablename__ = "web_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class LoginFailure(Base):
    """One failed web login: a hash of the account name tried (people type passwords there) and the
    client address. Recent rows set the back-off and the lock; a success clears the account's rows."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    client: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


class WebSessionRow(Base):
    """A logged-in web session: only the SHA-256 of its cookie key is kept, so the table cannot be
    used to log in; the CSRF token is useless without the cookie."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_name: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    csrf: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class AuditEvent(Base):
    """One audited action, append-only (nothing updates or deletes rows): who, when, from where,
    what, on which result or study. Ids only: no patient names, no passwords, no paths."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    user_name: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    face: Mapped[str] = mapped_column(String(8), nullable=False)
    client: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    result_id: Mapped[int | None] = mapped_column(Integer, index=True)
    study_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(255))


class WebJob(Base):
    """A web job's state, so a job that was running when the server stopped is reported as
    interrupted afterwards instead of silently gone."""

    __tablename__ = "web_job"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    message: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
