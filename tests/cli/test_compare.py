"""`liverhealth compare` as a user runs it: a real CT and a follow-up made from it (known move,
a lesion added), by file and by saved result id, with the report (a real chat server on
127.0.0.1 receives the comparison's numbers and no identifier), and refusals in one line."""

from __future__ import annotations

import json

import pytest
from pypdf import PdfReader

from liverhealth.imaging import load
from liverhealth.imaging.ircadb import load_ircadb_case
from liverhealth.imaging.writers import save_volume_nifti
from tests.helpers import followup as build
from tests.helpers.chat_server import running_chat_server
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def followup_nifti(data_root, tmp_path_factory):
    volume, labels = load_ircadb_case(data_root / "3Dircadb1.1")
    hu, edited = volume.voxels.copy(), labels.copy()
    build.add(hu, edited, volume.spacing, seed=3)
    follow, _ = build.moved(volume, hu, edited, build.known_transform(volume))
    path = tmp_path_factory.mktemp("followup") / "followup.nii.gz"
    save_volume_nifti(follow, path)
    return path


@pytest.fixture()
def chat():
    with running_chat_server() as server:
        yield server


def test_compare_files_with_report(data_root, followup_nifti, models_dir, tmp_path, chat):
    baseline = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    out = tmp_path / "out"
    env = {
        "LIVERHEALTH_LLM_BASE_URL": chat.base_url,
        "LIVERHEALTH_LLM_API_KEY": "sk-test-key",
        "LIVERHEALTH_LLM_MODEL": "m",
    }
    result = run_cli("compare", str(baseline), str(followup_nifti), "--out", str(out), "--report", env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "RECIST 1.1:" in result.stdout and "Traceback" not in result.stderr
    document = json.loads((out / "comparison.json").read_text())
    comparison = document["comparison"]
    assert comparison["recist"]["response"] in {"CR", "PR", "SD", "PD", "NE"}
    assert comparison["registration"]["liver_dice_after"] >= comparison["registration"]["liver_dice_before"]
    assert "path" not in document["baseline"]["source"] and "not a medical device" in document["draft"]
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = "".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    assert "Comparison with prior" in text and "RECIST 1.1" in text and "not a medical device" in text
    sent = json.dumps(chat.requests)
    assert "Comparison with prior" in sent and "RECIST 1.1" in sent
    patient = load(baseline).patient
    for identifier in (patient.name, patient.patient_id):
        if identifier:
            assert identifier not in sent


def test_saved_comparisons_link_both_results_and_set_the_nadir(data_root, followup_nifti, models_dir, tmp_path):
    import dataclasses

    import numpy as np

    from liverhealth.storage.repository import Repository

    db = f"sqlite:///{tmp_path / 'results.db'}"
    baseline = data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip"
    saved = run_cli("segment", str(baseline), "--out", str(tmp_path / "seg"), "--save-db", "--db-url", db)
    assert saved.returncode == 0, saved.stderr
    first = run_cli("compare", "1", str(followup_nifti), "--out", str(tmp_path / "c1"), "--save-db", "--db-url", db)
    assert first.returncode == 0, first.stderr
    assert "Saved as comparison 1 of results 1 (baseline) and 2 (follow-up)" in first.stdout
    later = load(followup_nifti)  # a third study: the follow-up moved again by 3 voxels
    third = tmp_path / "third.nii.gz"
    save_volume_nifti(dataclasses.replace(later, voxels=np.roll(later.voxels, 3, axis=2)), third)
    second = run_cli("compare", "1", str(third), "--out", str(tmp_path / "c2"), "--save-db", "--db-url", db)
    assert second.returncode == 0, second.stderr
    one = json.loads((tmp_path / "c1" / "comparison.json").read_text())["comparison"]["recist"]
    two = json.loads((tmp_path / "c2" / "comparison.json").read_text())["comparison"]["recist"]
    assert one["nadir_sum_mm"] == one["baseline_sum_mm"]
    assert two["nadir_sum_mm"] == min(two["baseline_sum_mm"], one["followup_sum_mm"])  # the smallest sum so far
    repository = Repository(db)
    try:
        assert [(b, f) for _, b, f, _ in repository.comparisons(1)] == [(1, 2), (1, 3)]
        repository.delete_result(2)
        assert [(b, f) for _, b, f, _ in repository.comparisons(1)] == [(1, 3)]  # deleted with its result
    finally:
        repository.close()


def test_a_single_image_is_refused_in_one_line(data_root, models_dir, tmp_path):
    jpg = data_root / "lits_jpg" / "images" / "volume-0_slice_38.jpg"
    other = data_root / "lits_jpg" / "images" / "volume-0_slice_40.jpg"  # not the same picture: that is refused first
    result = run_cli("compare", str(jpg), str(other), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs two CT volumes" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "comparison.json").exists()


def test_a_three_slice_ct_is_refused_in_one_line(data_root, models_dir, tmp_path):
    from tests.cli.test_worklist_cli import _constructed_followup_series

    thin = data_root / "dcmqi" / "ct-3slice"
    later = _constructed_followup_series(data_root, tmp_path / "later")  # not the same scan: that is refused first
    result = run_cli("compare", str(thin), str(later), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "too little of the liver" in result.stderr or "No liver was found" in result.stderr
