"""The web API against a real uvicorn process on 127.0.0.1: login, the real IRCADb upload with its
live events and downloads parsed back, each refused upload, CSRF, other users' jobs and results,
two jobs at once, cancel, save/search/open/delete."""

from __future__ import annotations

import gzip
import io
import json
import struct
import threading
import zipfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pypdf import PdfReader

from liverhealth.imaging import load
from tests.helpers.chat_server import DRAFT_PIECES
from tests.helpers.web import PASSWORDS, login

pytestmark = pytest.mark.slow


def job_folders(web_server) -> list[Path]:
    return [p for p in web_server[1].glob("liverhealth-web-*/jobs/*") if p.is_dir()]


def test_login_sets_a_private_session_cookie_and_refuses_a_wrong_password(client, web_server):
    assert client.http.get("/").headers["location"] == "/login"
    assert client.http.get("/api/me").status_code == 401
    wrong = client.login("alice", "not-her-password")
    assert wrong.headers["location"] == "/login?error=1"
    ok = client.login("alice")
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.http.get("/api/me").json()["user"] == "alice"
    log = web_server[2].read_text()
    assert all(password not in log for password in PASSWORDS.values())


def test_real_ircadb_upload_events_and_downloads(web_server, data_root, chat, tmp_path):
    alice = login(web_server, "alice")
    ct = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    job_id, events = alice.run(ct, patient_name="Doe^Jane", patient_id="PAT-7731", include_patient="on")
    kinds = [e["kind"] for e in events]
    states = [e["state"] for e in events if e["kind"] == "state"]
    assert states[0] == "queued" and states[-1] == "done", events[-1]
    assert {"volume", "progress", "result", "draft", "report"} <= set(kinds)
    assert kinds.index("volume") < kinds.index("result")  # the CT is on screen before the segmentation ends
    progress = [e for e in events if e["kind"] == "progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == 129
    draft = "".join(e["text"] for e in events if e["kind"] == "draft")
    assert draft.strip() == "".join(DRAFT_PIECES).strip()
    texts = [
        part["text"] if isinstance(part, dict) else part
        for message in chat.requests[-1]["messages"]
        for part in (message["content"] if isinstance(message["content"], list) else [message["content"]])
        if isinstance(part, str) or part.get("type") == "text"
    ]
    sent = json.dumps(texts)
    assert "Liver volume" in sent and "Doe^Jane" not in sent and "PAT-7731" not in json.dumps(chat.requests[-1])

    result = next(e for e in events if e["kind"] == "result")
    files = {}
    names = ("ct.nii.gz", "labels.nii.gz", "measurements.json", "overlay.png", "report.pdf", "seg.dcm", "sr.dcm")
    for name in (*names, "confidence.nii.gz", "uncertainty.nii.gz"):
        response = alice.http.get(f"/api/jobs/{job_id}/files/{name}")
        assert response.status_code == 200, name
        files[name] = response.content
        (tmp_path / name).write_bytes(response.content)
    volume = load(ct)
    labels = nib.load(str(tmp_path / "labels.nii.gz"))
    ct_image = nib.load(str(tmp_path / "ct.nii.gz"))
    assert labels.shape == ct_image.shape == (512, 512, 129)
    np.testing.assert_allclose(labels.affine, volume.affine, atol=1e-4)
    np.testing.assert_allclose(ct_image.affine, volume.affine, atol=1e-4)
    assert np.array_equal(np.asarray(ct_image.dataobj).transpose(2, 1, 0), volume.voxels)
    doc = json.loads(files["measurements.json"])
    liver = int(np.count_nonzero(np.asarray(labels.dataobj)))
    assert doc["measurements"]["liver_voxels"] == liver
    assert result["liver_volume_ml"] == pytest.approx(doc["measurements"]["liver_volume_ml"])
    assert len(result["lesions"]) == doc["measurements"]["lesion_count"]
    # the model's confidence: per lesion in the summary and the document, per voxel in two files
    confidence = np.asarray(nib.load(str(tmp_path / "confidence.nii.gz")).dataobj)
    uncertainty = np.asarray(nib.load(str(tmp_path / "uncertainty.nii.gz")).dataobj)
    assert confidence.shape == labels.shape and confidence.max() <= 100
    assert np.array_equal(uncertainty > 0, confidence < 50) and (uncertainty[confidence < 50] > 50).all()
    assert result["uncertainty_url"].endswith("/uncertainty.nii.gz")
    assert result["liver_confidence"] == doc["measurements"]["liver_confidence"] is not None
    assert [lesion["confidence"] for lesion in result["lesions"]] == [
        lesion["confidence"] for lesion in doc["measurements"]["lesions"]
    ]
    assert all(lesion["unsure"] is None for lesion in result["lesions"])  # the test model is not calibrated
    assert pydicom.dcmread(io.BytesIO(files["seg.dcm"])).Modality == "SEG"
    assert pydicom.dcmread(io.BytesIO(files["sr.dcm"])).Modality == "SR"
    text = " ".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(files["report.pdf"])).pages).split())
    assert f"{doc['measurements']['liver_volume_ml']:.1f} mL" in text
    assert "not a medical device" in text and "Doe Jane" in text  # patient details were asked for, in the PDF only
    log = web_server[2].read_text()
    assert "Doe" not in log and "PAT-7731" not in log


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("scan.nii", b"this is not a NIfTI file at all" * 20, "content is not one"),
        ("notes.txt", b"hello", "is not a DICOM file"),
        ("evil.zip", "traversal", "outside its folder"),
        ("bomb.zip", "bomb", "zip bomb"),
        ("big.nrrd", "big", "larger than the limit"),
        ("huge.png", "huge-png", "over the limit"),
        ("huge.nii.gz", "huge-nifti", "over LiverHealth's limit"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(web_server, tmp_path, name, content, expected):
    alice = login(web_server, "alice")
    before = set(job_folders(web_server))
    path = tmp_path / name
    if content == "traversal":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("../../etc/passwd-from-zip", b"x")
    elif content == "bomb":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("slice.dcm", bytes(300 << 20))
    elif content == "huge-png":  # a valid PNG header declaring 30000 x 30000 pixels, no pixel data
        ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
        chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
        end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + end)
    elif content == "huge-nifti":  # a header declaring 30000^3 voxels
        header = nib.Nifti1Header()
        header.set_data_shape((30000, 30000, 30000))
        header.set_data_dtype(np.int16)
        with gzip.open(path, "wb") as handle:
            handle.write(header.binaryblock + b"\x00" * 4)
    elif content == "big":
        with open(path, "wb") as handle:
            handle.write(b"NRRD0004\n")
            handle.truncate(41 << 20)
    else:
        path.write_bytes(content)
    response = alice.upload(path)
    assert response.status_code in (400, 413)
    assert expected in response.json()["detail"]
    assert set(job_folders(web_server)) == before  # nothing of a refused upload is kept
    assert alice.http.get("/api/me").status_code == 200  # the server keeps serving


