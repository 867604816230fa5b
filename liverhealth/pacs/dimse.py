"""DIMSE: C-FIND to find, C-GET to retrieve (over our own association, no port to open), C-STORE
to store (pynetdicom)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    RLELossless,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    Comprehensive3DSRStorage,
    CTImageStorage,
    EncapsulatedPDFStorage,
    SegmentationStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from liverhealth.errors import Cancelled, PacsError
from liverhealth.pacs.base import StudyHit
from liverhealth.pacs.settings import PacsSettings
from liverhealth.progress import CancelCheck, Progress

# pynetdicom logs a dropped connection with a traceback; our PacsError says it in one line instead
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)

IMAGE_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000,
    JPEGLosslessSV1,
    JPEGBaseline8Bit,
    RLELossless,
]
PENDING = (0xFF00, 0xFF01)


def _listening(node: tuple[str, int], timeout_s: float) -> bool:
    """Whether anything accepts TCP connections at ``node``: tells a node that refused our association
    (pynetdicom reports some refusals as aborts) from one that is down (also an abort)."""
    try:
        with socket.create_connection(node, timeout=timeout_s):
            return True
    except OSError:
        return False


def _joined(value) -> str:
    return value if isinstance(value, str) else "\\".join(str(v) for v in value or [])


class DimsePacs:
    def __init__(self, settings: PacsSettings) -> None:
        self.settings = settings

    def _ae(self) -> AE:
        ae = AE(ae_title=self.settings.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.settings.timeout_s
        return ae

    @contextmanager
    def _association(self, ae: AE, action: str, **kwargs) -> Iterator:
        where = self.settings.where
        node = (self.settings.host, self.settings.port)
        try:
            assoc = ae.associate(*node, ae_title=self.settings.called_aet, **kwargs)
            if assoc.is_aborted:  # a refusal can arrive as an abort when the node drops the link at once: ask again
                assoc = ae.associate(*node, ae_title=self.settings.called_aet, **kwargs)
        except OSError as exc:
            raise PacsError(f"The {where} cannot be reached ({type(exc).__name__}) to {action}.") from exc
        if assoc.is_rejected or (assoc.is_aborted and _listening(node, self.settings.timeout_s)):
            raise PacsError(f"The {where} rejected the association (check the AE titles: we call as "
                            f"{self.settings.calling_aet}) when we tried to {action}.")  # fmt: skip
        if not assoc.is_established:
            raise PacsError(f"The {where} does not answer; check that it runs and the PACS settings ({action}).")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
        if assoc.is_aborted:
            raise PacsError(f"The {where} broke off the association while we tried to {action}; nothing was kept.")

    def _find(self, query: Dataset, action: str) -> list[Dataset]:
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        found = []
        with self._association(ae, action) as assoc:
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                if not status:
                    raise PacsError(f"The {self.settings.where} did not answer the query ({action}).")
                if status.Status in PENDING and identifier is not None:
                    found.append(identifier)
                elif status.Status not in (0x0000, *PENDING):
                    raise PacsError(f"The {self.settings.where} refused the query (status 0x{status.Status:04X}).")
        return found

    def find(
        self, patient_id: str = "", accession: str = "", study_date: str = "", modality: str = ""
    ) -> list[StudyHit]:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        query.PatientID = patient_id
        query.AccessionNumber = accession
        query.StudyDate = study_date
        query.ModalitiesInStudy = modality
        query.StudyDescription = ""
        hits = self._find(query, "find studies")
        return [
            StudyHit(
                str(h.get("StudyInstanceUID", "")),
                str(h.get("StudyDate", "")),
                str(h.get("PatientID", "")),
                str(h.get("AccessionNumber", "")),
                _joined(h.get("ModalitiesInStudy", "")),
                str(h.get("StudyDescription", "")),
            )
            for h in hits
        ]

    def ct_series(self, study_uid: str) -> list[tuple[str, int]]:
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = ""
        query.Modality = "CT"
        query.NumberOfSeriesRelatedInstances = ""
        rows = self._find(query, "list the study's series")
        return [(str(r.SeriesInstanceUID), int(r.get("NumberOfSeriesRelatedInstances") or 0)) for r in rows]

    def fetch_series(self, study_uid: str, series_uid: str, folder: Path, progress: Progress | None,
                     cancel: CancelCheck | None) -> int:  # fmt: skip
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for syntax in IMAGE_SYNTAXES:  # one context per syntax: the PACS sends what it stores, untranscoded
            ae.add_requested_context(CTImageStorage, [syntax])
        received = {"count": 0, "cancelled": False}
        expected = dict(self.ct_series(study_uid)).get(series_uid, 0)

        def store(event) -> int:
            if cancel is not None and cancel():
                received["cancelled"] = True
                return 0xA700  # refused: out of resources, the PACS stops sending
            dataset = event.dataset
            dataset.file_meta = event.file_meta
            dataset.save_as(str(folder / f"{received['count']:06d}.dcm"), enforce_file_format=True)
            received["count"] += 1
            if progress:
                progress(received["count"], max(expected, received["count"]))
            return 0x0000

        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        roles = [build_role(CTImageStorage, scp_role=True)]
        with self._association(
            ae, "retrieve the series", ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, store)]
        ) as assoc:
            for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                if not status:
                    raise PacsError(
                        f"The {self.settings.where} stopped answering during the retrieve; nothing was kept."
                    )
                if received["cancelled"]:
                    assoc.abort()
                    break
        if received["cancelled"]:
            raise Cancelled("Retrieve cancelled; nothing was kept.")
        return received["count"]

    def has_instance(self, study_uid: str, sop_instance_uid: str) -> bool:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = ""
        query.SOPInstanceUID = sop_instance_uid
        return bool(self._find(query, "check what the PACS holds"))

    def store(self, datasets: list[Dataset]) -> None:
        ae = self._ae()
        for sop_class in (SegmentationStorage, Comprehensive3DSRStorage, EncapsulatedPDFStorage):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        with self._association(ae, "store the results") as assoc:
            for dataset in datasets:
                status = assoc.send_c_store(dataset)
                if not status or status.Status != 0x0000:
                    code = f"0x{status.Status:04X}" if status else "no answer"
                    raise PacsError(f"The {self.settings.where} did not store {dataset.Modality} ({code}).")
