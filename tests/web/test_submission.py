"""One job per submission and progress by name, at the API of a real server whose model is a
cascade: an upload's Idempotency-Key answers a repeat (at once, or while the first is still being
stored) with the same job; each step is named with slice k of the CT's n; slice numbers, calipers
and window presets travel with the page's data."""

from __future__ import annotations

import json
import threading

import pytest

from liverhealth.imaging.display import WINDOW_PRESETS
from tests.helpers.onnx_models import make_threshold_model, manifest_entry
from tests.helpers.web import login, running_web_server

pytestmark = pytest.mark.slow

CT_SLICES = 30  # example_ct_sm.nii.gz: 30 x 101 x 122 at 3 mm


def jobs_started(server) -> set[str]:
    return {p.name for p in server[1].glob("liverhealth-web-*/jobs/*") if p.is_dir()}


@pytest.fixture()
def ct(data_root):
    return data_root / "totalsegmentator" / "example_ct_sm.nii.gz"


def test_two_posts_with_one_key_start_one_job(cascade_server, ct):
    alice = login(cascade_server, "alice")
    before = jobs_started(cascade_server)
    key = {"Idempotency-Key": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}
    answers = []

    def post() -> None:
        with open(ct, "rb") as handle:
            answers.append(alice.post("/api/jobs", files=[("files", (ct.name, handle))], headers=key))

    posts = [threading.Thread(target=post) for _ in range(2)]  # the second arrives while the first is stored
    for thread in posts:
        thread.start()
    for thread in posts:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    first, second = (a.json() for a in answers)
    assert first["job_id"] == second["job_id"] and sorted([first["repeated"], second["repeated"]]) == [False, True]
    events = alice.events(first["job_id"])
    assert events[-1]["state"] == "done", events[-1]
    # once the job is done the key still answers it; a fresh key is a new job
    with open(ct, "rb") as handle:
        again = alice.post("/api/jobs", files=[("files", (ct.name, handle))], headers=key).json()
    assert again["job_id"] == first["job_id"] and again["repeated"] is True
    assert jobs_started(cascade_server) - before == {first["job_id"]}
    # the key is the account's own: another account's upload with it is its own job
    bob = login(cascade_server, "bob")
    with open(ct, "rb") as handle:
        bobs = bob.post("/api/jobs", files=[("files", (ct.name, handle))], headers=key).json()
    assert bobs["job_id"] != first["job_id"] and bobs["repeated"] is False
    assert bob.events(bobs["job_id"])[-1]["state"] == "done"
    with open(ct, "rb") as handle:
        bad = alice.post("/api/jobs", files=[("files", (ct.name, handle))], headers={"Idempotency-Key": "x y"})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["detail"] and "\n" not in bad.json()["detail"]


def test_a_refused_upload_leaves_its_key_free(cascade_server, tmp_path):
    alice = login(cascade_server, "alice")
    key = {"Idempotency-Key": "refused-upload-key-0001"}
    junk = tmp_path / "notes.txt"
    junk.write_text("not a CT")
    for _ in range(2):  # the repeat is looked at again (and refused again), not answered with no job
        with open(junk, "rb") as handle:
            refused = alice.post("/api/jobs", files=[("files", (junk.name, handle))], headers=key)
        assert refused.status_code == 400, refused.text


def test_progress_names_each_step_with_the_cts_slice_count(cascade_server, ct):
    alice = login(cascade_server, "alice")
    _, events = alice.run(ct)
    assert events[-1]["state"] == "done", events[-1]
    states = [(e["state"], e["message"]) for e in events if e["kind"] == "state"]
    assert ("loading", "Reading the CT.") in states
    progress = [e for e in events if e["kind"] == "progress"]
    steps = [e["step"] for e in progress]
    assert steps[0] == "finding the liver" and "segmenting" in steps and steps[-1] == "measuring"
    assert steps.index("measuring") > max(i for i, s in enumerate(steps) if s == "segmenting")
    assert all(e["total"] == CT_SLICES for e in progress)  # n is the CT's slices in every step, not 2n
    finding = [e for e in progress if e["step"] == "finding the liver"]
    segmenting = [e for e in progress if e["step"] == "segmenting"]
    assert finding[-1]["done"] == CT_SLICES and segmenting[-1]["done"] == CT_SLICES
    assert segmenting[-1]["message"] == f"Segmenting: slice {CT_SLICES} of {CT_SLICES}."
    assert finding[0]["message"].startswith("Finding the liver: slice ")
    kinds = [e["kind"] for e in events]
    assert kinds.index("result") > max(i for i, e in enumerate(events) if e["kind"] == "progress")

    # the numbers beside the viewer: 1-based slices for people, array indices in machine fields
    result = next(e for e in events if e["kind"] == "result")
    assert result["slice_count"] == CT_SLICES
    assert result["key_slice_text"] == f"slice {result['key_slice'] + 1} of {CT_SLICES}"
    assert result["lesions"], "the threshold cascade finds lesions on this CT"
    calipers = {c["lesion_id"]: c for c in result["calipers"]}
    for lesion in result["lesions"]:
        assert lesion["slice_number"] == lesion["largest_slice"] + 1
        assert lesion["slice_label"].split()[0] == str(lesion["largest_slice"] + 1)
        caliper = calipers[lesion["lesion_id"]]
        assert (
            lesion["measured_slice"] == caliper["slice_index"] and caliper["slice_number"] == caliper["slice_index"] + 1
        )
        assert len(caliper["long_axis_mm"]) == 2 and all(len(p) == 3 for p in caliper["long_axis_mm"])
        assert caliper["outline_mm"] and caliper["long_length"] >= caliper["short_length"] >= 0


def test_the_page_is_given_the_window_presets_of_every_face(cascade_server):
    presets = login(cascade_server, "alice").http.get("/api/me").json()["window_presets"]
    assert {p["key"]: (p["name"], p["center"], p["width"]) for p in presets} == {
        key: (w.name, w.center, w.width) for key, w in WINDOW_PRESETS.items()
    }


def test_the_page_is_told_which_models_are_not_recommended(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    make_threshold_model(models / "m.onnx", size=(64, 64))
    entries = [
        {**manifest_entry(model_id, models / "m.onnx", size=(64, 64)), "metrics": {"false_positives": fp}}
        for model_id, fp in (("steady", 1.5), ("noisy", 9.0))
    ]
    (models / "manifest.json").write_text(json.dumps({"schema": 1, "default": "steady", "models": entries}))
    with running_web_server(tmp_path) as server:
        choices = {m["id"]: m for m in login(server, "alice").http.get("/api/me").json()["models"]}
    assert choices["steady"]["caution"] == ""
    assert choices["noisy"]["caution"].startswith("not recommended: 9.0 false-positive lesions per case")
