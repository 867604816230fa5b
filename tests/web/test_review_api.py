"""The reader's review through the web API of a real server: paint, erase, lesion edits and fill
between slices made and re-measured by the workflow session (the labels served back on the same
grid), undo/redo, a save that makes revision 1 (read back through a Workstation on the server's
database), a signature that locks, and the refusals (CSRF, other accounts, malformed edits)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from liverhealth.workflow import Workstation
from tests.helpers.web import WebClient, login

BRUSH_MM = 8.0


@pytest.fixture(scope="module")
def example_series(data_root: Path) -> list[Path]:
    """The 20-slice TotalSegmentator DICOM series (512 x 512, 0.98 mm pixels, 2 mm slices)."""
    return sorted((data_root / "totalsegmentator" / "example_ct_dicom").iterdir())


@pytest.fixture(scope="module")
def alice(web_server) -> WebClient:
    return login(web_server, "alice")


def finished_job(user: WebClient, series: list[Path]) -> str:
    job_id, events = user.run(*series, names=[f"example/{p.name}" for p in series])
    assert events[-1]["state"] == "done", events[-1]
    return job_id


def labels_zyx(user: WebClient, url: str) -> np.ndarray:
    """The label map the viewer is given, as [z, y, x] (the NIfTI holds [x, y, z])."""
    response = user.http.get(url)
    assert response.status_code == 200, url
    image = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))
    return np.asarray(image.dataobj).transpose(2, 1, 0)


def edit(user: WebClient, job_id: str, **body) -> dict:
    response = user.post(f"/api/jobs/{job_id}/review/edit", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def refusal(response, status: int, words: str) -> str:
    """The one-line message of a refusal, checked to say ``words`` and to show nothing of the server."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail and "Traceback" not in detail and "/tmp" not in detail
    return detail


def empty_spot(labels: np.ndarray, slices: slice) -> tuple[int, int]:
    """(row, col) of a background spot on ``slices``, the brush's reach (and one more voxel) clear of any label."""
    reach = 12
    for row in range(reach, labels.shape[1] - reach, 16):
        for col in range(reach, labels.shape[2] - reach, 16):
            if not labels[slices, row - reach : row + reach + 1, col - reach : col + reach + 1].any():
                return row, col
    raise AssertionError("no empty spot on the slices")


def test_paint_undo_redo_are_made_and_measured_on_the_server(alice, example_series):
    job_id = finished_job(alice, example_series)
    before = alice.http.get(f"/api/jobs/{job_id}").json()["summary"]
    labels = labels_zyx(alice, before["labels_url"])
    z = before["key_slice"]
    row, col = empty_spot(labels, slice(z - 1, z + 2))

    started = time.perf_counter()
    painted = edit(alice, job_id, op="paint", slice=z, row=row, col=col, radius_mm=BRUSH_MM, label=2)
    round_trip_ms = (time.perf_counter() - started) * 1000
    print(f"paint: server {painted['server_ms']:.0f} ms, round trip {round_trip_ms:.0f} ms")
    assert painted["state"] == "revision 1 (unsaved)" and painted["revision"] == 1 and painted["edits"] == 1
    assert painted["can_undo"] and not painted["can_redo"] and painted["saved_result_id"] is None
    change = painted["last_edit"]
    assert change["kind"] == "paint" and change["lesions_added"] == 1
    findings = painted["findings"]
    assert len(findings["lesions"]) == len(before["lesions"]) + 1
    new = [lesion for lesion in findings["lesions"] if lesion["edited"]]
    assert len(new) == 1 and new[0]["largest_slice"] == z
    # the labels the viewer reloads: the disc on slice z around (row, col), nowhere else
    assert painted["labels_url"] != before["labels_url"]
    after = labels_zyx(alice, painted["labels_url"])
    changed = np.argwhere(after != labels)
    assert len(changed) == change["voxels_changed"] and set(changed[:, 0]) == {z}
    assert after[z, row, col] == 2 and np.abs(changed[:, 1:] - (row, col)).max() <= BRUSH_MM / 0.9765625
    spacing = np.prod([2.0, 0.9765625, 0.9765625])
    added_ml = findings["tumour_volume_ml"] - before["tumour_volume_ml"]
    assert added_ml == pytest.approx(change["voxels_changed"] * spacing / 1000, abs=0.01)
    assert "report.pdf" not in painted["files"] and painted["report_text"] is None  # the draft no longer applies
    status = alice.http.get(f"/api/jobs/{job_id}").json()["summary"]  # the job's state follows the review
    assert status["lesions"] == findings["lesions"] and status["labels_url"] == painted["labels_url"]

    undone = alice.post(f"/api/jobs/{job_id}/review/undo").json()
    assert undone["state"] == "the model's result" and undone["can_redo"] and not undone["can_undo"]
    assert undone["findings"]["lesions"] == [{**lesion, "edited": False} for lesion in before["lesions"]]
    assert undone["findings"]["tumour_volume_ml"] == before["tumour_volume_ml"]
    assert np.array_equal(labels_zyx(alice, undone["labels_url"]), labels)
    refusal(alice.post(f"/api/jobs/{job_id}/review/undo"), 400, "Nothing to undo")

    redone = alice.post(f"/api/jobs/{job_id}/review/redo").json()
    assert redone["state"] == "revision 1 (unsaved)" and redone["findings"] == findings
    assert np.array_equal(labels_zyx(alice, redone["labels_url"]), after)
    erased = edit(alice, job_id, op="erase", slice=z, row=row, col=col, radius_mm=BRUSH_MM, label=2)
    assert erased["last_edit"]["voxels_changed"] == change["voxels_changed"]  # tumour back to liver
    assert erased["edits"] == 2 and len(erased["findings"]["lesions"]) == len(before["lesions"])


