"""Where the PACS is: environment (LIVERHEALTH_PACS_*) over the config file (pacs_* keys)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from liverhealth import config
from liverhealth.errors import PacsError
from liverhealth.redact import url_credentials


@dataclass(frozen=True)
class PacsSettings:
    """One PACS. ``protocol`` is "dicomweb" (``url``: the DICOMweb root) or "dimse" (``host``,
    ``port``, ``called_aet``; we call as ``calling_aet``)."""

    protocol: str
    url: str = ""
    username: str | None = None
    password: str | None = None
    host: str = ""
    port: int = 104
    called_aet: str = "ORTHANC"
    calling_aet: str = "LIVERHEALTH"
    timeout_s: float = 30.0

    @property
    def where(self) -> str:
        """The PACS for messages: address only, never credentials."""
        if self.protocol == "dicomweb":
            parts = urlsplit(self.url)
            return f"DICOMweb server {parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        return f"DICOM node {self.called_aet}@{self.host}:{self.port}"

    @classmethod
    def from_environment(cls) -> PacsSettings:
        """LIVERHEALTH_PACS_URL (DICOMweb root) or LIVERHEALTH_PACS_DIMSE (HOST:PORT), with
        LIVERHEALTH_PACS_USER/PASSWORD, _AET, _CALLING_AET, _TIMEOUT; or the pacs_* config keys."""
        url = config.setting("pacs_url", "LIVERHEALTH_PACS_URL")
        dimse = config.setting("pacs_dimse", "LIVERHEALTH_PACS_DIMSE")
        timeout = float(config.setting("pacs_timeout_s", "LIVERHEALTH_PACS_TIMEOUT", "30") or 30)
        user = config.setting("pacs_user", "LIVERHEALTH_PACS_USER")
        password = config.setting("pacs_password", "LIVERHEALTH_PACS_PASSWORD")
        if url:
            bare, secret = url_credentials(url)
            if secret and not password:  # credentials written into the URL: take them out of it
                parts = urlsplit(url)
                user, password = parts.username, parts.password
            return cls("dicomweb", url=bare.rstrip("/"), username=user, password=password, timeout_s=timeout)
        if dimse:
            host, _, port = dimse.rpartition(":")
            if not host or not port.isdigit():
                raise PacsError("LIVERHEALTH_PACS_DIMSE must be HOST:PORT (e.g. pacs.hospital.local:104).")
            return cls(
                "dimse",
                host=host,
                port=int(port),
                called_aet=config.setting("pacs_aet", "LIVERHEALTH_PACS_AET", "ORTHANC") or "ORTHANC",
                calling_aet=config.setting("pacs_calling_aet", "LIVERHEALTH_PACS_CALLING_AET", "LIVERHEALTH")
                or "LIVERHEALTH",
                timeout_s=timeout,
            )
        raise PacsError(
            "No PACS is configured: set LIVERHEALTH_PACS_URL (a DICOMweb root, e.g. http://pacs:8042/dicom-web) "
            "or LIVERHEALTH_PACS_DIMSE (HOST:PORT, with LIVERHEALTH_PACS_AET), or pacs_url / pacs_dimse in the "
            "config file."
        )
