"""The saved-results worklist and the choice of prior over the web API, against a real `liverhealth
web` process: dcmqi's ct-3slice and a constructed follow-up of it (its DICOM files with a later
study date, new UIDs and one pixel changed: not a real second scan)."""

from __future__ import annotations

import zipfile

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.helpers.web import login

pytestmark = pytest.mark.slow


def _zipped(folder, target):
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return target


def _later_series(data_root, folder):
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


def test_worklist_prior_by_patient_and_the_same_scan_refused(web_server, data_root, tmp_path):
    alice = login(web_server, "alice")
    first = _zipped(data_root / "dcmqi" / "ct-3slice", tmp_path / "first.zip")
    prior_job, events = alice.run(first)
    assert events[-1]["state"] == "done", events[-1]
    prior_id = alice.post(f"/api/jobs/{prior_job}/save", json={}).json()["result_id"]  # the site default: clinical

    same_job, events = alice.run(first)
    assert events[-1]["state"] == "done", events[-1]
    refused = alice.post(f"/api/jobs/{same_job}/compare", json={"prior_result_id": prior_id})
    assert refused.status_code == 400, refused.text
    assert "same scan" in refused.json()["detail"] and "\n" not in refused.json()["detail"]
    none = alice.post(f"/api/jobs/{same_job}/compare", json={"prior_auto": True})
    assert none.status_code == 400 and "No earlier study of this patient" in none.json()["detail"]

    later_job, events = alice.run(_zipped(_later_series(data_root, tmp_path / "later"), tmp_path / "later.zip"))
    assert events[-1]["state"] == "done", events[-1]
    later_id = alice.post(f"/api/jobs/{later_job}/save", json={}).json()["result_id"]
    # the prior is found (the earlier study, reopened); three slices then hold too little liver to register
    auto = alice.post(f"/api/jobs/{later_job}/compare", json={"prior_auto": True})
    assert auto.status_code == 400 and "too little of the liver" in auto.json()["detail"], auto.text

    worklist = alice.post("/api/results/worklist", json={"patient": "99000"})
    assert worklist.status_code == 200, worklist.text
    (patient,) = worklist.json()["patients"]
    assert patient["label"] == "JANCT000 (ID 99000)"
    assert [(s["date"], s["accession"]) for s in patient["studies"]] == [
        ("2003-10-20", "03086212"),
        ("2003-04-17", "03086212"),
    ]
    assert [s["results"][0]["result_id"] for s in patient["studies"]] == [later_id, prior_id]
    assert patient["studies"][1]["results"][0]["state"] == "model draft"
    bob = login(web_server, "bob")
    assert bob.post("/api/results/worklist", json={"patient": "99000"}).json()["patients"] == []  # alice's only
    log = web_server[2].read_text()
    assert "JANCT000" not in log and "03086212" not in log
