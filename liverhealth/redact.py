"""Keep secrets and patient identifiers out of what is shown, stored or sent.

Endpoint and database URLs may carry credentials (``http://user:KEY@host/v1``); patient names
and IDs may turn up in free text. Everything that is printed, written to a report or a
database row, or sent to the LLM goes through these functions first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from liverhealth.domain import PatientInfo, StudyInfo

SECRET_QUERY_KEYS = {"key", "api_key", "apikey", "token", "access_token", "password", "secret", "signature", "sig"}
REMOVED = "[removed]"


def safe_url(url: str) -> str:
    """The URL without user name, password and secret query parameters (for display and storage)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    if not parts.scheme:
        return url.rsplit("@", 1)[-1]
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = urlencode(
        [
            (k, v if k.lower() not in SECRET_QUERY_KEYS else REMOVED)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_credentials(url: str) -> tuple[str, str | None]:
    """The URL without its user-info part, and the password (or lone user name) it carried."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment)), (password or user or None)


def scrub_identifiers(text: str, patient: PatientInfo | None, study: StudyInfo | None = None) -> str:
    """``text`` with the patient's name (each part of 3 letters or more), ID and birth date removed,
    and the study's identity (date in DICOM and ISO form, accession, UID, institution, description,
    the referring physician's name parts)."""
    tokens: set[str] = set()
    if patient is not None and not patient.is_empty():
        tokens |= {patient.patient_id.strip(), patient.birth_date.strip()}
        tokens |= {part for part in re.split(r"[\^\s,]+", patient.name) if len(part) >= 3}
    if study is not None and not study.is_empty():
        tokens |= {study.study_date.strip(), study.date_iso, study.accession.strip(), study.study_uid.strip()}
        tokens |= {study.institution.strip(), study.description.strip()}
        tokens |= {part for part in re.split(r"[\^\s,]+", study.referring_physician) if len(part) >= 3}
    for token in sorted(filter(None, tokens), key=len, reverse=True):
        text = re.sub(re.escape(token), REMOVED, text, flags=re.IGNORECASE)
    return text
