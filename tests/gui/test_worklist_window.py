"""The window's saved-results worklist and its prior-study chooser, on a temporary SQLite database,
driven through the menus under QT_QPA_PLATFORM=offscreen. The studies: TotalSegmentator's 20-slice
DICOM example as a constructed prior and follow-up of one patient (its files with a patient name,
ID, sex and birth date set, two study dates, new UIDs and one pixel changed in the follow-up: not a
real second scan), segmented with the tests' threshold model and saved through the window."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pydicom
from pydicom.uid import generate_uid
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QMessageBox

from liverhealth.gui.main_window import MainWindow
from tests.gui.test_main_window import STEP_TIMEOUT_MS, _answer_yes_soon, _menu_action, _run_step

PRIOR_DATE, FOLLOWUP_DATE = "20221208", "20230315"
PATIENT = "WORKLIST TEST (ID WL-0001)"


def _constructed_series(data_root, folder, study_date: str, changed: bool):
    """example_ct_dicom as a study of patient WL-0001 on ``study_date`` (new study, series and
    instance UIDs; with ``changed``, one pixel one grey level up, so that it is another scan)."""
    folder.mkdir()
    study_uid, series_uid = generate_uid(), generate_uid()
    for path in sorted((data_root / "totalsegmentator" / "example_ct_dicom").iterdir()):
        ds = pydicom.dcmread(path)
        ds.decompress()
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = "WORKLIST^TEST", "WL-0001", "F", "19600101"
        ds.StudyDate, ds.StudyInstanceUID, ds.SeriesInstanceUID = study_date, study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        if changed:
            pixels = ds.pixel_array.copy()
            pixels[0, 0] += 1
            ds.PixelData = pixels.tobytes()
        ds.save_as(folder / path.name)
    return folder


@pytest.fixture(scope="module")
def studies(data_root, tmp_path_factory):
    """The prior and the follow-up folders (written once for the module)."""
    root = tmp_path_factory.mktemp("worklist-studies")
    return (
        _constructed_series(data_root, root / "prior", PRIOR_DATE, changed=False),
        _constructed_series(data_root, root / "followup", FOLLOWUP_DATE, changed=True),
    )


@pytest.fixture()
def window(qtbot, models_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVERHEALTH_LLM_API_KEY", "")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "")
    monkeypatch.setenv("LIVERHEALTH_DB_URL", f"sqlite:///{tmp_path / 'worklist.db'}")
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    return win


def _open_and_segment(qtbot, window, folder) -> None:
    _run_step(qtbot, window, lambda: window.open_path(str(folder)), "load")
    _run_step(qtbot, window, window.segment, "segment")


def _save(qtbot, window) -> int:
    _answer_yes_soon()
    _run_step(qtbot, window, _menu_action(window, "Database Operation", "Save to Database").trigger, "save")
    return window.session.saved.result_id


def _children(item) -> list:
    return [item.child(i) for i in range(item.childCount())]


def _read_database(qtbot, window):
    _run_step(qtbot, window, _menu_action(window, "Database Operation", "Read Database").trigger, "list")
    return window.database_dialog


def test_the_worklist_shows_the_patient_then_studies_newest_first_and_opens_them(qtbot, window, studies):
    prior, followup = studies
    _open_and_segment(qtbot, window, prior)
    prior_id = _save(qtbot, window)
    _open_and_segment(qtbot, window, followup)
    followup_id = _save(qtbot, window)

    dialog = _read_database(qtbot, window)
    assert dialog.isVisible() and dialog.width() <= 1366
    assert dialog.tree.topLevelItemCount() == 1
    patient = dialog.tree.topLevelItem(0)
    assert patient.text(0) == f"{PATIENT} · sex F, born 1960-01-01 · 2 studies"
    later, earlier = _children(patient)
    assert later.text(0).startswith("2023-03-15") and earlier.text(0).startswith("2022-12-08")  # newest first
    assert "CT series, 20 slices" in later.text(0) and later.isFirstColumnSpanned()
    assert patient.isExpanded() and later.isExpanded() and earlier.isExpanded()
    (later_result,), (earlier_result,) = _children(later), _children(earlier)
    assert later_result.text(0) == f"Result {followup_id}" and earlier_result.text(0) == f"Result {prior_id}"
    assert (earlier_result.text(1), earlier_result.text(3)) == ("threshold", "model's result")
    assert float(earlier_result.text(4)) > 0 and int(earlier_result.text(6)) >= 0

    with qtbot.waitSignal(window.step_finished, timeout=STEP_TIMEOUT_MS) as blocker:
        dialog.tree.setCurrentItem(earlier_result)  # the preview loads in a worker
    assert blocker.args == ["preview"], window.last_error
    assert dialog.preview_label.pixmap() is not None and not dialog.preview_label.pixmap().isNull()
    assert dialog.open_button.isEnabled() and dialog.delete_button.isEnabled()
    window.view.result = None
    _run_step(qtbot, window, dialog.open_selected, "open")
    assert window.session.saved.result_id == prior_id and window.view.result is not None
    assert window.session.volume.study.study_date == PRIOR_DATE and not dialog.isVisible()

    dialog = _read_database(qtbot, window)  # a study row opens its newest result, on a double click too
    later = dialog.tree.topLevelItem(0).child(0)
    dialog.tree.setCurrentItem(later)
    qtbot.waitUntil(lambda: window.worker is None, timeout=STEP_TIMEOUT_MS)
    assert dialog.selected_id() == followup_id and not dialog.delete_button.isEnabled()
    _run_step(qtbot, window, lambda: dialog.tree.itemDoubleClicked.emit(later, 0), "open")
    assert window.session.saved.result_id == followup_id
    assert window.session.volume.study.study_date == FOLLOWUP_DATE

    dialog = _read_database(qtbot, window)  # the patient search
    dialog.search_field.setText("nobody")
    _run_step(qtbot, window, dialog.search, "search")
    assert dialog.tree.topLevelItemCount() == 0 and "No saved results for 'nobody'" in dialog.count_label.text()
    dialog.search_field.setText("WL-0001")
    _run_step(qtbot, window, dialog.search, "search")
    assert dialog.tree.topLevelItem(0).text(0).startswith(PATIENT)

    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(0).child(0).child(0))  # delete the follow-up's result
    qtbot.waitUntil(lambda: window.worker is None, timeout=STEP_TIMEOUT_MS)
    _answer_yes_soon()
    _run_step(qtbot, window, dialog.delete_selected, "delete")
    (patient,) = [dialog.tree.topLevelItem(i) for i in range(dialog.tree.topLevelItemCount())]
    (study,) = _children(patient)
    assert study.text(0).startswith("2022-12-08") and study.child(0).text(0) == f"Result {prior_id}"
    assert "for 'WL-0001'" in dialog.count_label.text()


def test_compare_with_a_prior_study_lists_the_earlier_study_and_compares(qtbot, window, studies):
    prior, followup = studies
    _open_and_segment(qtbot, window, prior)
    prior_id = _save(qtbot, window)
    _open_and_segment(qtbot, window, followup)  # the follow-up itself need not be saved
    action = _menu_action(window, "Image Segmentation", "Compare with a prior study")
    assert action.isEnabled()
    _run_step(qtbot, window, action.trigger, "priors")
    chooser = window.prior_dialog
    assert chooser.isVisible() and chooser.list.topLevelItemCount() == 1
    item = chooser.list.topLevelItem(0)
    assert item.text(0).startswith("2022-12-08") and f"result {prior_id} (threshold" in item.text(2)
    assert chooser.list.currentItem() is item and chooser.selected_study().result_for().result_id == prior_id
    _run_step(qtbot, window, chooser.compare_button.click, "compare")
    assert window.session.prior.saved.result_id == prior_id
    assert window.session.prior.volume.study.study_date == PRIOR_DATE
    assert window.comparison_window.isVisible()
    assert window.session.comparison.comparison.recist.response in {"CR", "PR", "SD", "PD", "NE"}
    assert "COMPARISON WITH PRIOR" in window.text.toPlainText()


def test_compare_with_a_prior_study_says_when_none_is_saved(qtbot, window, studies):
    _, followup = studies
    _open_and_segment(qtbot, window, followup)
    _run_step(qtbot, window, _menu_action(window, "Image Segmentation", "Compare with a prior study").trigger, "priors")
    assert window.prior_dialog is None and getattr(window, "comparison_window", None) is None
    (box,) = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    text = box.text()
    assert text.startswith("No earlier study of this patient is saved") and "\n" not in text
    assert box.windowModality() == Qt.NonModal
