"""What both PACS protocols share: the interface they implement, the study a search finds and
the cancel check of a retrieve (kept apart from ``client``, which picks a protocol, so neither
protocol module imports the module that imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydicom.dataset import Dataset

from liverhealth.errors import Cancelled
from liverhealth.pacs.settings import PacsSettings
from liverhealth.progress import CancelCheck, Progress


@dataclass(frozen=True)
class StudyHit:
    """One study the PACS found (shown to the user who asked; never logged)."""

    study_uid: str
    study_date: str
    patient_id: str
    accession: str
    modalities: str
    description: str


class Pacs(Protocol):
    settings: PacsSettings

    def find(
        self, patient_id: str = "", accession: str = "", study_date: str = "", modality: str = ""
    ) -> list[StudyHit]: ...

    def ct_series(self, study_uid: str) -> list[tuple[str, int]]: ...

    def fetch_series(
        self, study_uid: str, series_uid: str, folder: Path, progress: Progress | None, cancel: CancelCheck | None
    ) -> int: ...

    def has_instance(self, study_uid: str, sop_instance_uid: str) -> bool: ...

    def store(self, datasets: list[Dataset]) -> None: ...


def check_cancel(cancel: CancelCheck | None) -> None:
    """Stop a retrieve the user cancelled (what it fetched so far is removed by the caller)."""
    if cancel is not None and cancel():
        raise Cancelled("Retrieve cancelled; nothing was kept.")
