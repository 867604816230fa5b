"""What the results database keeps of who a study is: all of it (a clinical site) or a keyed
pseudonym (a research site).

A research site keeps ``HMAC-SHA256(site key, patient ID)`` instead of the patient, so studies
of one patient still group (priors, the nadir) without the ID, the name or the birth date in the
database. Study dates are shifted back by 1 to 365 days, a shift drawn from the same key and ID,
so one patient's studies keep their order and intervals while the dates no longer match the
hospital's records; the study time, accession, description, institution, referring physician
and study UID are not kept. A study without a patient ID gets no pseudonym and no date.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import date, timedelta

from liverhealth.domain import PatientInfo, StudyInfo

DATE_SHIFT_DAYS = 365


@dataclass(frozen=True)
class KeptIdentity:
    """The patient and study identity a save writes ("clinical" or "research" ``mode``)."""

    mode: str
    patient: PatientInfo  # clinical: as the source states it; research: sex only
    pseudonym: str  # research: the keyed pseudonym of the patient ID ("" when there is no ID)
    study: StudyInfo  # clinical: as the source states it; research: the shifted date only

    def has_patient(self) -> bool:
        return bool(self.pseudonym) if self.mode == "research" else not self.patient.is_empty()


def _mac(key: bytes, purpose: str, patient_id: str) -> bytes:
    return hmac.new(key, f"liverhealth-{purpose}:{patient_id.strip()}".encode(), hashlib.sha256).digest()


def pseudonym(patient_id: str, key: bytes) -> str:
    """The patient's research pseudonym: HMAC-SHA256 of the ID under the site key, as hex."""
    return _mac(key, "patient", patient_id).hex()


def date_shift_days(patient_id: str, key: bytes) -> int:
    """How many days this patient's study dates are moved back (1 to 365, fixed by key and ID)."""
    return int.from_bytes(_mac(key, "date-shift", patient_id)[:4], "big") % DATE_SHIFT_DAYS + 1


def shift_date(yyyymmdd: str, days: int) -> str:
    """A DICOM date moved back ``days`` days ("" when it is not a valid date)."""
    try:
        day = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except (ValueError, TypeError):
        return ""
    if len(yyyymmdd) != 8:
        return ""
    return (day - timedelta(days=days)).strftime("%Y%m%d")


def clinical_identity(patient: PatientInfo | None, study: StudyInfo | None) -> KeptIdentity:
    return KeptIdentity("clinical", patient or PatientInfo(), "", study or StudyInfo())


def research_identity(patient: PatientInfo | None, study: StudyInfo | None, key: bytes) -> KeptIdentity:
    """The pseudonym, the shifted study date and the technique; nothing else that identifies."""
    patient, study = patient or PatientInfo(), study or StudyInfo()
    technique = study.technique()
    patient_id = patient.patient_id.strip()
    if not patient_id:
        return KeptIdentity("research", PatientInfo(), "", technique)
    shifted = shift_date(study.study_date.strip(), date_shift_days(patient_id, key))
    return KeptIdentity(
        "research", PatientInfo(sex=patient.sex), pseudonym(patient_id, key), replace(technique, study_date=shifted)
    )


def kept_identity(patient: PatientInfo | None, study: StudyInfo | None, key: bytes | None) -> KeptIdentity:
    """Research identity when a site key is given, else clinical."""
    return research_identity(patient, study, key) if key is not None else clinical_identity(patient, study)
