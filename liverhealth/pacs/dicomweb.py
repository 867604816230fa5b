"""DICOMweb: QIDO-RS to find, WADO-RS to retrieve, STOW-RS to store (dicomweb-client)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from liverhealth.errors import PacsError
from liverhealth.pacs.base import StudyHit, check_cancel
from liverhealth.pacs.settings import PacsSettings
from liverhealth.progress import CancelCheck, Progress


def _value(item: dict, tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    value = values[0]
    if isinstance(value, dict):  # a person name
        value = value.get("Alphabetic", "")
    return "\\".join(str(v) for v in values) if tag == "00080061" else str(value)


class DicomwebPacs:
    def __init__(self, settings: PacsSettings) -> None:
        self.settings = settings
        session = requests.Session()
        if settings.username:
            session.auth = (settings.username, settings.password or "")
        self.client = DICOMwebClient(url=settings.url, session=session)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        where = self.settings.where
        try:
            yield
        except requests.exceptions.ConnectionError as exc:
            raise PacsError(
                f"The {where} does not answer ({type(exc).__name__}); check that it runs and the PACS settings."
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise PacsError(f"The {where} did not answer in time while trying to {action}.") from exc
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            reason = {401: "refused our credentials", 403: "does not allow it", 404: "has no such study or series"}
            raise PacsError(
                f"The {where} {reason.get(status, f'answered HTTP {status}')} when we tried to {action}."
            ) from exc
        except (requests.exceptions.RequestException, ValueError, OSError) as exc:
            raise PacsError(
                f"The {where} broke off while we tried to {action} ({type(exc).__name__}); nothing was kept."
            ) from exc

    def find(
        self, patient_id: str = "", accession: str = "", study_date: str = "", modality: str = ""
    ) -> list[StudyHit]:
        filters = {k: v for k, v in (("PatientID", patient_id), ("AccessionNumber", accession),
                                     ("StudyDate", study_date), ("ModalitiesInStudy", modality)) if v}  # fmt: skip
        with self._errors("find studies"):
            rows = self.client.search_for_studies(
                search_filters=filters, fields=["StudyDescription", "ModalitiesInStudy"]
            )
        return [
            StudyHit(
                _value(r, "0020000D"),
                _value(r, "00080020"),
                _value(r, "00100020"),
                _value(r, "00080050"),
                _value(r, "00080061"),
                _value(r, "00081030"),
            )
            for r in rows
        ]

    def ct_series(self, study_uid: str) -> list[tuple[str, int]]:
        with self._errors("list the study's series"):
            rows = self.client.search_for_series(study_uid, search_filters={"Modality": "CT"},
                                                 fields=["NumberOfSeriesRelatedInstances"])  # fmt: skip
        return [(_value(r, "0020000E"), int(_value(r, "00201209") or 0)) for r in rows]

    def fetch_series(self, study_uid: str, series_uid: str, folder: Path, progress: Progress | None,
                     cancel: CancelCheck | None) -> int:  # fmt: skip
        count = 0
        expected = dict(self.ct_series(study_uid)).get(series_uid, 0)
        with self._errors("retrieve the series"):
            # any transfer syntax: the PACS sends what it holds (JPEG 2000 too), pylibjpeg decodes it here
            for dataset in self.client.iter_series(study_uid, series_uid, media_types=(("application/dicom", "*"),)):
                check_cancel(cancel)
                dataset.save_as(str(folder / f"{count:06d}.dcm"), enforce_file_format=True)
                count += 1
                if progress:
                    progress(count, max(expected, count))
        return count

    def has_instance(self, study_uid: str, sop_instance_uid: str) -> bool:
        with self._errors("check what the PACS holds"):
            return bool(
                self.client.search_for_instances(study_uid, search_filters={"SOPInstanceUID": sop_instance_uid})
            )

    def store(self, datasets: list[Dataset]) -> None:
        with self._errors("store the results"):
            self.client.store_instances(datasets)