def test_empty_upload_and_unknown_model(web_server, data_root):
    alice = login(web_server, "alice")
    assert "No file was uploaded" in alice.post("/api/jobs", data={"model": ""}, files={}).json()["detail"]
    response = alice.upload(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip", model="no-such-model")
    assert response.status_code == 400 and "no-such-model" in response.json()["detail"]


def test_csrf_is_required_for_every_change(web_server, data_root):
    alice = login(web_server, "alice")
    ct = data_root / "dcmqi" / "ct-3slice"
    files = [("files", (p.name, p.read_bytes())) for p in sorted(ct.iterdir())]
    assert alice.http.post("/api/jobs", files=files).status_code == 403
    assert alice.http.post("/api/jobs", files=files, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert alice.http.post("/api/results/search", json={}).status_code == 403
    assert alice.http.delete("/api/results/1").status_code == 403
    assert alice.http.post("/api/logout").status_code == 403


def test_folder_upload_save_search_open_delete_and_other_users(web_server, data_root):
    alice, bob, root = (login(web_server, name) for name in ("alice", "bob", "root"))
    series = sorted((data_root / "dcmqi" / "ct-3slice").iterdir())
    job_id, events = alice.run(*series, names=[f"ct-3slice/{p.name}" for p in series])
    assert events[-1]["state"] == "done", events[-1]
    assert bob.http.get(f"/api/jobs/{job_id}").status_code == 404  # another user's job
    assert bob.http.get(f"/api/jobs/{job_id}/files/report.pdf").status_code == 404
    saved = alice.post(f"/api/jobs/{job_id}/save", json={"store_patient": False}).json()
    result_id = saved["result_id"]
    mine = alice.post("/api/results/search", json={"model": "threshold"}).json()["results"]
    assert [r["result_id"] for r in mine] == [result_id] and mine[0]["owner"] == "alice"
    assert bob.post("/api/results/search", json={}).json()["results"] == []
    assert result_id in [r["result_id"] for r in root.post("/api/results/search", json={}).json()["results"]]
    assert bob.post(f"/api/results/{result_id}/open").status_code == 404
    assert bob.http.delete(f"/api/results/{result_id}", headers={"X-CSRF-Token": bob.csrf}).status_code == 404
    reopened = alice.post(f"/api/results/{result_id}/open").json()["job_id"]
    events = alice.events(reopened)
    assert events[-1]["state"] == "done", events[-1]
    result = next(e for e in events if e["kind"] == "result")
    assert result["model"]["validation"].startswith("no figures; protocol: test model")
    assert alice.http.get(f"/api/jobs/{reopened}/files/labels.nii.gz").status_code == 200
    deleted = alice.http.delete(f"/api/results/{result_id}", headers={"X-CSRF-Token": alice.csrf})
    assert deleted.status_code == 200
    assert alice.post("/api/results/search", json={}).json()["results"] == []


def _moved_followup(data_root, tmp_path):
    """3Dircadb1.1 with a lesion added and moved by a known transform, as NIfTI (a constructed follow-up)."""
    from liverhealth.imaging.ircadb import load_ircadb_case
    from liverhealth.imaging.writers import save_volume_nifti
    from tests.helpers import followup as build

    volume, labels = load_ircadb_case(data_root / "3Dircadb1.1")
    hu, edited = volume.voxels.copy(), labels.copy()
    build.add(hu, edited, volume.spacing, seed=3)
    follow, _ = build.moved(volume, hu, edited, build.known_transform(volume))
    save_volume_nifti(follow, tmp_path / "followup.nii.gz")
    return tmp_path / "followup.nii.gz"


def test_compare_a_finished_study_with_a_saved_prior(web_server, data_root, tmp_path):
    alice, bob = login(web_server, "alice"), login(web_server, "bob")
    ct = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    prior_job, events = alice.run(ct)
    assert events[-1]["state"] == "done", events[-1]
    prior_id = alice.post(f"/api/jobs/{prior_job}/save", json={}).json()["result_id"]
    same_job, events = alice.run(ct)  # the same scan again: no follow-up, refused (it used to read SD)
    assert events[-1]["state"] == "done", events[-1]
    same = alice.post(f"/api/jobs/{same_job}/compare", json={"prior_result_id": prior_id})
    assert same.status_code == 400 and "same scan" in same.json()["detail"], same.text
    job_id, events = alice.run(_moved_followup(data_root, tmp_path))  # a follow-up made from it: moved, a lesion added
    assert events[-1]["state"] == "done", events[-1]
    assert bob.post(f"/api/jobs/{job_id}/compare", json={"prior_result_id": prior_id}).status_code == 404
    refused = alice.post(f"/api/jobs/{job_id}/compare", json={})
    assert refused.status_code == 400 and "Choose the prior study" in refused.json()["detail"]
    answer = alice.post(f"/api/jobs/{job_id}/compare", json={"prior_result_id": prior_id})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["response"] in {"CR", "PR", "SD", "PD", "NE"} and any(
        line.startswith("RECIST 1.1:") for line in body["lines"]
    )
    picture = alice.http.get(f"/api/jobs/{job_id}/files/comparison.png")
    assert picture.status_code == 200 and picture.content[:8] == b"\x89PNG\r\n\x1a\n"
    document = alice.http.get(f"/api/jobs/{job_id}/files/comparison.json").json()
    assert document["comparison"]["recist"]["response"] == body["response"]
    assert "comparison.png" in alice.http.get(f"/api/jobs/{job_id}").json()["files"]
    assert alice.http.get(f"/api/jobs/{job_id}/files/report.pdf").status_code == 200  # the report is kept


def test_two_uploads_at_once_and_a_cancel(web_server, data_root, tmp_path):
    alice, bob = login(web_server, "alice"), login(web_server, "bob")
    zipped = tmp_path / "ct-3slice.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for p in sorted((data_root / "dcmqi" / "ct-3slice").iterdir()):
            archive.write(p, f"ct-3slice/{p.name}")
    outcomes: dict[str, list] = {}

    def run(user, name, path):
        outcomes[name] = user.run(path)

    threads = [
        threading.Thread(target=run, args=(alice, "ircadb", data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")),
        threading.Thread(target=run, args=(bob, "dcmqi", zipped)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    shapes = {}
    for name, user in (("ircadb", alice), ("dcmqi", bob)):
        job_id, events = outcomes[name]
        assert events[-1]["state"] == "done", events[-1]
        path = tmp_path / f"{name}.nii.gz"
        path.write_bytes(user.http.get(f"/api/jobs/{job_id}/files/labels.nii.gz").content)
        shapes[name] = nib.load(str(path)).shape
    assert shapes == {"ircadb": (512, 512, 129), "dcmqi": (512, 512, 3)}  # each job kept its own CT

    response = alice.upload(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    job_id = response.json()["job_id"]
    assert alice.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    events = alice.events(job_id)
    assert events[-1]["state"] == "cancelled"
    assert alice.http.get(f"/api/jobs/{job_id}/files/labels.nii.gz").status_code == 404
    assert alice.post(f"/api/jobs/{job_id}/save", json={}).status_code == 400
