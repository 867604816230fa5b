"""One versioned serializer per document, and readers that still take every older version.

A result's measurements are the same JSON everywhere they are written: inside the output folder's
``measurements.json`` (which ``liverhealth db save`` reads back), inside a ``db export`` folder
(the same file), in the database's measurements column and in what the web page downloads. Each
writer here says its version; each reader takes the versions LiverHealth ever wrote and refuses a
newer one with a message that says to update. Plain functions of domain values; no file or
database access (``results.py`` writes the files, ``storage`` the rows).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import numpy as np

from liverhealth.domain import Lesion, Measurements, ModelInfo, Report, Revision, SourceInfo, StudyRef
from liverhealth.errors import InputError, StorageError
from liverhealth.presentation import DISCLAIMER

RESULT_DOCUMENT = 1  # measurements.json of an output folder or a db export ("liverhealth_measurements")
REPORT_DOCUMENT = 1  # report.json ("liverhealth_report")
STORED_MEASUREMENTS = 2  # the database column: {"schema", "measurements", "model"}; 1 = bare measurements

_LESION_TUPLES = ("slice_range", "centroid_index", "centroid_mm")


def measurements_dict(measurements: Measurements) -> dict[str, Any]:
    """Measurements as JSON-ready values (``lesion_count`` added for readers of the file)."""
    data = asdict(measurements)
    data["spacing"] = list(measurements.spacing) if measurements.spacing else None
    data["lesions"] = [_lesion_dict(lesion) for lesion in measurements.lesions]
    data["lesion_count"] = len(measurements.lesions)
    return data


def _lesion_dict(lesion: Lesion) -> dict[str, Any]:
    data = asdict(lesion)
    for key in _LESION_TUPLES:
        data[key] = list(data[key]) if data[key] is not None else None
    return data


def read_measurements(data: dict[str, Any]) -> Measurements:
    """Measurements back from ``measurements_dict``'s JSON (fields added later default)."""
    known = {f.name for f in fields(Measurements)}
    values = {k: v for k, v in data.items() if k in known}
    values["spacing"] = tuple(data["spacing"]) if data.get("spacing") else None
    values["lesions"] = tuple(_read_lesion(lesion) for lesion in data.get("lesions", ()))
    return Measurements(**values)


def _read_lesion(data: dict[str, Any]) -> Lesion:
    known = {f.name for f in fields(Lesion)}
    values = {k: v for k, v in data.items() if k in known}
    for key in _LESION_TUPLES:
        values[key] = tuple(data[key]) if data.get(key) is not None else None
    return Lesion(**values)


def study_dict(study: StudyRef) -> dict[str, Any]:
    """The study part of measurements.json (its "input"): source, grid and content hash."""
    return {
        **study.source.to_dict(),
        "shape_zyx": list(study.shape),
        "spacing_zyx_mm": list(study.spacing) if study.spacing else None,
        "is_hu": study.is_hu,
        "affine": np.asarray(study.affine).tolist() if study.affine is not None else None,
        "content_sha256": study.content_sha256,
    }


def read_study(data: dict[str, Any]) -> StudyRef:
    """A StudyRef from measurements.json's "input" (or an old db export's "study")."""
    if "shape" in data and "shape_zyx" not in data:  # db export before documents were one
        data = _old_export_study(data)
    source = SourceInfo(
        format=str(data["format"]),
        path=str(data.get("path") or ""),
        description=str(data.get("description") or ""),
        slice_count=int(data.get("slice_count") or data["shape_zyx"][0]),
        series_uid=str(data.get("series_uid") or ""),
        modality=str(data.get("modality") or ""),
        notes=tuple(data.get("notes", ())),
    )
    spacing = data.get("spacing_zyx_mm")
    affine = data.get("affine")
    return StudyRef(
        source=source,
        shape=tuple(int(n) for n in data["shape_zyx"]),
        spacing=tuple(float(s) for s in spacing) if spacing else None,
        affine=np.asarray(affine, dtype=float) if affine is not None else None,
        is_hu=bool(data.get("is_hu", spacing is not None)),
        content_sha256=str(data["content_sha256"]),
    )


def _old_export_study(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": data["format"],
        "path": data.get("source_path"),
        "description": data.get("description"),
        "series_uid": data.get("series_uid"),
        "modality": data.get("modality"),
        "shape_zyx": data["shape"],
        "spacing_zyx_mm": data.get("spacing_mm"),
        "affine": data.get("affine"),
        "content_sha256": data["content_sha256"],
    }


