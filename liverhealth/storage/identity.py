"""What the results database keeps of who a study is: all of it (a clinical site) or a keyed
pseudonym (a research site).

A patient is known by their patient ID, or, when the source gives none (3D-IRCADb), by name and
birth date together. A research site keeps ``HMAC-SHA256(site key, that key)`` instead of the
patient, so studies of one patient still group (priors, the nadir) without the ID, the name or the
birth date in the database. Study dates are shifted back by 1 to 365 days, a shift drawn from the same key and ID,
so one patient's studies keep their order and intervals while the dates no longer match the
hospital's records; the study time, accession, description, institution, referring physician
and study UID are not kept. A study with neither an ID nor a name gets no pseudonym and no date.
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
        """Whether a patient row is kept (an ID, or a name, or their pseudonym)."""
        return bool(self.pseudonym) if self.mode == "research" else bool(patient_key(self.patient))


def patient_key(patient: PatientInfo) -> str:
    """What tells a patient apart: the patient ID, else name and birth date ("" when neither)."""
    if patient.patient_id.strip():
        return f"id:{patient.patient_id.strip()}"
    name = " ".join(patient.name.replace("^", " ").upper().split())
    return f"name:{name}|{patient.birth_date.strip()}" if name else ""


def _mac(key: bytes, purpose: str, who: str) -> bytes:
    return hmac.new(key, f"liverhealth-{purpose}:{who}".encode(), hashlib.sha256).digest()


def pseudonym(patient: PatientInfo, key: bytes) -> str:
    """The patient's research pseudonym: HMAC-SHA256 of ``patient_key`` under the site key, as hex
    ("" for a patient with neither ID nor name)."""
    who = patient_key(patient)
    return _mac(key, "patient", who).hex() if who else ""


def date_shift_days(patient: PatientInfo, key: bytes) -> int:
    """How many days this patient's study dates are moved back (1 to 365, fixed by key and patient)."""
    return int.from_bytes(_mac(key, "date-shift", patient_key(patient))[:4], "big") % DATE_SHIFT_DAYS + 1


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
    name = pseudonym(patient, key)
    if not name:
        return KeptIdentity("research", PatientInfo(), "", technique)
    shifted = shift_date(study.study_date.strip(), date_shift_days(patient, key))
    return KeptIdentity("research", PatientInfo(sex=patient.sex), name, replace(technique, study_date=shifted))


def kept_identity(patient: PatientInfo | None, study: StudyInfo | None, key: bytes | None) -> KeptIdentity:
    """Research identity when a site key is given, else clinical."""
    return research_identity(patient, study, key) if key is not None else clinical_identity(patient, study)
