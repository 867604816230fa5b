"""`liverhealth sign` and `liverhealth edit` as real processes on the real CT."""

from __future__ import annotations

import getpass
import io
import json

import pytest
from pypdf import PdfReader

from tests.helpers.cli import run_cli


def _pdf_text(path) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(path.read_bytes())).pages)


@pytest.mark.slow
def test_sign_adds_a_signed_report_beside_the_draft_and_locks_the_folder(data_root, models_dir, tmp_path):
    out = tmp_path / "out"
    series = str(data_root / "dcmqi" / "ct-3slice")
    assert run_cli("segment", series, "--out", str(out), "--report").returncode == 0
    draft_pdf = (out / "report.pdf").read_bytes()
    signed = run_cli("sign", str(out), "--impression", "Liver of normal size. No focal lesion.")
    assert signed.returncode == 0, signed.stderr
    reader = getpass.getuser()
    assert f"Signed by {reader}" in signed.stdout and "revision 0" in signed.stdout
    assert (out / "report.pdf").read_bytes() == draft_pdf  # the machine's draft is kept as it was
    text = _pdf_text(out / "report_2.pdf")
    assert f"Reviewed and signed by {reader}" in text and "not a medical device" in text
    assert "Liver of normal size" in text and "Draft for radiologist review" not in text
    document = json.loads((out / "report_2.json").read_text())
    assert document["report"]["signed_by"] == reader and document["report"]["impression"].startswith("Liver of")
    again = run_cli("sign", str(out), "--impression", "changed my mind")
    assert again.returncode == 2 and "locked" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert not (out / "report_3.json").exists()
    both = run_cli("sign", str(out), "--impression", "a", "--impression-file", str(tmp_path / "x.txt"))
    assert both.returncode == 2 and "not both" in both.stderr


@pytest.mark.slow
def test_db_list_shows_the_latest_revision_and_db_show_its_history(data_root, models_dir, tmp_path):
    import numpy as np

    from liverhealth.domain import Actor, Label
    from liverhealth.workflow import Workstation

    url = f"sqlite:///{tmp_path / 'r.db'}"
    station = Workstation(models_dir=models_dir, db_url=url)
    session = station.session(Actor("dr.reader", "window"))
    session.open(data_root / "totalsegmentator" / "example_ct_dicom")
    labels = session.segment().segmentation.labels
    liver = np.argwhere(labels[10] == Label.LIVER)
    y, x = liver[len(liver) // 2]
    edited = session.paint(10, (int(y), int(x)), 3.0, Label.TUMOUR).segmentation.labels
    revision_id = session.save().result_id
    station.close()
    listing = run_cli("db", "--db-url", url, "list")
    assert listing.returncode == 0, listing.stderr
    rows = [line for line in listing.stdout.splitlines() if line.startswith("    ")]  # the worklist's result lines
    assert len(rows) == 1 and rows[0].split()[0] == str(revision_id) and "revision 1 (dr.reader)" in rows[0]
    show = run_cli("db", "--db-url", url, "show", str(revision_id))
    assert show.returncode == 0, show.stderr
    assert "the model's result" in show.stdout and "revision 1 by dr.reader" in show.stdout
    assert "(reader-edited)" in show.stdout
    assert np.count_nonzero(edited != labels) > 0


@pytest.mark.slow
def test_edit_writes_a_revision_folder_beside_the_models_and_keeps_it(data_root, models_dir, tmp_path):
    import nibabel as nib
    import numpy as np

    out = tmp_path / "out"
    assert (
        run_cli("segment", str(data_root / "totalsegmentator" / "example_ct_dicom"), "--out", str(out)).returncode == 0
    )
    original = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    labels = np.asarray(nib.load(str(out / "labels.nii.gz")).dataobj)  # [i, j, k]
    k = labels.shape[2] // 2
    inside = np.argwhere(labels[:, :, k] == 1)
    i, j = inside[len(inside) // 2]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    edited = run_cli("edit", str(out), "--paint", f"{i},{j},{k}", "--radius-mm", "4", "--save-db", "--db-url", url)
    assert edited.returncode == 0, edited.stderr
    revision = tmp_path / "out-revision-1"
    assert "Revision 1 by" in edited.stdout and str(revision) in edited.stdout and "is unchanged" in edited.stdout
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == original  # the model's folder kept
    revised = np.asarray(nib.load(str(revision / "labels.nii.gz")).dataobj)
    assert revised[i, j, k] == 2 and np.count_nonzero(revised != labels) > 0
    assert np.all(revised[:, :, [z for z in range(labels.shape[2]) if z != k]] == np.delete(labels, k, axis=2))
    document = json.loads((revision / "measurements.json").read_text())
    assert document["revision"]["number"] == 1 and document["revision"]["changes"][0]["kind"] == "paint"
    listing = run_cli("db", "--db-url", url, "list").stdout
    assert "revision 1" in listing
    again = run_cli("edit", str(out), "--paint", f"{i},{j},{k}", "--out", str(revision))
    assert again.returncode == 2 and "already exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    outside = run_cli("edit", str(out), "--add-lesion", "9999,0,0")
    assert outside.returncode == 2 and len(outside.stderr.strip().splitlines()) == 1
    assert "Traceback" not in outside.stderr
    nothing = run_cli("edit", str(out))
    assert nothing.returncode == 2 and "Nothing to edit" in nothing.stderr
    second = run_cli("edit", str(revision), "--remove-lesion", "1")
    assert second.returncode == 0, second.stderr
    assert "Revision 2" in second.stdout and (tmp_path / "out-revision-2").is_dir()
