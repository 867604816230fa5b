"""DICOM SEG and TID 1500 SR out, read back on the real CT: the SEG (read by highdicom, placed in
world coordinates) reproduces labels.nii.gz voxel for voxel, the SR's numbers are measurements.json's,
dciodvfy finds no error, and a reference SEG is read on its CT."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest

from liverhealth.analysis import measure
from liverhealth.analysis.metrics import dice
from liverhealth.domain import ModelInfo
from liverhealth.errors import InputError
from liverhealth.imaging import load
from liverhealth.imaging.dicom_seg import build_seg, read_seg_labels, save_dataset
from liverhealth.imaging.geometry import LPS_TO_RAS
from liverhealth.reporting.dicom_sr import SR_DECIMALS, build_sr, read_sr_measurements
from tests.helpers.cli import run_cli
from tests.helpers.prerequisites import require

pytestmark = pytest.mark.slow


def highdicom_labels_on_nifti_grid(seg_path: Path, nifti_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels from the SEG via highdicom, labels from the NIfTI), both on the NIfTI's [i, j, k] grid,
    matched through world coordinates (the SEG's LPS frame positions, the NIfTI's RAS affine)."""
    volume = hd.seg.segread(str(seg_path)).get_volume(combine_segments=False)
    liver, tumour = volume.array[..., 0] > 0, volume.array[..., 1] > 0
    from_seg = (liver.astype(np.uint8) + tumour).astype(np.uint8)  # [slice, row, column]
    image = nib.load(str(nifti_path))
    labels = np.asarray(image.dataobj)
    index = np.linalg.inv(image.affine) @ LPS_TO_RAS @ np.asarray(volume.affine)  # seg (s, r, c) -> nifti (i, j, k)
    s, r, c = np.meshgrid(*(np.arange(n) for n in from_seg.shape), indexing="ij")
    ijk = np.tensordot(index[:3, :3], np.stack([s, r, c]), axes=1) + index[:3, 3, None, None, None]
    rounded = np.rint(ijk).astype(int)
    assert np.abs(ijk - rounded).max() < 1e-3  # every SEG voxel centre is a NIfTI voxel centre
    on_grid = np.zeros(labels.shape, dtype=np.uint8)
    on_grid[rounded[0], rounded[1], rounded[2]] = from_seg
    return on_grid, labels


def test_cli_dicom_out_round_trip_on_ircadb(data_root, models_dir, tmp_path):
    out, dicom = tmp_path / "out", tmp_path / "dicom"
    result = run_cli("segment", str(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"), "--out", str(out),
                     "--dicom-out", str(dicom))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    from_seg, from_nifti = highdicom_labels_on_nifti_grid(dicom / "seg.dcm", out / "labels.nii.gz")
    assert np.array_equal(from_seg, from_nifti) and from_nifti.any()
    assert dice(from_seg == 2, from_nifti == 2) == 1.0
    doc = json.loads((out / "measurements.json").read_text())["measurements"]
    sr = read_sr_measurements(dicom / "sr.dcm")
    assert sr["liver"]["Volume"] == round(doc["liver_volume_ml"], SR_DECIMALS)
    assert sr["tumour burden"]["Volume"] == round(doc["tumour_volume_ml"], SR_DECIMALS)
    assert sr["tumour burden"]["Tumour burden, percent of liver volume"] == round(doc["tumour_burden_pct"], SR_DECIMALS)
    assert len([k for k in sr if k.startswith("lesion ")]) == len(doc["lesions"])
    for lesion in doc["lesions"]:
        row = sr[f"lesion {lesion['lesion_id']}"]
        assert row["Volume"] == round(lesion["volume_ml"], SR_DECIMALS)
        assert row["Long Axis"] == round(lesion["longest_diameter_mm"], SR_DECIMALS)
        assert row["Short Axis"] == round(lesion["perpendicular_diameter_mm"], SR_DECIMALS)
    seg = hd.seg.segread(str(dicom / "seg.dcm"))
    assert seg.NumberOfFrames == 129 * 2  # empty frames kept
    assert [s.SegmentedPropertyTypeCodeSequence[0].CodeValue for s in seg.SegmentSequence] == ["10200004", "108369006"]
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "threshold"
    ct = load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    assert seg.StudyInstanceUID == ct.dicom.study_uid  # the SEG goes into the CT's study


def test_dciodvfy_finds_no_error_and_the_pdf_is_in_the_study(data_root, models_dir, tmp_path, monkeypatch):
    require(shutil.which("dciodvfy") is not None, "dciodvfy is missing: apt-get install dicom3tools")
    monkeypatch.delenv("LIVERHEALTH_LLM_BASE_URL", raising=False)
    series = data_root / "totalsegmentator" / "example_ct_dicom"
    result = run_cli(
        "segment", str(series), "--out", str(tmp_path / "o"), "--dicom-out", str(tmp_path / "d"), "--report"
    )
    assert result.returncode == 0, result.stderr
    for name in ("seg.dcm", "sr.dcm", "report.dcm"):
        check = subprocess.run(["dciodvfy", str(tmp_path / "d" / name)], capture_output=True, text=True)
        errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], name
    document = pydicom.dcmread(tmp_path / "d" / "report.dcm")
    pdf = (tmp_path / "o" / "report.pdf").read_bytes()
    assert (
        document.EncapsulatedDocument[: len(pdf)] == pdf
        and document.MIMETypeOfEncapsulatedDocument == "application/pdf"
    )
    seg = pydicom.dcmread(tmp_path / "d" / "seg.dcm")
    assert document.StudyInstanceUID == seg.StudyInstanceUID


