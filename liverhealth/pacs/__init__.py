"""A PACS as source and destination: find studies, retrieve a CT series into a local cache, store
results back, over DICOMweb (QIDO-RS, WADO-RS, STOW-RS with dicomweb-client) or DIMSE (C-FIND,
C-GET, C-STORE with pynetdicom). Address, AE titles and credentials come from the config file or
the environment and never appear in a message or a log line."""

from liverhealth.pacs.base import Pacs, StudyHit
from liverhealth.pacs.client import connect, retrieve_study
from liverhealth.pacs.settings import PacsSettings

__all__ = ["Pacs", "PacsSettings", "StudyHit", "connect", "retrieve_study"]