def result_document(
    study: StudyRef,
    model: ModelInfo,
    measurements: Measurements,
    key_slice: int,
    timings: dict[str, float],
    result_id: int | None = None,
    revision: Revision | None = None,
) -> dict[str, Any]:
    """measurements.json: what a result is, with no patient identifiers (``result_id``: the saved
    result a db export came from; ``revision``: the reader's revision it is, None for the model's
    own result)."""
    document: dict[str, Any] = {"liverhealth_measurements": RESULT_DOCUMENT, "disclaimer": DISCLAIMER}
    if result_id is not None:
        document["result_id"] = result_id
    document |= {
        "revision": revision.to_dict() if revision else {"number": 0, "reader_edited": False},
        "model": model.to_dict(),
        "input": study_dict(study),
        "key_slice": key_slice,
        "measurements": measurements_dict(measurements),
        "timings": dict(timings),
    }
    return document


def read_result_document(document: dict[str, Any]) -> tuple[StudyRef, ModelInfo, Measurements, dict[str, float]]:
    """(study, model, measurements, timings) from measurements.json of any version LiverHealth wrote:
    an output folder's, or a db export's (old exports: ``"schema": 2`` with a "study")."""
    version = document.get("liverhealth_measurements")
    if version is None and document.get("schema") == STORED_MEASUREMENTS and "study" in document:
        study = read_study(document["study"])
    elif version == RESULT_DOCUMENT:
        study = read_study(document["input"])
    else:
        raise InputError(_newer("measurements.json", version or document.get("schema"), RESULT_DOCUMENT))
    timings = {str(k): float(v) for k, v in (document.get("timings") or {}).items()}
    return study, ModelInfo.from_dict(document["model"]), read_measurements(document["measurements"]), timings


def read_revision(document: dict[str, Any]) -> Revision | None:
    """The reader's revision a measurements.json describes (None: the model's own result, or a file
    written before results had revisions)."""
    data = document.get("revision")
    if not isinstance(data, dict) or not data.get("number"):
        return None
    try:
        return Revision.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"measurements.json names a revision it does not describe ({exc}).") from exc


def stored_measurements(measurements: Measurements, model: ModelInfo) -> dict[str, Any]:
    """The database's measurements column (the model travels with its numbers)."""
    return {"schema": STORED_MEASUREMENTS, "measurements": measurements_dict(measurements), "model": model.to_dict()}


def read_stored_measurements(
    document: dict[str, Any], model_id: str, model_sha256: str
) -> tuple[Measurements, ModelInfo]:
    """(measurements, model) from the database column of any version (1: bare measurements, no model)."""
    if document.get("schema") == STORED_MEASUREMENTS:
        return read_measurements(document["measurements"]), ModelInfo.from_dict(document["model"])
    if "schema" in document:
        raise StorageError(_newer("A saved result's measurements", document["schema"], STORED_MEASUREMENTS))
    return read_measurements(document), ModelInfo(model_id=model_id, name=model_id, sha256=model_sha256)


def report_document(report: Report, model: ModelInfo, pdf_sha256: str | None) -> dict[str, Any]:
    """report.json: the report's text and the hash of the PDF it was rendered as (None: no PDF)."""
    return {
        "liverhealth_report": REPORT_DOCUMENT,
        "disclaimer": DISCLAIMER,
        "report": asdict(report),
        "model": model.to_dict(),
        "pdf_sha256": pdf_sha256,
    }


def read_report_document(document: dict[str, Any]) -> tuple[Report, str | None]:
    """(report, sha256 of its PDF or None when it has none) from report.json."""
    version = document.get("liverhealth_report")
    if version != REPORT_DOCUMENT:
        raise InputError(_newer("report.json", version, REPORT_DOCUMENT))
    known = {f.name for f in fields(Report)}
    pdf_sha256 = document["pdf_sha256"]
    return Report(**{k: v for k, v in document["report"].items() if k in known}), (
        str(pdf_sha256) if pdf_sha256 else None
    )


def _newer(what: str, version: Any, reads: int) -> str:
    """Why a document is refused: not ours at all, or a version newer than this code reads."""
    if version is None:
        return f"{what} is not a LiverHealth document (it names no format version)."
    return f"{what} has format version {version!r}; this LiverHealth reads version {reads}. Update LiverHealth."
