"""The stored records: plain dataclasses the repository reads and writes, free of SQLAlchemy.

They import without the database stack, so a command that only segments does not load it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from liverhealth.domain import Measurements, ModelInfo, PatientInfo, Revision, SourceInfo, StudyInfo, StudyRef
from liverhealth.domain import Report as DomainReport


@dataclass(frozen=True)
class ResultRecord:
    """What is saved for one segmentation (built by ``results.result_record``)."""

    labels: np.ndarray
    model: ModelInfo
    measurements: Measurements
    timings: dict[str, float]
    source: SourceInfo
    spacing: tuple[float, float, float] | None
    content_sha256: str
    affine: np.ndarray | None = None
    overlay_png: bytes | None = None
    patient: PatientInfo | None = None
    owner: str | None = None  # the web account saving it (None from the CLI and the window)
    confidence: np.ndarray | None = None  # uint8 percent on the labels' grid, when the engine gave one
    revision: Revision | None = None  # a reader's revision of the saved result revision.base_result_id
    reader_drawn: np.ndarray | None = None  # bool, the voxels a reader edited
    study_info: StudyInfo | None = None  # the study's identity and technique as the source states them


@dataclass(frozen=True)
class ResultSummary:
    """One row of the results list."""

    result_id: int
    study_id: int
    created_at: datetime
    model_id: str
    description: str
    patient_name: str | None
    patient_id: str | None
    liver_volume_ml: float | None
    tumour_volume_ml: float | None
    lesion_count: int
    report_count: int
    owner: str | None = None
    revision: int = 0  # 0: the model's result; 1, 2, ...: a reader's revision of result ``revision_of``
    revision_of: int | None = None
    author: str | None = None  # who made the revision
    signed_by: str | None = None  # who signed a report on it, if anyone
    patient_ref: int | None = None  # the patient row: the worklist groups by it
    pseudonym: str | None = None  # a research site's keyed pseudonym of the patient
    patient_sex: str | None = None
    birth_date: str | None = None  # YYYYMMDD
    identity: str | None = None  # "clinical", "research" (dates shifted) or None (saved without)
    study_date: str | None = None  # YYYYMMDD
    study_time: str | None = None
    accession: str | None = None
    study_description: str | None = None


@dataclass(frozen=True)
class StoredReport:
    """A report with the PDF it was rendered as: what is saved, and what is read back (then with its
    row id and the time it was saved)."""

    report: DomainReport
    pdf: bytes | None = None
    report_id: int | None = None
    saved_at: datetime | None = None


@dataclass(frozen=True)
class StoredResult:
    """A result loaded back in full; ``model`` keeps the name and validation figures it was made with."""

    summary: ResultSummary
    labels: np.ndarray
    model: ModelInfo
    measurements: Measurements
    timings: dict[str, float]
    overlay_png: bytes | None
    study: StudyRef
    workstation: str | None
    user_name: str | None
    reports: tuple[StoredReport, ...] = ()
    confidence: np.ndarray | None = None
    revision: Revision | None = None
    reader_drawn: np.ndarray | None = None
    # the identity a clinical site kept with the study (None: none kept, or a research pseudonym)
    patient_info: PatientInfo | None = None
    study_info: StudyInfo | None = None

    @property
    def signed(self) -> StoredReport | None:
        """The signed report on this revision (then it is locked), if any."""
        return next((r for r in self.reports if r.report.is_signed), None)

    @property
    def model_sha256(self) -> str:
        return self.model.sha256


def content_hash(voxels: np.ndarray, spacing: tuple[float, float, float] | None) -> str:
    """sha256 of a scan's voxels, shape and spacing: the same scan gets the same hash."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [list(voxels.shape), str(voxels.dtype), [round(s, 5) for s in spacing] if spacing else None]
        ).encode()
    )
    digest.update(memoryview(np.ascontiguousarray(voxels)).cast("B"))  # hashed in place, not copied
    return digest.hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One event of the audit trail: who (account or OS user, through which face, from which
    client address), when, what, on which saved result or study. Never patient names or passwords."""

    user: str
    face: str
    action: str
    result_id: int | None = None
    study_id: int | None = None
    client: str | None = None
    detail: str | None = None
    at: datetime | None = None  # set by the database when written


@dataclass(frozen=True)
class StoredSession:
    """A logged-in web session as the database keeps it (found by the hash of its cookie key)."""

    user: str
    role: str
    csrf: str
    created_at: datetime
    last_seen_at: datetime
