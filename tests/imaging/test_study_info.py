"""The study's identity and technique read from real DICOM series, and the phase rule."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from liverhealth.imaging import load
from liverhealth.imaging.dicom import contrast_phase


def test_study_identity_and_technique_from_real_series(data_root, ircadb1):
    study = ircadb1.study
    assert study.date_iso == "2009-05-27"
    assert study.institution == "IRCAD"
    assert study.slice_thickness_mm == pytest.approx(1.6)
    assert study.study_uid == ircadb1.dicom.study_uid
    assert study.phase == "" and study.contrast == ""  # the series says neither
    dcmqi = load(data_root / "dcmqi" / "ct-3slice").study
    assert dcmqi.accession == "03086212"
    assert dcmqi.date_iso == "2003-04-17"


def test_a_nifti_has_no_study_identity(data_root):
    study = load(data_root / "totalsegmentator" / "example_ct_sm.nii.gz").study
    assert study.is_empty() and study.date_iso == ""


@pytest.mark.parametrize(
    ("description", "phase"),
    [
        ("ABDOMEN ART PHASE 1.0 B30f", "arterial"),
        ("Portal venous 3mm", "portal venous"),
        ("NATIVE ABDOMEN", "non-contrast"),
        ("LIVER DELAYED 5MIN", "delayed"),
        ("HEART 1.0", ""),  # "ART" inside a word is not a phase
        ("SHAPE", ""),
    ],
)
def test_phase_from_whole_words_only(description, phase):
    ds = Dataset()
    ds.SeriesDescription = description
    assert contrast_phase(ds) == phase