def test_fill_between_slices_fills_the_gap_between_two_painted_outlines(alice, example_series):
    job_id = finished_job(alice, example_series)
    summary = alice.http.get(f"/api/jobs/{job_id}").json()["summary"]
    labels = labels_zyx(alice, summary["labels_url"])
    z = summary["key_slice"]
    row, col = empty_spot(labels, slice(z - 3, z + 4))
    for slice_index in (z - 2, z + 2):
        edit(alice, job_id, op="paint", slice=slice_index, row=row, col=col, radius_mm=BRUSH_MM, label=2)
    filled = edit(alice, job_id, op="fill_between", label=2, slice_a=z - 2, slice_b=z + 2)
    change = filled["last_edit"]
    assert change["kind"] == "fill_between_slices" and change["voxels_changed"] > 0
    assert change["box"][0] == [z - 1, z + 2]  # only the slices between were filled
    filled_labels = labels_zyx(alice, filled["labels_url"])
    assert (filled_labels[z - 2 : z + 3, row, col] == 2).all()  # the two outlines joined through the gap
    assert filled["edits"] == 3 and any(lesion["edited"] for lesion in filled["findings"]["lesions"])


def test_remove_a_lesion_by_number_save_a_revision_and_sign_it(alice, example_series, web_server):
    job_id = finished_job(alice, example_series)
    summary = alice.http.get(f"/api/jobs/{job_id}").json()["summary"]
    removed = edit(alice, job_id, op="remove_lesion", lesion=1)
    assert removed["last_edit"]["lesions_removed"] == 1
    assert len(removed["findings"]["lesions"]) == len(summary["lesions"]) - 1

    saved = alice.post(f"/api/jobs/{job_id}/review/save", json={}).json()
    result_id = saved["saved_result_id"]
    assert saved["revision"] == 1 and saved["state"] == f"revision 1, saved as result {result_id}"
    assert saved["message"] == f"Revision 1 saved as result {result_id}." and not saved["can_undo"]
    workstation = Workstation(db_url=f"sqlite:///{web_server[1] / 'web.db'}")
    try:
        history = workstation.history(result_id)
        assert [row.revision for row in history] == [0, 1] and history[-1].result_id == result_id
        assert workstation.get(result_id).summary.lesion_count == len(summary["lesions"]) - 1

        signed = alice.post(
            f"/api/jobs/{job_id}/review/sign",
            json={"impression": "One lesion fewer than the model found.", "draft": "Reviewed."},
        ).json()
        assert signed["signed_by"] == "alice" and signed["state"].endswith("signed by alice")
        assert signed["saved_result_id"] == result_id and "Signed by alice" in signed["message"]
        assert "report.pdf" in signed["files"] and "signed by alice" in signed["report_text"].lower()
        report = workstation.get(result_id).reports[-1].report
        assert report.signed_by == "alice" and report.revision == 1 and report.impression.startswith("One lesion")
    finally:
        workstation.close()
    again = alice.post(f"/api/jobs/{job_id}/review/sign", json={"impression": "Changed my mind."})
    refusal(again, 400, "locked")


def test_refusals_csrf_other_accounts_and_malformed_edits(alice, example_series, web_server):
    job_id = finished_job(alice, example_series)
    path = f"/api/jobs/{job_id}/review/edit"
    body = {"op": "paint", "slice": 3, "row": 100, "col": 100}
    refusal(alice.http.post(path, json=body), 403, "CSRF")
    refusal(alice.http.post(path, json=body, headers={"X-CSRF-Token": "forged"}), 403, "CSRF")
    refusal(alice.http.post(f"/api/jobs/{job_id}/review/sign", json={}), 403, "CSRF")
    bob, root = login(web_server, "bob"), login(web_server, "root")
    for step in ("edit", "undo", "redo", "save", "sign"):
        refusal(bob.post(f"/api/jobs/{job_id}/review/{step}", json=body), 404, "No such job")
    refusal(root.post(path, json=body), 403, "Only the account that opened this study")
    refusal(alice.post("/api/jobs/no-such-job/review/edit", json=body), 404, "No such job")
    refusal(alice.post(path, json={"op": "scribble"}), 400, "The edit was not understood")
    refusal(alice.post(path, json={**body, "slice": "top"}), 400, "slice")
    refusal(alice.post(path, content=b"not json", headers={"Content-Type": "application/json"}), 400, "op")
    refusal(alice.post(path, json={**body, "slice": 20}), 400, "lies outside the CT")
    refusal(alice.post(path, json={**body, "radius_mm": -1}), 400, "brush radius")
    refusal(alice.post(path, json={**body, "label": 7}), 400, "label 7")
    refusal(alice.post(path, json={"op": "remove_lesion"}), 400, "Click on the image")
    refusal(alice.post(path, json={"op": "remove_lesion", "lesion": 999}), 400, "There is no lesion 999")
    refusal(alice.post(path, json={"op": "relabel", "voxel": [0, 0, 0]}), 400, "not on a lesion")
    refusal(alice.post(f"/api/jobs/{job_id}/review/redo"), 400, "Nothing to redo")
    state = alice.http.get(f"/api/jobs/{job_id}").json()
    assert state["state"] == "done" and "report.pdf" in state["files"]  # refusals changed nothing
