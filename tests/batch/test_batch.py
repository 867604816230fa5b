"""`liverhealth batch` on the real CT: rows, errors, outputs identical to `liverhealth segment`,
a rerun that does no work, and a batch killed by SIGTERM that a rerun completes without doing any
case twice."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest

from liverhealth.batch import discover
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture()
def cohort(data_root, tmp_path):
    """Inputs of six cases: two DICOM (a zip, a folder), a NIfTI, a JPG slice, and two bad ones."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "slice.jpg").write_bytes((data_root / "lits_jpg" / "images" / "volume-0_slice_38.jpg").read_bytes())
    (folder / "notes.nii").write_text("not a CT")
    broken = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    (folder / "broken.zip").write_bytes(broken.read_bytes()[: 1 << 20])
    return [
        str(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"),
        str(data_root / "totalsegmentator" / "example_ct_dicom"),
        str(data_root / "totalsegmentator" / "example_ct_sm.nii.gz"),
        str(folder),
    ]


def test_batch_rows_outputs_and_rerun(cohort, models_dir, tmp_path, data_root):
    out = tmp_path / "out"
    result = run_cli("batch", *cohort, "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = {r["case_id"]: r for r in csv.DictReader((out / "cohort.csv").open())}
    assert set(rows) == {"PATIENT_DICOM", "example_ct_dicom", "example_ct_sm", "slice", "notes", "broken"}
    assert {k for k, r in rows.items() if r["status"] == "error"} == {"notes", "broken"}
    assert "not a readable NIfTI" in rows["notes"]["error"] and "\n" not in rows["broken"]["error"]
    assert not (out / "notes").exists() and not (out / "broken").exists()  # no folder for a failed case
    assert pq.read_table(out / "cohort.parquet").num_rows == 6 and (out / "cohort.png").stat().st_size > 1000

    single = tmp_path / "single"
    assert run_cli("segment", cohort[0], "--out", str(single)).returncode == 0
    batch_labels = np.asarray(nib.load(str(out / "PATIENT_DICOM" / "labels.nii.gz")).dataobj)
    assert np.array_equal(batch_labels, np.asarray(nib.load(str(single / "labels.nii.gz")).dataobj))
    doc = json.loads((out / "PATIENT_DICOM" / "measurements.json").read_text())
    assert float(rows["PATIENT_DICOM"]["liver_ml"]) == pytest.approx(doc["measurements"]["liver_volume_ml"], abs=0.01)
    assert int(rows["PATIENT_DICOM"]["lesions"]) == doc["measurements"]["lesion_count"]

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/measurements.json")}
    again = run_cli("batch", *cohort, "--out", str(out), "--workers", "2")
    assert "0 segmented, 4 already complete, 2 failed" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/measurements.json")} == stamps  # no work redone


def test_every_case_failing_exits_2(tmp_path, models_dir):
    (tmp_path / "a.nii").write_text("x")
    (tmp_path / "b.png").write_bytes(b"not a png")
    result = run_cli("batch", str(tmp_path / "a.nii"), str(tmp_path / "b.png"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "0 segmented, 0 already complete, 2 failed" in result.stdout


def test_csv_inputs_and_unique_case_ids(tmp_path, data_root):
    listing = tmp_path / "cases.csv"
    ct = data_root / "totalsegmentator" / "example_ct_sm.nii.gz"
    listing.write_text(f"path,case_id\n{ct},patient 1\n{ct},patient 1\n{ct},\n")
    cases = discover([listing])
    assert [c.case_id for c in cases] == ["patient_1", "patient_1-2", "example_ct_sm"]


def test_sigterm_mid_batch_then_rerun_completes_without_doing_a_case_twice(data_root, models_dir, tmp_path):
    ct = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    listing = tmp_path / "cases.csv"
    listing.write_text("path,case_id\n" + "".join(f"{ct},case{i}\n" for i in range(4)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "liverhealth.cli", "batch", str(listing), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.monotonic() + 300
    while not list(out.glob("case*/batch.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr.decode()
    assert b"Traceback" not in stderr
    first = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("case*/batch.json")}
    assert first and len(first) < 4
    for folder in out.glob("case*"):
        assert (folder / "batch.json").is_file() and (folder / "measurements.json").is_file()  # complete or absent
    rerun = run_cli("batch", str(listing), "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert f"{4 - len(first)} segmented, {len(first)} already complete, 0 failed" in rerun.stdout
    assert {name: (out / name / "batch.json").stat().st_mtime_ns for name in first} == first
    assert not list(out.glob(".*.partial"))
    with zipfile.ZipFile(ct):  # the input is untouched
        pass
