"""The reader's review in the real window (offscreen): edit mode on the segmentation canvas with real
mouse clicks and key presses, the lesion list's menu, unsaved revisions, and the report's sign-off
saved to the database. The 20-slice TotalSegmentator CT with the test threshold model keeps it fast."""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PyQt5.QtCore import QPoint, QPointF, Qt, QTimer
from PyQt5.QtWidgets import QApplication, QMessageBox
from scipy import ndimage

from liverhealth.domain import Label
from liverhealth.gui.main_window import TITLE, MainWindow
from liverhealth.gui.view_model import BRUSH_MM, EditTools, Tool

STEP_TIMEOUT_MS = 60_000


@pytest.fixture()
def window(qtbot, models_dir, data_root, monkeypatch, tmp_path):
    """The window with the CT open and segmented; unsaved edits are undone before it closes (else
    closing asks)."""
    monkeypatch.setenv("LIVERHEALTH_LLM_API_KEY", "")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "")
    monkeypatch.setenv("LIVERHEALTH_DB_URL", f"sqlite:///{tmp_path / 'review.db'}")
    win = MainWindow()  # closed here, not by qtbot (which closes widgets before fixtures end)
    win.show()
    qtbot.waitExposed(win)
    ct = str(data_root / "totalsegmentator" / "example_ct_dicom")
    run_step(qtbot, win, lambda: win.open_path(ct), "load")
    run_step(qtbot, win, win.segment, "segment")
    yield win
    qtbot.waitUntil(lambda: win.worker is None, timeout=STEP_TIMEOUT_MS)
    while win.session.edited:
        win.session.undo()
    win.close()
    win.deleteLater()


def run_step(qtbot, window, action, expected: str) -> float:
    """Run ``action`` and wait for the step it starts; returns the seconds until the window showed it."""
    started = time.perf_counter()
    with qtbot.waitSignal(window.step_finished, timeout=STEP_TIMEOUT_MS) as blocker:
        action()
    assert blocker.args == [expected], window.last_error
    return time.perf_counter() - started


def click_pixel(qtbot, canvas, row: int, column: int) -> tuple[int, int]:
    """A real left click on the screen point where the canvas draws pixel (row, column); returns the
    pixel the canvas says is under that point."""
    pos = canvas.mapFromScene(QPointF(column + 0.5, row + 0.5))
    qtbot.mouseClick(canvas.viewport(), Qt.LeftButton, pos=pos)
    return canvas.pixel_at(pos)


