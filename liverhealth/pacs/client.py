"""The two PACS protocols behind one small interface: find studies, fetch a study's CT series,
store objects (skipping those the PACS already holds, so nothing is stored twice)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pydicom

from liverhealth.errors import PacsError
from liverhealth.pacs.base import Pacs
from liverhealth.pacs.settings import PacsSettings
from liverhealth.progress import CancelCheck, Progress


def connect(settings: PacsSettings | None = None) -> Pacs:
    settings = settings or PacsSettings.from_environment()
    if settings.protocol == "dicomweb":
        from liverhealth.pacs.dicomweb import DicomwebPacs

        return DicomwebPacs(settings)
    from liverhealth.pacs.dimse import DimsePacs

    return DimsePacs(settings)


def retrieve_study(
    pacs: Pacs, study_uid: str, cache: Path, progress: Progress | None = None, cancel: CancelCheck | None = None
) -> Path:
    """The study's CT series (the one with most instances) in ``cache/STUDY_UID``; fetched into a
    temporary folder and renamed at the end, so an interrupted retrieve leaves nothing that looks
    complete. A complete earlier retrieve is reused."""
    folder = cache / _safe_name(study_uid)
    if (folder / ".complete").is_file():
        return folder
    series = pacs.ct_series(study_uid)
    if not series:
        raise PacsError(f"Study {study_uid} on the {pacs.settings.where} has no CT series (or no such study).")
    series_uid, expected = max(series, key=lambda item: item[1])
    partial = cache / f".{_safe_name(study_uid)}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        count = pacs.fetch_series(study_uid, series_uid, partial, progress, cancel)
        if expected and count < expected:
            raise PacsError(
                f"The {pacs.settings.where} sent {count} of the series' {expected} images; the transfer was cut. "
                "Nothing was kept; try again."
            )
        (partial / ".complete").write_text(f"{series_uid}\n{count}\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder


def store_new(pacs: Pacs, paths: Iterable[Path]) -> tuple[int, int]:
    """Send the DICOM files the PACS does not hold yet; returns (sent, already there)."""
    datasets = [pydicom.dcmread(str(path)) for path in paths]
    new = [ds for ds in datasets if not pacs.has_instance(str(ds.StudyInstanceUID), str(ds.SOPInstanceUID))]
    if new:
        pacs.store(new)
    return len(new), len(datasets) - len(new)


def is_uid(text: str) -> bool:
    """A DICOM UID: digits and dots, at most 64 characters (safe as a folder name too)."""
    return bool(text) and all(c.isdigit() or c == "." for c in text) and len(text) <= 64


def _safe_name(uid: str) -> str:
    if not is_uid(uid):
        raise PacsError(f"{uid[:70]!r} is not a DICOM UID (digits and dots, at most 64 characters).")
    return uid
