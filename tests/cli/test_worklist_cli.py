"""`liverhealth db list` as a worklist and `liverhealth compare --prior`, as a user runs them, on
the real DICOM series (3Dircadb1.1, 3Dircadb1.7, dcmqi's ct-3slice) and a constructed follow-up of
ct-3slice (its DICOM files with a later study date, new UIDs and a little noise: not a real scan)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from liverhealth.imaging import load
from liverhealth.storage import Repository
from tests.helpers.cli import run_cli
from tests.storage.test_identity import constructed_followup, record_of


@pytest.fixture()
def saved(data_root, tmp_path):
    """A database holding 3Dircadb1.1 (with a constructed later study), 3Dircadb1.7 and ct-3slice."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    repository = Repository(url)
    repository.init()
    ids = {}
    for name in ("3Dircadb1.1", "3Dircadb1.7"):
        volume = load(data_root / name / "PATIENT_DICOM.zip")
        labels = np.zeros(volume.shape, np.uint8)
        labels[40:80, 200:300, 200:300] = 1
        ids[name] = repository.save(record_of(volume, labels), store_patient=True)
        if name == "3Dircadb1.1":
            later = constructed_followup(volume, "20091126", seed=2)
            ids["later"] = repository.save(record_of(later, labels), store_patient=True)
    thin = load(data_root / "dcmqi" / "ct-3slice")
    labels = np.zeros(thin.shape, np.uint8)
    labels[:, 200:300, 150:250] = 1
    ids["thin"] = repository.save(record_of(thin, labels), store_patient=True)
    repository.close()
    return url, ids


def test_db_list_is_a_worklist_by_patient_then_study_date(saved):
    url, ids = saved
    listing = run_cli("db", "--db-url", url, "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("3 patient group(s), 4 stud(ies)")
    patients = [line for line in lines[1:] if not line.startswith(" ")]
    assert patients == [
        "liver_01 patient (sex M, born 2009-05-27)",
        "liver_07 patient (sex M, born 2009-05-27)",
        "JANCT000 (ID 99000) (sex M)",
    ]
    studies = [line.strip() for line in lines if line.startswith("  ") and not line.startswith("    ")]
    assert studies[0].startswith("2009-11-26 12:50") and studies[1].startswith("2009-05-27 12:50")
    assert "accession 03086212" in studies[3] and "3 slices" in studies[3]
    results = [int(line.split()[0]) for line in lines if line.startswith("    ")]
    assert results == [ids["later"], ids["3Dircadb1.1"], ids["3Dircadb1.7"], ids["thin"]]
    found = run_cli("db", "--db-url", url, "list", "--patient", "99000").stdout
    assert "JANCT000" in found and "liver_01" not in found


def test_the_same_scan_is_refused_in_one_line(saved, models_dir, tmp_path):
    url, ids = saved
    result = run_cli(
        "compare", str(ids["thin"]), "--prior", str(ids["thin"]), "--db-url", url, "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "same scan" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "comparison.json").exists()


def _constructed_followup_series(data_root, folder):
    """ct-3slice's files as a later study of the same patient (new date and UIDs, pixels +1)."""
    folder.mkdir()
    study_uid, series_uid = generate_uid(), generate_uid()
    for path in sorted((data_root / "dcmqi" / "ct-3slice").iterdir()):
        ds = pydicom.dcmread(path)
        ds.StudyDate, ds.StudyInstanceUID, ds.SeriesInstanceUID = "20031020", study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        pixels = ds.pixel_array.copy()
        pixels[0, 0] += 1
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / path.name)
    return folder


def _message(stderr: str) -> str:
    """The one line an expected error prints (the progress bars aside)."""
    (line,) = [line for line in stderr.splitlines() if line.strip() and "slice/s" not in line]
    assert "Traceback" not in stderr
    return line


def test_prior_auto_picks_the_latest_earlier_study_of_the_patient(saved, data_root, models_dir, tmp_path):
    url, ids = saved
    later = _constructed_followup_series(data_root, tmp_path / "later")
    assert load(later).study.study_date == "20031020"
    result = run_cli("compare", str(later), "--prior", "auto", "--db-url", url, "--out", str(tmp_path / "o"))
    assert "Prior: study of 2003-04-17 (CT series" in result.stdout and f"result {ids['thin']}." in result.stdout
    # three slices hold too little liver for a registration: refused after the prior was found
    assert result.returncode == 2 and "too little of the liver" in _message(result.stderr)
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    none = run_cli("compare", str(later), "--prior", "auto", "--db-url", empty, "--out", str(tmp_path / "p"))
    assert none.returncode == 2 and "No earlier study of this patient" in _message(none.stderr)
    both = run_cli("compare", str(later), "--db-url", empty)
    assert both.returncode == 2 and "--prior" in both.stderr and len(both.stderr.strip().splitlines()) == 1


def test_segment_saves_the_identity_by_default_and_not_with_no_store_patient(data_root, models_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    thin = data_root / "dcmqi" / "ct-3slice"
    kept = run_cli("segment", str(thin), "--out", str(tmp_path / "a"), "--save-db", "--db-url", url)
    assert kept.returncode == 0, kept.stderr
    none = run_cli(
        "segment",
        str(thin),
        "--out",
        str(tmp_path / "b"),
        "--save-db",
        "--db-url",
        url,
        "--no-store-patient",
        "--model",
        "threshold",
    )
    assert none.returncode == 0, none.stderr
    repository = Repository(url)
    try:
        rows = repository.list_results()
        assert {r.accession for r in rows} == {"03086212"}  # one study: the first save kept its identity
        assert dataclasses.asdict(rows[0])["patient_id"] == "99000"
    finally:
        repository.close()