def answer_soon(button: QMessageBox.StandardButton) -> None:
    """Press ``button`` on the question box the next action opens (a real click on the real box)."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(button).click()
        else:
            QTimer.singleShot(50, click)

    QTimer.singleShot(50, click)


def liver_far_from_tumour(window, margin_mm: float) -> tuple[int, int]:
    """(row, column) of a liver pixel on the current slice at least ``margin_mm`` from any tumour (in 3D)."""
    result = window.view.result
    labels = result.segmentation.labels
    distance = ndimage.distance_transform_edt(labels != Label.TUMOUR, sampling=result.volume.spacing)
    z = window.view.slice_index
    candidates = np.argwhere((labels[z] == Label.LIVER) & (distance[z] > margin_mm))
    row, column = candidates[len(candidates) // 2]
    return int(row), int(column)


def labels_at(window, row: int, column: int) -> int:
    return int(window.view.result.segmentation.labels[window.view.slice_index, row, column])


def lesion_texts(window) -> list[str]:
    return [window.lesions.item(i).text() for i in range(window.lesions.count())]


def test_a_click_maps_to_the_pixel_drawn_under_it(qtbot, window):
    canvas = window.right
    window.set_edit_mode(True)
    canvas.scale(4, 4)  # zoomed in: a screen pixel is smaller than an image pixel, so the mapping must be exact
    canvas.centerOn(300.0, 200.0)
    for row, column in ((200, 300), (195, 296), (204, 305)):
        assert canvas.pixel_at(canvas.mapFromScene(QPointF(column + 0.5, row + 0.5))) == (row, column)
    canvas.scale(1 / 16, 1 / 16)  # zoomed out: the image fills a corner of the canvas at most
    corner = QPoint(1, 1)  # (0, 0) is Qt's null point: QTest would click the widget's centre
    assert canvas.pixel_at(corner) is None
    before = window.view.result
    qtbot.mouseClick(canvas.viewport(), Qt.LeftButton, pos=corner)
    assert window.worker is None and window.view.result is before and not window.session.edited


def test_paint_with_the_mouse_then_undo_and_redo_with_the_keys(qtbot, window, capsys):
    count = window.lesions.count()
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key_B)  # B: edit mode with the brush
    assert window.view.tools.active and window.palette.isVisible()
    radius = window.view.tools.radius_mm
    row, column = liver_far_from_tumour(window, radius + 5)
    assert labels_at(window, row, column) == Label.LIVER
    clicked: list[tuple[int, int]] = []
    seconds = run_step(qtbot, window, lambda: clicked.append(click_pixel(qtbot, window.right, row, column)), "edit")
    (hit,) = clicked
    assert abs(hit[0] - row) <= 1 and abs(hit[1] - column) <= 1  # zoomed out, one screen pixel spans ~1 image pixel
    assert labels_at(window, *hit) == Label.TUMOUR
    assert window.lesions.count() == count + 1 and sum(t.startswith("[edited]") for t in lesion_texts(window)) == 1
    assert f"Focal lesions segmented: {count + 1}" in window.text.toPlainText()
    assert window.windowTitle() == f"{TITLE} - revision 1 (unsaved)" and "revision 1 (unsaved)" in window.status.text()
    with capsys.disabled():
        print(f"\npaint on screen: {1000 * seconds:.0f} ms from the click to the redrawn window")

    run_step(qtbot, window, lambda: qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier), "undo")
    assert labels_at(window, *hit) == Label.LIVER and window.lesions.count() == count
    assert window.windowTitle() == TITLE and not window.session.edited
    redo = Qt.ControlModifier | Qt.ShiftModifier
    run_step(qtbot, window, lambda: qtbot.keyClick(window, Qt.Key_Z, redo), "redo")
    assert labels_at(window, *hit) == Label.TUMOUR and window.lesions.count() == count + 1
    run_step(qtbot, window, lambda: qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier), "undo")
    run_step(qtbot, window, lambda: qtbot.keyClick(window, Qt.Key_Y, Qt.ControlModifier), "redo")
    assert labels_at(window, *hit) == Label.TUMOUR and window.session.edited

    qtbot.keyClick(window, Qt.Key_BracketRight)
    assert window.view.tools.radius_mm > radius and window.palette.radius.value() == window.view.tools.radius_mm
    qtbot.keyClick(window, Qt.Key_Escape)
    assert not window.view.tools.active and not window.palette.isVisible()


def test_unsaved_edits_are_not_discarded_without_asking(qtbot, window, data_root):
    window.choose_tool(Tool.PAINT)
    run_step(qtbot, window, lambda: click_pixel(qtbot, window.right, *liver_far_from_tumour(window, 10)), "edit")
    answer_soon(QMessageBox.Cancel)
    window.close()
    assert window.isVisible() and window.session.edited
    answer_soon(QMessageBox.Cancel)
    window.open_path(str(data_root / "dcmqi" / "ct-3slice"))
    assert window.worker is None and window.session.edited
    answer_soon(QMessageBox.Discard)
    run_step(qtbot, window, lambda: window.open_path(str(data_root / "dcmqi" / "ct-3slice")), "load")
    assert window.view.slice_count == 3 and window.windowTitle() == TITLE and not window.view.tools.active


def test_lesion_menu_removes_relabels_and_goes_to_a_lesion(qtbot, window):
    lesions = window.view.result.measurements.lesions
    count, second = len(lesions), lesions[1]
    seed = window.session.lesion_seed(2)
    menu = window.lesion_menu(window.lesions.item(1))
    texts = [action.text() for action in menu.actions()]
    assert texts[0].startswith("Remove") and "as liver" in texts[1] and texts[2].startswith("Go to")
    menu.actions()[2].trigger()
    assert window.view.slice_index == second.largest_slice
    run_step(qtbot, window, menu.actions()[0].trigger, "edit")
    assert window.view.result.segmentation.labels[seed] == Label.LIVER and window.lesions.count() == count - 1
    menu = window.lesion_menu(window.lesions.item(0))
    run_step(qtbot, window, menu.actions()[1].trigger, "edit")
    assert window.lesions.count() == count - 2 and window.session.result.revision.number == 1
    assert window.view.slice_index == second.largest_slice  # an edit keeps the reader on their slice


def test_a_refused_edit_says_why_in_one_line(qtbot, window):
    window.choose_tool(Tool.ADD_LESION)
    row, column = liver_far_from_tumour(window, 10)
    run_step(qtbot, window, lambda: click_pixel(qtbot, window.right, row, column), "edit-failed")
    message = window.palette.hint.text()
    assert "liver's density" in message and "\n" not in message and "Traceback" not in message
    assert window.error_box is None and not window.session.edited


def test_fill_between_two_painted_slices(qtbot, window):
    window.choose_tool(Tool.PAINT)
    row, column = liver_far_from_tumour(window, 12)
    middle = window.view.slice_index
    for z in (middle - 2, middle + 2):
        window.go_to_slice(z)
        run_step(qtbot, window, lambda: click_pixel(qtbot, window.right, row, column), "edit")
    window.choose_tool(Tool.FILL_BETWEEN)
    window.go_to_slice(middle - 2)
    click_pixel(qtbot, window.right, row, column)  # the first slice: nothing is edited yet
    assert window.worker is None and "chosen" in window.palette.hint.text()
    window.go_to_slice(middle + 2)
    run_step(qtbot, window, lambda: click_pixel(qtbot, window.right, row, column), "edit")
    labels = window.view.result.segmentation.labels
    assert all(labels[z, row, column] == Label.TUMOUR for z in range(middle - 2, middle + 3))


def test_sign_the_report_and_save_it(qtbot, window):
    window.choose_tool(Tool.PAINT)
    run_step(qtbot, window, lambda: click_pixel(qtbot, window.right, *liver_far_from_tumour(window, 10)), "edit")
    window.sign_action.trigger()
    dialog = window.sign_dialog
    assert dialog.isVisible() and "revision 1" in dialog.note.text()
    dialog.impression_edit.setPlainText("New 5 mm focus in the liver, reader-drawn; follow-up CT in 3 months.")
    dialog.draft_edit.setPlainText("Reader's draft text.")
    with qtbot.waitSignal(window.step_finished, timeout=STEP_TIMEOUT_MS, check_params_cb=lambda s: s != "sign"):
        qtbot.mouseClick(dialog.sign_button, Qt.LeftButton)
    assert window.last_error == "" and window.session.saved is not None
    reader = window.session.actor.user
    assert f"Reviewed and signed by {reader}" in window.text.toPlainText()
    assert "follow-up CT in 3 months" in window.text.toPlainText() and window.windowTitle() == TITLE
    stored = window.workstation.get(window.session.saved.result_id)
    assert stored.revision.number == 1 and stored.summary.revision == 1
    assert stored.signed.report.signed_by == reader and stored.signed.report.draft == "Reader's draft text."
    assert "follow-up CT" in stored.signed.report.impression

    window.sign_action.trigger()  # signed reports are locked: the session refuses, the window says why
    run_step(qtbot, window, lambda: qtbot.mouseClick(window.sign_dialog.sign_button, Qt.LeftButton), "sign-failed")
    assert "locked" in window.last_error and window.error_box.isVisible()


def test_brush_steps_stay_in_range_and_follow_the_pixel_size():
    tools = EditTools(active=True, radius_mm=5.0)
    sizes = [tools.resize_brush(1) for _ in range(30)]
    assert sizes == sorted(sizes) and sizes[-1] == BRUSH_MM[1]
    assert [tools.resize_brush(-1) for _ in range(40)][-1] == BRUSH_MM[0]
    tools.radius_mm = 3.0
    assert tools.brush_pixels((2.0, 0.5, 0.75)) == (6.0, 4.0) and tools.brush_pixels(None) == (3.0, 3.0)
    tools.tool = Tool.ADD_LESION
    assert tools.brush_pixels((2.0, 0.5, 0.75)) is None
