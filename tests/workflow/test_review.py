"""The reader's review in the workflow service on the real CT: an edit re-measures, a save keeps the
model's result and adds a revision with its author, a signed report is locked and says who signed
it, and two readers editing the same result cannot overwrite each other."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from pypdf import PdfReader

from liverhealth.domain import Actor, Label
from liverhealth.errors import LiverHealthError
from liverhealth.workflow import Workstation


@pytest.fixture()
def workstation(models_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("LIVERHEALTH_LLM_BASE_URL", raising=False)
    station = Workstation(models_dir=models_dir, db_url=f"sqlite:///{tmp_path / 'results.db'}")
    yield station
    station.close()


def _paint_tumour(session) -> tuple[np.ndarray, np.ndarray, dict]:
    """A 4 mm tumour disc painted with the brush inside the liver on the middle slice: the labels
    after it, the voxels it changed, and the edit as the revision records it."""
    before = session.result.segmentation.labels
    z = before.shape[0] // 2
    liver = np.argwhere(before[z] == Label.LIVER)
    y, x = liver[len(liver) // 2]
    revised = session.paint(z, (int(y), int(x)), 4.0, Label.TUMOUR)
    edited = revised.segmentation.labels
    return edited, edited != before, revised.revision.changes[-1]


def _pdf_text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_an_edit_is_remeasured_and_saved_as_a_revision_beside_the_models_result(workstation, data_root, tmp_path):
    session = workstation.session(Actor("dr.reader", "window"))
    session.open(data_root / "totalsegmentator" / "example_ct_dicom")
    model_result = session.segment()
    edited, changed, change = _paint_tumour(session)
    revised = session.result
    assert change["kind"] == "paint" and change["voxels_changed"] == int(changed.sum()) > 0
    assert revised.measurements.tumour_voxels == model_result.measurements.tumour_voxels + int(
        (changed & (model_result.segmentation.labels != Label.TUMOUR)).sum()
    )
    assert any(lesion.edited for lesion in revised.measurements.lesions)
    assert not any(lesion.edited for lesion in model_result.measurements.lesions)
    assert revised.revision.number == 1 and revised.revision.author == "dr.reader"
    assert session.edited
    saved = session.save()
    history = workstation.repository.revisions(saved.result_id)
    assert [(h.revision, h.author) for h in history] == [(0, None), (1, "dr.reader")]
    model_row = workstation.get(history[0].result_id)
    assert np.array_equal(model_row.labels, model_result.segmentation.labels)  # never overwritten
    revision_row = workstation.get(saved.result_id)
    assert np.array_equal(revision_row.labels, edited)
    assert np.array_equal(revision_row.reader_drawn, changed)
    assert revision_row.revision.changes == (change,) and revision_row.revision.base_result_id == history[0].result_id
    assert [r.result_id for r in workstation.repository.list_results(latest_only=True)] == [saved.result_id]
    assert len(workstation.repository.list_results()) == 2
    folder = tmp_path / "exported"
    workstation.export_saved(saved.result_id, folder)
    document = json.loads((folder / "measurements.json").read_text())
    assert document["revision"]["number"] == 1 and document["revision"]["reader_edited"] is True
    assert document["revision"]["author"] == "dr.reader"
    assert (folder / "reader_drawn.nii.gz").is_file()
    actions = [(e.action, e.user) for e in workstation.audit_trail()]
    assert ("revision-saved", "dr.reader") in actions


def test_a_signed_report_names_the_reader_and_is_locked(workstation, data_root):
    session = workstation.session(Actor("dr.reader", "window"))
    session.open(data_root / "totalsegmentator" / "example_ct_dicom")
    session.segment()
    _paint_tumour(session)
    draft = session.make_report(use_llm=False)
    assert "Draft for radiologist review" in _pdf_text(draft.pdf)
    signed = session.sign(impression="One small lesion added by the reader; no other finding.")
    report = signed.report
    assert report.signed_by == "dr.reader" and report.revision == 1 and report.author == "dr.reader"
    text = _pdf_text(signed.pdf)
    assert "Reviewed and signed by dr.reader" in text and "result revision 1, reader-edited" in text
    assert "not a medical device" in text and "Draft for radiologist review" not in text
    assert "One small lesion added by the reader" in text
    saved = session.save()
    assert session.save() == saved  # saving again adds no second copy of the signed report
    stored = workstation.get(saved.result_id)
    assert len(stored.reports) == 1
    assert stored.signed is not None and stored.signed.report.impression.startswith("One small lesion")
    assert workstation.repository.revisions(saved.result_id)[-1].signed_by == "dr.reader"
    with pytest.raises(LiverHealthError, match="locked"):
        session.sign()
    session.report = draft
    with pytest.raises(LiverHealthError, match=r"signed by dr\.reader") as refused:
        session.save()
    assert "\n" not in str(refused.value)
    lesion = next(x for x in session.result.measurements.lesions if x.edited)
    again = session.remove_lesion(session.lesion_seed(lesion.lesion_id))
    assert again.revision.number == 2 and again.revision.changes[-1]["kind"] == "remove_lesion"
    assert session.save().result_id != saved.result_id  # a later change is a new revision
    assert [h.revision for h in workstation.repository.revisions(saved.result_id)] == [0, 1, 2]


def test_undo_and_redo_step_through_the_edits_and_all_undone_is_the_models_result(workstation, data_root):
    session = workstation.session(Actor("dr.reader", "window"))
    session.open(data_root / "totalsegmentator" / "example_ct_dicom")
    model_result = session.segment()
    first, _, _ = _paint_tumour(session)
    lesion = next(x for x in session.result.measurements.lesions if x.edited)
    session.relabel_lesion(session.lesion_seed(lesion.lesion_id), Label.LIVER)
    second = session.result.segmentation.labels
    assert not np.array_equal(first, second)
    assert np.array_equal(session.undo().segmentation.labels, first) and session.can_redo
    assert np.array_equal(session.redo().segmentation.labels, second)
    session.undo()
    undone = session.undo()
    assert undone is model_result and not session.edited and undone.revision is None
    with pytest.raises(LiverHealthError, match="Nothing to undo"):
        session.undo()
    assert session.redo().revision.number == 1


def test_two_readers_editing_one_result_cannot_overwrite_each_other(workstation, data_root):
    first = workstation.session(Actor("dr.one", "web", "127.0.0.1"))
    first.open(data_root / "totalsegmentator" / "example_ct_dicom")
    result = first.segment()
    model_id = first.save().result_id
    readers = [workstation.reopen(model_id, Actor(name, "window")) for name in ("dr.one", "dr.two")]
    for reader in readers:
        _paint_tumour(reader)
    assert readers[0].save().result_id
    with pytest.raises(LiverHealthError, match="another reader") as refused:
        readers[1].save()
    assert "\n" not in str(refused.value)
    assert readers[1].edited  # the refused reader's work is still in the session
    assert [h.revision for h in workstation.repository.revisions(model_id)] == [0, 1]
    assert np.array_equal(workstation.get(model_id).labels, result.segmentation.labels)
    saves = [e for e in workstation.audit_trail() if e.action in ("save", "revision-saved")]
    assert [(e.action, e.user, e.result_id is not None, e.study_id is not None) for e in saves] == [
        ("save", "dr.one", True, True),
        ("revision-saved", "dr.one", True, True),
    ]  # written in the save's own transaction: the refused save left none


def test_corrections_export_as_training_cases_the_preprocessor_reads(workstation, data_root, tmp_path):
    import subprocess
    import sys

    import nibabel as nib

    session = workstation.session(Actor("dr.reader", "window"))
    session.open(data_root / "totalsegmentator" / "example_ct_dicom")
    session.segment()
    edited, _changed, _change = _paint_tumour(session)
    revision_id = session.save().result_id
    other = workstation.session()
    other.open(data_root / "dcmqi" / "ct-3slice")
    other.segment()
    other.save()  # a model result nobody edited: not a correction
    out = tmp_path / "corrections"
    cases, skipped = workstation.export_training(out)
    model_id = workstation.repository.revisions(revision_id)[0].result_id
    assert cases == [f"result-{model_id}-revision-1"] and skipped == []
    labels = nib.load(str(out / cases[0] / "labels.nii.gz"))
    assert np.array_equal(np.asarray(labels.dataobj).transpose(2, 1, 0), edited)
    arguments = (out / "preprocess_args.txt").read_text().split()
    assert arguments[:2] == ["--labelled", cases[0]] and arguments[-1] == "liver=1;tumour=2"
    samples = tmp_path / "samples"
    done = subprocess.run(
        [sys.executable, "-m", "training.preprocess", "--out", str(samples), "--size", "64", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(samples.rglob("*.png")) or any(samples.rglob("*.npy")) or any(samples.rglob("*.npz"))
    with pytest.raises(LiverHealthError, match="already exists"):
        workstation.export_training(out)


def test_an_edited_signed_result_exports_as_its_own_seg_series_read_back_by_highdicom(workstation, data_root, tmp_path):
    import highdicom as hd
    import pydicom

    from liverhealth.imaging.dicom_seg import read_seg_labels

    session = workstation.session(Actor("dr.reader", "window"))
    volume = session.open(data_root / "totalsegmentator" / "example_ct_dicom")
    model_result = session.segment()
    edited, _changed, _change = _paint_tumour(session)
    session.sign(impression="Reader-added lesion.")
    paths = session.export_dicom(tmp_path / "dicom")
    seg, model_seg = hd.seg.segread(str(paths["seg"])), hd.seg.segread(str(paths["model_seg"]))
    assert seg.SeriesInstanceUID != model_seg.SeriesInstanceUID
    assert seg.StudyInstanceUID == model_seg.StudyInstanceUID
    assert seg.FrameOfReferenceUID == model_seg.FrameOfReferenceUID
    kinds = {d.SegmentLabel: d.SegmentAlgorithmType for d in seg.SegmentSequence}
    model_had_tumour = bool((model_result.segmentation.labels == Label.TUMOUR).any())
    assert kinds == {"liver": "SEMIAUTOMATIC", "liver tumour": "SEMIAUTOMATIC" if model_had_tumour else "MANUAL"}
    assert {d.SegmentAlgorithmType for d in model_seg.SegmentSequence} == {"AUTOMATIC"}
    series = seg.ReferencedSeriesSequence
    referenced = {item.ReferencedSOPInstanceUID for one in series for item in one.ReferencedInstanceSequence}
    assert model_seg.SOPInstanceUID in referenced
    assert str(seg.ContentCreatorName) == "dr.reader" and "revision 1" in seg.SeriesDescription
    assert np.array_equal(read_seg_labels(paths["seg"], volume), edited)
    assert np.array_equal(read_seg_labels(paths["model_seg"], volume), model_result.segmentation.labels)
    sr = hd.sr.srread(str(paths["sr"]))
    assert sr.VerificationFlag == "VERIFIED"
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "dr.reader"
    observers = [str(item.PersonName) for item in sr.ContentSequence if "PersonName" in item]
    assert "dr.reader" in observers
    pdf = pydicom.dcmread(paths["report_dicom"])
    assert "Reviewed and signed by dr.reader" in _pdf_text(bytes(pdf.EncapsulatedDocument).rstrip(b"\x00"))
