"""The report PDF as a DICOM Encapsulated PDF instance in the CT's study (a PACS shows it beside
the images). Patient and study attributes come from the source slices, as DICOM requires."""

from __future__ import annotations

from datetime import datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from liverhealth import __version__

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
PDF_SERIES_NUMBER = 902
COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip


def build_encapsulated_pdf(pdf: bytes, source: Dataset, title: str = "LiverHealth draft report") -> Dataset:
    """An Encapsulated PDF instance carrying ``pdf``, in the study of ``source`` (a slice header)."""
    now = datetime.now()
    ds = Dataset()
    uid = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = ENCAPSULATED_PDF_STORAGE, uid
    for keyword in COPIED:
        setattr(ds, keyword, source.get(keyword, ""))
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = PDF_SERIES_NUMBER
    ds.SeriesDescription = "LiverHealth report (draft, not reviewed)"
    ds.InstanceNumber = 1
    ds.Manufacturer = "LiverHealth"
    ds.SoftwareVersions = __version__
    ds.ConversionType = "WSD"
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF may hold the patient's details when asked for
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    return ds
