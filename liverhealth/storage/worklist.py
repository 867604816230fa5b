"""Saved results as a worklist: patients, their studies by date, each study's latest result per
model. Plain functions over the results list (no SQLAlchemy), so every face groups the same way."""

from __future__ import annotations

from collections.abc import Iterable

from liverhealth.domain import WorklistPatient, WorklistResult, WorklistStudy
from liverhealth.storage.records import ResultSummary


def _iso(yyyymmdd: str | None) -> str:
    digits = (yyyymmdd or "").strip()
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}" if len(digits) == 8 and digits.isdigit() else ""


def _result(row: ResultSummary) -> WorklistResult:
    return WorklistResult(
        result_id=row.result_id,
        model_id=row.model_id,
        saved_at=f"{row.created_at:%Y-%m-%d %H:%M}",
        revision=row.revision,
        author=row.author,
        signed_by=row.signed_by,
        liver_volume_ml=row.liver_volume_ml,
        tumour_volume_ml=row.tumour_volume_ml,
        lesion_count=row.lesion_count,
        owner=row.owner,
    )


def study_order(study: WorklistStudy) -> tuple:
    """Newest first: dated studies by date and time, then undated ones by their newest save."""
    newest = max((r.saved_at for r in study.results), default="")
    return (bool(study.date), study.date, study.time, newest, study.study_id)


def group_studies(rows: Iterable[ResultSummary]) -> list[WorklistStudy]:
    """One WorklistStudy per study of ``rows``, newest first; per model only its newest result
    (``rows`` list a revised result as its latest revision already)."""
    by_study: dict[int, list[ResultSummary]] = {}
    for row in rows:
        by_study.setdefault(row.study_id, []).append(row)
    studies = []
    for study_id, results in by_study.items():
        newest: dict[str, ResultSummary] = {}
        for row in sorted(results, key=lambda r: (r.created_at, r.result_id)):
            newest[row.model_id] = row
        first = results[0]
        studies.append(
            WorklistStudy(
                study_id=study_id,
                date=_iso(first.study_date),
                time=(first.study_time or "")[:6],
                description=first.study_description or "",
                accession=first.accession or "",
                source=first.description,
                results=tuple(_result(newest[model]) for model in sorted(newest)),
                patient_ref=first.patient_ref,
                dates_shifted=first.identity == "research",
            )
        )
    return sorted(studies, key=study_order, reverse=True)


def group_worklist(rows: Iterable[ResultSummary]) -> tuple[WorklistPatient, ...]:
    """Patients (newest study first), each with their studies newest first; the studies saved
    without a patient come last, as one group."""
    rows = list(rows)
    by_patient: dict[int | None, list[ResultSummary]] = {}
    for row in rows:
        by_patient.setdefault(row.patient_ref, []).append(row)
    patients = []
    for ref, results in by_patient.items():
        first = results[0]
        patients.append(
            WorklistPatient(
                patient_ref=ref,
                name=(first.patient_name or "") if ref is not None else "",
                patient_id=(first.patient_id or "") if ref is not None else "",
                pseudonym=(first.pseudonym or "") if ref is not None else "",
                sex=(first.patient_sex or "") if ref is not None else "",
                birth_date=_iso(first.birth_date) if ref is not None else "",
                studies=tuple(group_studies(results)),
            )
        )
    known = sorted((p for p in patients if p.patient_ref is not None), key=_patient_order, reverse=True)
    return (*known, *(p for p in patients if p.patient_ref is None))


def _patient_order(patient: WorklistPatient) -> tuple:
    return (*study_order(patient.studies[0]), -(patient.patient_ref or 0))
