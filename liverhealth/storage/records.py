"""The stored records: plain dataclasses the repository reads and writes, free of SQLAlchemy.

They import without the database stack, so a command that only segments does not load it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from liverhealth.domain import ModelInfo, PatientInfo, SourceInfo
from liverhealth.domain import Report as DomainReport
from liverhealth.errors import StorageError

MEASUREMENTS_SCHEMA = 2  # the stored measurements JSON: {"schema", "measurements", "model"}; 1 = bare measurements


@dataclass(frozen=True)
class ResultRecord:
    """What is saved for one segmentation (built by ``results.result_record``)."""

    labels: np.ndarray
    model: ModelInfo
    measurements: dict[str, Any]
    timings: dict[str, float]
    source: SourceInfo
    spacing: tuple[float, float, float] | None
    content_sha256: str
    affine: np.ndarray | None = None
    overlay_png: bytes | None = None
    patient: PatientInfo | None = None
    owner: str | None = None  # the web account saving it (None from the CLI and the window)
    confidence: np.ndarray | None = None  # uint8 percent on the labels' grid, when the engine gave one


@dataclass(frozen=True)
class ReportRecord:
    """A report to save with a result."""

    findings_text: str
    draft_text: str | None = None
    draft_notice: str | None = None
    llm_endpoint: str | None = None
    llm_model: str | None = None
    pdf: bytes | None = None

    @classmethod
    def of(cls, report: DomainReport, pdf: bytes | None) -> ReportRecord:
        """The record of a domain report and its PDF."""
        return cls(
            findings_text=report.findings,
            draft_text=report.draft,
            draft_notice=report.draft_notice,
            llm_endpoint=report.draft_endpoint,
            llm_model=report.draft_model,
            pdf=pdf,
        )


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


@dataclass(frozen=True)
class StoredStudy:
    """The scan a saved result belongs to (no patient identifiers)."""

    study_id: int
    description: str
    format: str
    source_path: str | None
    modality: str | None
    series_uid: str | None
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float] | None
    content_sha256: str
    affine: np.ndarray | None


@dataclass(frozen=True)
class StoredReport:
    """A saved report."""

    report_id: int
    findings_text: str
    draft_text: str | None
    draft_notice: str | None
    llm_endpoint: str | None
    llm_model: str | None
    pdf: bytes | None
    created_at: datetime


@dataclass(frozen=True)
class StoredResult:
    """A result loaded back in full; ``model`` keeps the name and validation figures it was made with."""

    summary: ResultSummary
    labels: np.ndarray
    model: ModelInfo
    measurements: dict[str, Any]
    timings: dict[str, float]
    overlay_png: bytes | None
    study: StoredStudy
    workstation: str | None
    user_name: str | None
    reports: tuple[StoredReport, ...] = ()
    confidence: np.ndarray | None = None

    @property
    def model_sha256(self) -> str:
        return self.model.sha256


def measurements_json(measurements: dict[str, Any], model: ModelInfo) -> dict[str, Any]:
    """The stored measurements document (versioned; the model travels with its numbers)."""
    return {"schema": MEASUREMENTS_SCHEMA, "measurements": measurements, "model": model.to_dict()}


def read_measurements_json(document: dict[str, Any], model_id: str, model_sha256: str) -> tuple[dict, ModelInfo]:
    """(measurements, model) from a stored document of any schema (1: bare measurements, no model)."""
    if document.get("schema") == MEASUREMENTS_SCHEMA:
        return document["measurements"], ModelInfo.from_dict(document["model"])
    if "schema" in document:
        raise StorageError(
            f"A saved result uses measurements schema {document['schema']!r}, newer than this LiverHealth "
            f"reads ({MEASUREMENTS_SCHEMA}). Update LiverHealth."
        )
    return document, ModelInfo(model_id=model_id, name=model_id, sha256=model_sha256)


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
