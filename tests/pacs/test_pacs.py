"""A real PACS (Orthanc) over both protocols: find, retrieve, segment pacs://, store the SEG and SR
back and find them there; wrong credentials and AE titles; the PACS stopped mid-retrieve."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pydicom
import pytest

from liverhealth.errors import PacsError
from liverhealth.imaging import load
from liverhealth.pacs import PacsSettings, connect, retrieve_study
from tests.helpers.cli import run_cli
from tests.helpers.pacs import AET, PASSWORD, USER, OrthancServer

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the window test: before pytest-qt makes the QApplication


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, data_root):
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    upload = tmp_path_factory.mktemp("upload")
    with zipfile.ZipFile(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip") as archive:
        for i, name in enumerate(n for n in archive.namelist() if not n.endswith("/")):
            # IRCADb's files lack the Part 10 header a PACS expects; pydicom adds it, the data unchanged
            ds = pydicom.dcmread(io.BytesIO(archive.read(name)), force=True)
            ds.save_as(upload / f"ircadb_{i:04d}.dcm", enforce_file_format=True)
    # TotalSegmentator's example series carries no Study, Series, SOP Instance or SOP Class UID, which no PACS
    # accepts: give it the file meta's SOP UIDs and one study and series UID, as an archive would have them
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for i, path in enumerate(sorted((data_root / "totalsegmentator" / "example_ct_dicom").iterdir())):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.SOPInstanceUID or ds.file_meta.MediaStorageSOPInstanceUID
        ds.SOPClassUID = ds.SOPClassUID or ds.file_meta.MediaStorageSOPClassUID
        ds.StudyInstanceUID = ds.StudyInstanceUID or study
        ds.SeriesInstanceUID = ds.SeriesInstanceUID or series
        ds.save_as(upload / f"ts_{i:04d}.dcm", enforce_file_format=True)
    server.upload(sorted(upload.iterdir()))
    yield server
    server.stop()


def ircadb_study(data_root) -> tuple[str, str]:
    with zipfile.ZipFile(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip") as archive:
        first = next(n for n in archive.namelist() if not n.endswith("/"))
        ds = pydicom.dcmread(io.BytesIO(archive.read(first)), stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.PatientID)


def environment(orthanc: OrthancServer, protocol: str, tmp_path, **overrides) -> dict[str, str]:
    env = {"LIVERHEALTH_PACS_CACHE": str(tmp_path / "cache"), "LIVERHEALTH_PACS_TIMEOUT": "10"}
    if protocol == "dicomweb":
        env |= {
            "LIVERHEALTH_PACS_URL": orthanc.dicomweb,
            "LIVERHEALTH_PACS_USER": USER,
            "LIVERHEALTH_PACS_PASSWORD": PASSWORD,
        }
    else:
        env |= {"LIVERHEALTH_PACS_DIMSE": f"127.0.0.1:{orthanc.dicom_port}", "LIVERHEALTH_PACS_AET": AET}
    return env | overrides


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_find_get_segment_store(orthanc, data_root, models_dir, tmp_path, protocol, monkeypatch):
    study_uid, patient_id = ircadb_study(data_root)
    env = environment(orthanc, protocol, tmp_path)
    found = run_cli("pacs", "find", "--patient-id", patient_id, env_extra=env)
    assert found.returncode == 0, found.stderr
    assert study_uid in found.stdout and PASSWORD not in found.stdout + found.stderr

    got = run_cli("pacs", "get", study_uid, env_extra=env)
    assert got.returncode == 0, got.stderr
    assert "Retrieved 129 CT images" in got.stdout
    retrieved = load(tmp_path / "cache" / study_uid)
    original = load(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    assert np.array_equal(retrieved.voxels, original.voxels)
    np.testing.assert_allclose(retrieved.affine, original.affine)

    out = tmp_path / "out"
    segmented = run_cli("segment", f"pacs://{study_uid}", "--out", str(out), "--store", env_extra=env)
    assert segmented.returncode == 0, segmented.stderr
    assert "Stored on the PACS: 2 new object(s), 0 already there." in segmented.stdout
    seg = pydicom.dcmread(out / "dicom" / "seg.dcm")
    stored = {i["SOPInstanceUID"]: i for i in orthanc.instances()}
    assert seg.SOPInstanceUID in stored and stored[seg.SOPInstanceUID]["Modality"] == "SEG"
    assert stored[seg.SOPInstanceUID]["StudyInstanceUID"] == study_uid  # filed in the CT's study
    sr = pydicom.dcmread(out / "dicom" / "sr.dcm")
    assert stored[sr.SOPInstanceUID]["Modality"] == "SR"

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from liverhealth.pacs.client import store_new

    assert store_new(connect(), [out / "dicom" / "seg.dcm", out / "dicom" / "sr.dcm"]) == (0, 2)  # never twice


def test_wrong_password_and_wrong_ae_title_are_one_line(orthanc, tmp_path, data_root):
    study_uid, _ = ircadb_study(data_root)
    bad_password = environment(orthanc, "dicomweb", tmp_path, LIVERHEALTH_PACS_PASSWORD="not-the-password-x9")
    result = run_cli("pacs", "get", study_uid, env_extra=bad_password)
    assert result.returncode == 2 and "refused our credentials" in result.stderr
    assert "not-the-password-x9" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    bad_aet = environment(orthanc, "dimse", tmp_path, LIVERHEALTH_PACS_AET="NOTTHEPACS")
    result = run_cli("pacs", "find", "--modality", "CT", env_extra=bad_aet)
    assert result.returncode == 2 and "rejected the association" in result.stderr
    missing = run_cli("pacs", "get", "1.2.3.4.5.6.7", env_extra=environment(orthanc, "dimse", tmp_path))
    assert missing.returncode == 2 and "has no CT series" in missing.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_pacs_stopped_mid_retrieve_keeps_nothing(orthanc, data_root, tmp_path, protocol, monkeypatch):
    study_uid, _ = ircadb_study(data_root)
    for name, value in environment(orthanc, protocol, tmp_path).items():
        monkeypatch.setenv(name, value)
    pacs = connect(PacsSettings.from_environment())

    def stop_after_ten(done: int, total: int) -> None:
        if done == 10 and orthanc.process is not None:
            orthanc.kill()

    try:
        with pytest.raises(PacsError) as caught:
            retrieve_study(pacs, study_uid, tmp_path / "cache", progress=stop_after_ten)
        assert (
            "nothing was kept" in str(caught.value)
            or "does not answer" in str(caught.value)
            or "cut" in str(caught.value)
        )
        assert list((tmp_path / "cache").iterdir()) == []  # no half-retrieved study left to look complete
    finally:
        orthanc.start()
    with pytest.raises(PacsError, match=r"does not answer|cannot be reached"):
        orthanc.stop()
        try:
            retrieve_study(pacs, study_uid, tmp_path / "cache2")
        finally:
            orthanc.start()


def test_window_imports_from_the_pacs_and_sends_results_back(
    qtbot, orthanc, data_root, models_dir, tmp_path, monkeypatch
):
    from liverhealth.gui.main_window import MainWindow

    study_uid, patient_id = ircadb_study(data_root)
    for name, value in environment(orthanc, "dimse", tmp_path).items():
        monkeypatch.setenv(name, value)
    window = MainWindow()
    qtbot.addWidget(window)
    window.import_from_pacs()
    window.pacs_dialog.fields["patient_id"].setText(patient_id)
    with qtbot.waitSignal(window.step_finished, timeout=60_000) as blocker:
        window.pacs_dialog.find()
    assert blocker.args == ["pacs-find"], window.last_error
    uids = [window.pacs_dialog.table.item(r, 4).text() for r in range(window.pacs_dialog.table.rowCount())]
    assert study_uid in uids
    window.pacs_dialog.table.selectRow(uids.index(study_uid))
    with qtbot.waitSignal(window.step_finished, timeout=120_000) as blocker:
        window.pacs_dialog.retrieve_selected()
    assert blocker.args == ["load"], window.last_error
    assert window.view.slice_count == 129
    with qtbot.waitSignal(window.step_finished, timeout=120_000):
        window.segment()
    before = len(orthanc.instances())
    with qtbot.waitSignal(window.step_finished, timeout=120_000) as blocker:
        window.send_to_pacs()
    assert blocker.args == ["send"], window.last_error
    assert len(orthanc.instances()) == before + 2


def test_web_finds_opens_and_sends_back(orthanc, data_root, tmp_path):
    """The web page's PACS panel API: find, open (retrieve + segment as a job), send the SEG and SR back."""
    from tests.helpers.web import login, running_web_server

    study_uid, patient_id = ircadb_study(data_root)
    with running_web_server(tmp_path / "web", environment(orthanc, "dicomweb", tmp_path)) as server:
        alice = login(server, "alice")
        assert alice.http.get("/api/me").json()["pacs"] is True
        studies = alice.post("/api/pacs/find", json={"patient_id": patient_id}).json()["studies"]
        assert study_uid in [s["study_uid"] for s in studies]
        job_id = alice.post("/api/pacs/open", json={"study_uid": study_uid}).json()["job_id"]
        events = alice.events(job_id)
        assert events[-1]["state"] == "done", events[-1]
        assert any(e["kind"] == "retrieve" for e in events)
        before = len(orthanc.instances())
        sent = alice.post(f"/api/jobs/{job_id}/send").json()
        assert sent == {"sent": 2, "already_there": 0} and len(orthanc.instances()) == before + 2
        assert alice.post(f"/api/jobs/{job_id}/send").json() == {"sent": 0, "already_there": 2}
        assert alice.post("/api/pacs/open", json={"study_uid": "1.2.x"}).status_code == 400
        assert PASSWORD not in server[2].read_text()


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_jpeg2000_series_comes_back_whole(orthanc, data_root, tmp_path, protocol, monkeypatch):
    """The TotalSegmentator series (JPEG 2000, InstanceNumber against z) through the PACS: same voxels, same grid."""
    for name, value in environment(orthanc, protocol, tmp_path).items():
        monkeypatch.setenv(name, value)
    pacs = connect(PacsSettings.from_environment())
    local = load(data_root / "totalsegmentator" / "example_ct_dicom")
    hits = [h for h in pacs.find(modality="CT") if h.study_uid != ircadb_study(data_root)[0]]
    assert len(hits) == 1
    folder = retrieve_study(pacs, hits[0].study_uid, tmp_path / "cache")
    retrieved = load(folder)
    assert np.array_equal(retrieved.voxels, local.voxels)
    np.testing.assert_allclose(retrieved.affine, local.affine)