def test_seg_on_a_series_whose_instance_numbers_run_against_z(data_root, tmp_path):
    """TotalSegmentator's series: InstanceNumber falls as z rises; the SEG must still sit on the right voxels."""
    volume = load(data_root / "totalsegmentator" / "example_ct_dicom")
    numbers = [int(h.InstanceNumber) for h in volume.dicom.headers]
    assert numbers == sorted(numbers, reverse=True)
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[2:15, 100:300, 120:330] = 1  # an asymmetric pattern: any flip or shift changes it
    labels[4:7, 200:230, 260:300] = 2
    labels[12, 50:60, 400:420] = 2
    seg = build_seg(volume, labels, ModelInfo("t", "t"))
    save_dataset(seg, tmp_path / "seg.dcm")
    from liverhealth.imaging.writers import save_labels_nifti

    save_labels_nifti(labels, volume, tmp_path / "labels.nii.gz")
    from_seg, from_nifti = highdicom_labels_on_nifti_grid(tmp_path / "seg.dcm", tmp_path / "labels.nii.gz")
    assert np.array_equal(from_seg, from_nifti)
    assert np.array_equal(read_seg_labels(tmp_path / "seg.dcm", volume), labels)  # our reader, by position


def test_reference_seg_read_on_its_ct(data_root, models_dir):
    """dcmqi's liver SEG on its 3-slice CT matches dcmqi's NRRD label map of the same liver."""
    ct = load(data_root / "dcmqi" / "ct-3slice")
    reference = read_seg_labels(data_root / "dcmqi" / "liver.dcm", ct)
    data, _ = nrrd.read(str(data_root / "dcmqi" / "liver_seg.nrrd"))
    assert reference.any() and set(np.unique(reference)) == {0, 1}
    assert int(np.count_nonzero(reference)) == int(np.count_nonzero(data))
    reference_seg = str(data_root / "dcmqi" / "liver.dcm")
    result = run_cli("segment", str(data_root / "dcmqi" / "ct-3slice"), "--reference", reference_seg,
                     "--out", str(Path(models_dir).parent / "o"))  # fmt: skip
    assert result.returncode == 0 and "Against the reference: liver dice" in result.stdout, result.stderr


def test_seg_of_another_ct_is_refused(data_root):
    ct = load(data_root / "totalsegmentator" / "example_ct_dicom")
    with pytest.raises(InputError, match=r"not on a slice of this CT|not in the plane"):
        read_seg_labels(data_root / "dcmqi" / "liver.dcm", ct)


def test_no_seg_for_a_nifti_input_and_nothing_written(data_root, models_dir, tmp_path):
    result = run_cli("segment", str(data_root / "totalsegmentator" / "example_ct_sm.nii.gz"), "--out",
                     str(tmp_path / "o"), "--dicom-out", str(tmp_path / "d"))  # fmt: skip
    assert result.returncode == 2 and "needs a DICOM CT input" in result.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


def test_sr_without_spacing_is_refused(data_root):
    ct = load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    labels = np.zeros(ct.shape, dtype=np.uint8)
    seg = build_seg(ct, labels, ModelInfo("t", "t"))
    measured = dataclasses.replace(measure(ct, labels), liver_volume_ml=None)
    with pytest.raises(InputError, match="no known voxel size"):
        build_sr(seg, measured, "t")
