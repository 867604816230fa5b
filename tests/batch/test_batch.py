"""`liverhealth batch` on the real CT: rows, errors, outputs identical to `liverhealth segment`,
a rerun that does no work, a batch killed by SIGTERM that a rerun completes without doing any
case twice, the same batch on a local Ray, and the per-case report, DICOM and database options."""

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

from liverhealth.batch import CaseOptions, discover, run_batch
from liverhealth.inference.manifest import load_manifest
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
    done = [r for r in rows.values() if r["status"] == "done"]
    assert len({r["worker"] for r in done}) <= 2  # two workers, each holding its model session for every case
    for r in done:
        assert 0 < float(r["inference_s"]) <= float(r["seconds"]) and float(r["load_s"]) >= 0

    single = tmp_path / "single"
    assert run_cli("segment", cohort[0], "--out", str(single)).returncode == 0
    batch_labels = np.asarray(nib.load(str(out / "PATIENT_DICOM" / "labels.nii.gz")).dataobj)
    assert np.array_equal(batch_labels, np.asarray(nib.load(str(single / "labels.nii.gz")).dataobj))
    doc = json.loads((out / "PATIENT_DICOM" / "measurements.json").read_text())
    assert float(rows["PATIENT_DICOM"]["liver_ml"]) == pytest.approx(doc["measurements"]["liver_volume_ml"], abs=0.01)
    assert int(rows["PATIENT_DICOM"]["lesions"]) == doc["measurements"]["lesion_count"]
    assert float(rows["PATIENT_DICOM"]["liver_confidence"]) == doc["measurements"]["liver_confidence"]
    assert rows["PATIENT_DICOM"]["lesions_check_first"] == ""  # the test model has no calibration: no count

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


def _rows(out):
    return {r["case_id"]: r for r in csv.DictReader((out / "cohort.csv").open())}


def _labels(folder):
    if (folder / "labels.png").is_file():  # a 2D image input
        from PIL import Image

        return np.asarray(Image.open(folder / "labels.png"))
    return np.asarray(nib.load(str(folder / "labels.nii.gz")).dataobj)


def test_the_same_batch_on_a_local_ray_gives_the_same_rows_and_outputs(cohort, models_dir, tmp_path):
    ray = pytest.importorskip("ray", reason="the cluster extra: pip install 'liverhealth[cluster]'")
    local = tmp_path / "local"
    assert run_cli("batch", *cohort, "--out", str(local), "--workers", "2").returncode == 0
    spec = load_manifest(models_dir).get(None)
    options = CaseOptions(spec.model_id, spec.sha256)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        on_ray = tmp_path / "ray"
        rows = run_batch(discover(cohort), on_ray, options, models_dir, workers=2, engine="ray")
        assert ray.is_initialized()  # a Ray the caller started is left running
    finally:
        ray.shutdown()
    assert [r.case_id for r in rows] == [c.case_id for c in discover(cohort)]
    expected, got = _rows(local), _rows(on_ray)
    assert set(got) == set(expected)
    for case_id, row in expected.items():
        for column in ("status", "error", "liver_ml", "tumour_ml", "lesions", "largest_lesion_mm", "model_sha256"):
            assert got[case_id][column] == row[column], (case_id, column)
        if row["status"] == "done":
            assert np.array_equal(_labels(on_ray / case_id), _labels(local / case_id)), case_id
    assert len({r.worker for r in rows if r.status == "done"}) <= 2
    assert not list(on_ray.glob(".*.partial"))


def test_report_dicom_and_database_per_case_on_ray_then_a_rerun_skips(data_root, models_dir, tmp_path):
    pytest.importorskip("ray", reason="the cluster extra: pip install 'liverhealth[cluster]'")
    import pydicom

    from liverhealth.storage.repository import Repository

    db_url = f"sqlite:///{tmp_path / 'results.db'}"
    dicom_ct = data_root / "totalsegmentator" / "example_ct_dicom"
    nifti_ct = data_root / "totalsegmentator" / "example_ct_sm.nii.gz"
    out = tmp_path / "out"
    command = ("batch", str(dicom_ct), str(nifti_ct), "--out", str(out), "--workers", "2", "--engine", "ray")
    extras = ("--report", "--dicom-out", "--save-db")
    env = {"LIVERHEALTH_DB_URL": db_url}  # on a cluster each node reads the database URL from its own settings
    result = run_cli(*command, *extras, env_extra=env)
    assert result.returncode == 0, result.stderr
    rows = _rows(out)
    assert {r["status"] for r in rows.values()} == {"done"}
    for case_id in rows:
        assert (out / case_id / "report.pdf").stat().st_size > 1000
    seg = pydicom.dcmread(out / "example_ct_dicom" / "dicom" / "seg.dcm")
    assert seg.Modality == "SEG" and (out / "example_ct_dicom" / "dicom" / "sr.dcm").is_file()
    assert not (out / "example_ct_sm" / "dicom").exists()
    assert "No DICOM SEG/SR" in rows["example_ct_sm"]["note"] and "example_ct_sm: No DICOM SEG/SR" in result.stdout
    repository = Repository(db_url)
    try:
        stored = {r.result_id for r in repository.list_results()}
        assert stored == {int(r["result_id"]) for r in rows.values()} and len(stored) == 2
        again = run_cli(*command, *extras, env_extra=env)
        assert "0 segmented, 2 already complete, 0 failed" in again.stdout, again.stderr
        fewer = run_cli(*command[:-2], "--report", env_extra=env)  # locally, asking less than was made
        assert "0 segmented, 2 already complete, 0 failed" in fewer.stdout, fewer.stderr
        assert {r.result_id for r in repository.list_results()} == stored  # nothing saved twice
    finally:
        repository.close()


def test_db_url_is_not_sent_through_ray(tmp_path):
    result = run_cli("batch", str(tmp_path), "--out", str(tmp_path / "o"), "--engine", "ray", "--db-url", "sqlite://")
    assert result.returncode == 2 and "LIVERHEALTH_DB_URL" in result.stderr and "Traceback" not in result.stderr


def test_cases_with_one_file_name_are_named_by_their_folders(data_root, tmp_path):
    """Every IRCADb case is a PATIENT_DICOM.zip: the cases take their folders' names, not -2."""
    cases = discover([data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip", data_root / "3Dircadb1.7" / "PATIENT_DICOM.zip"])
    assert [c.case_id for c in cases] == ["3Dircadb1.1", "3Dircadb1.7"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "a").mkdir(parents=True)
    for folder in (tmp_path / "a", tmp_path / "b" / "a"):
        (folder / "ct.nii.gz").write_bytes(b"")
    named = discover([tmp_path / "a" / "ct.nii.gz", tmp_path / "b" / "a" / "ct.nii.gz"])
    assert [c.case_id for c in named] == ["a_ct", "a_ct-2"]  # same folder names too: both, then numbered
