"""The window's three planes on real CT (offscreen, real mouse clicks): one crosshair shared by the
axial, coronal and sagittal views, edge letters from the series' affine, the pixel aspect and the
scale bar, the picked lesion's outline and RECIST caliper as rendered, 1-based slice numbers, and a
lesion list whose confidence column stays on screen at 1366x768 and 1920x1080."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import nibabel as nib
import numpy as np
from PyQt5.QtCore import QPoint, QRect, Qt
from PyQt5.QtGui import QColor, QImage

from liverhealth.gui.main_window import CONFIDENCE_COLUMN, MainWindow
from liverhealth.gui.widgets import ANNOTATION_COLOUR, CALIPER_COLOUR, OUTLINE_COLOUR
from liverhealth.imaging import display

STEP_TIMEOUT_MS = 120_000
OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}


def _window(qtbot, size: tuple[int, int]) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture()
def ready(qtbot, models_dir, data_root, monkeypatch):
    """A function opening (and segmenting) a CT in a window of a given size."""
    monkeypatch.setenv("LIVERHEALTH_LLM_API_KEY", "")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "")

    def open_case(path: str, size: tuple[int, int] = (1366, 768), segment: bool = True) -> MainWindow:
        window = _window(qtbot, size)
        run_step(qtbot, window, lambda: window.open_path(str(data_root / path)), "load")
        if segment:
            run_step(qtbot, window, window.segment, "segment")
        qtbot.wait(50)
        return window

    return open_case


def run_step(qtbot, window, action, expected: str) -> None:
    with qtbot.waitSignal(window.step_finished, timeout=STEP_TIMEOUT_MS) as blocker:
        action()
    assert blocker.args == [expected], window.last_error


def rgb(image: QImage) -> np.ndarray:
    """A QImage as an (h, w, 3) uint8 array."""
    image = image.convertToFormat(QImage.Format_RGB888)
    bits = image.constBits()
    bits.setsize(image.byteCount())
    rows = np.frombuffer(bits, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def shown(canvas) -> np.ndarray:
    """The picture a canvas holds (its pixels, before zoom)."""
    return rgb(canvas._item.pixmap().toImage())


def rendered(canvas) -> np.ndarray:
    """What the canvas's viewport shows on screen."""
    return rgb(canvas.viewport().grab().toImage())


def expected_picture(window, plane: str, index: int) -> np.ndarray:
    """The plane's picture computed here from the volume and labels: coronal and sagittal head up."""
    volume, labels = window.view.volume, window.view.result.segmentation.labels
    take = {
        "axial": lambda a: a[index],
        "coronal": lambda a: a[::-1, index, :],
        "sagittal": lambda a: a[::-1, :, index],
    }
    grey = display.to_display(take[plane](volume.voxels), True, window.view.window)
    return display.overlay_labels(grey, take[plane](labels), window.view.opacity)


def click(qtbot, canvas, row: int, column: int) -> tuple[int, int]:
    """A real left click where the canvas draws picture pixel (row, column); returns the pixel hit."""
    pos = canvas.viewport_point(row, column)
    qtbot.mouseClick(canvas.viewport(), Qt.LeftButton, pos=pos)
    return canvas.pixel_at(pos)


def has_colour(image: np.ndarray, point: QPoint, colour: QColor, reach: int = 1) -> bool:
    y, x = point.y(), point.x()
    patch = image[max(y - reach, 0) : y + reach + 1, max(x - reach, 0) : x + reach + 1]
    return bool((patch == np.array([colour.red(), colour.green(), colour.blue()])).all(axis=-1).any())


def test_a_click_in_one_plane_moves_the_other_two(qtbot, ready):
    window = ready("totalsegmentator/example_ct_dicom")
    shape = window.view.volume.shape
    assert [canvas.isVisible() for canvas in window.planes.values()] == [True, True, True]

    hit = click(qtbot, window.axial, 200, 300)  # on the axial view: the coronal and sagittal follow
    z = window.view.slice_index
    assert window.view.cursor == (z, *hit)
    assert np.array_equal(shown(window.coronal), expected_picture(window, "coronal", hit[0]))
    assert np.array_equal(shown(window.sagittal), expected_picture(window, "sagittal", hit[1]))

    row, column = click(qtbot, window.coronal, 3, 150)  # on the coronal view: a new slice and column
    new_z = shape[0] - 1 - row  # head up: the picture's top row is the last slice
    assert window.view.cursor == (new_z, hit[0], column) and new_z != z
    assert np.array_equal(shown(window.axial), expected_picture(window, "axial", new_z))
    assert np.array_equal(shown(window.sagittal), expected_picture(window, "sagittal", column))
    assert window.slider.value() == new_z

    row, column = click(qtbot, window.sagittal, 10, 260)  # on the sagittal view: slice and row
    assert window.view.cursor == (shape[0] - 1 - row, column, window.view.cursor_column)
    assert np.array_equal(shown(window.coronal), expected_picture(window, "coronal", column))

    window.coronal.scrolled.emit(2)  # the wheel on a plane moves through that plane
    assert window.view.cursor_row == column + 2
    crosshair = window.view.crosshair("axial")
    assert crosshair == (column + 2, window.view.cursor_column)
    line = window.axial._cross[0].line()
    assert line.y1() == crosshair[0] + 0.5 and window.axial._cross[0].isVisible()


def test_orientation_letters_come_from_the_series_affine(ready):
    window = ready("totalsegmentator/example_ct_dicom", segment=False)
    codes = nib.aff2axcodes(window.view.volume.affine)  # where (column, row, slice) point
    assert codes == ("L", "P", "S")
    letters = {plane: canvas._geometry for plane, canvas in window.planes.items()}
    axial, coronal, sagittal = letters["axial"], letters["coronal"], letters["sagittal"]
    assert (coronal.top, coronal.bottom) == ("S", "I")  # head up
    assert (axial.left, axial.right, axial.top, axial.bottom) == (OPPOSITE[codes[0]], codes[0], "A", "P")
    assert (coronal.left, coronal.right) == ("R", "L") and (sagittal.left, sagittal.right) == ("A", "P")
    assert (sagittal.top, sagittal.bottom) == ("S", "I")
    canvas = window.coronal  # the top letter is painted at the top centre: without it, only there changes
    with_letters = rendered(canvas)
    canvas.set_geometry(replace(coronal, top=""), canvas.caption)
    changed = np.argwhere((rendered(canvas) != with_letters).any(axis=-1))
    assert len(changed) and changed[:, 0].max() < 48
    assert abs(changed[:, 1].mean() - with_letters.shape[1] / 2) < 12


def test_anisotropic_voxels_keep_their_aspect_and_the_scale_bar_its_length(ready):
    """3Dircadb1.1: 1.6 mm slices of 0.57 mm pixels."""
    window = ready("3Dircadb1.1/PATIENT_DICOM.zip", segment=False)
    spacing = window.view.volume.spacing
    for plane, canvas in window.planes.items():
        geometry = canvas._geometry
        drawn = canvas._item.sceneTransform() * canvas.transform()  # picture pixels -> screen pixels
        mm_per_screen_pixel = geometry.column_mm / drawn.m11()
        assert geometry.row_mm / drawn.m22() == pytest.approx(mm_per_screen_pixel, rel=1e-6)  # square on screen
        if plane == "coronal":
            assert (geometry.row_mm, geometry.column_mm) == (pytest.approx(spacing[0]), pytest.approx(spacing[2]))
            assert drawn.m22() / drawn.m11() == pytest.approx(1.6 / 0.57, rel=1e-3)
        length_mm, length_px = canvas.scale_bar()
        assert abs(length_px - length_mm / mm_per_screen_pixel) <= 0.5
        box = canvas.scale_bar_rect()
        row = rendered(canvas)[box.top() + 1]
        colour = row == np.array([ANNOTATION_COLOUR.red(), ANNOTATION_COLOUR.green(), ANNOTATION_COLOUR.blue()])
        painted = np.flatnonzero(colour.all(axis=-1))
        bar = painted[(painted >= box.left() - 2) & (painted <= box.right() + 2)]
        assert bar.max() - bar.min() + 1 == length_px  # the bar drawn as long as it says


def test_a_picture_without_pixel_size_has_no_scale_bar_and_no_letters(ready, data_root):
    picture = sorted((data_root / "lits_jpg" / "images").iterdir())[0]
    window = ready(str(picture.relative_to(data_root)), segment=False)
    assert window.axial.scale_bar() is None and window.axial._geometry.top == ""
    assert not window.coronal.isVisible() and not window.sagittal.isVisible()


def test_the_picked_lesion_is_outlined_with_its_caliper_on_its_measured_slice(qtbot, ready):
    window = ready("totalsegmentator/example_ct_dicom")
    caliper = next(c for c in window.session.calipers() if c.long_length > 15)
    row = next(
        r for r in range(window.lesions.count()) if window.lesions.item(r).data(Qt.UserRole + 1) == caliper.lesion_id
    )
    cell = window.lesions.visualItemRect(window.lesions.item(row, CONFIDENCE_COLUMN))
    qtbot.mouseClick(window.lesions.viewport(), Qt.LeftButton, pos=cell.center())
    assert window.view.selected_lesion == caliper.lesion_id and window.view.slice_index == caliper.slice_index
    assert window.lesions.item(row, 3).text() == str(caliper.slice_index + 1)  # the list's slice, 1-based
    canvas = window.axial
    canvas.scale(3, 3)  # zoomed in on the lesion, as a reader would
    canvas.centerOn(canvas._item.mapToScene(canvas._item.boundingRect().center()))
    (r0, c0), (r1, c1) = caliper.long_axis
    canvas.centerOn(canvas._item.mapToScene(c0 / 2 + c1 / 2 + 0.5, r0 / 2 + r1 / 2 + 0.5))
    qtbot.wait(20)
    image = rendered(canvas)
    for start, end in (caliper.long_axis, caliper.short_axis):
        for point in (start, end):
            assert has_colour(image, canvas.viewport_point(*point), CALIPER_COLOUR), point
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        assert has_colour(image, canvas.viewport_point(*middle), CALIPER_COLOUR)
    contour = max(caliper.outline, key=len)
    on_outline = [has_colour(image, canvas.viewport_point(*point), OUTLINE_COLOUR) for point in contour[::3]]
    assert np.mean(on_outline) > 0.5  # the caliper and crosshair are drawn over parts of it
    assert not has_colour(rendered(window.sagittal), QPoint(5, 5), CALIPER_COLOUR, reach=3)

    window.scroll(1)  # another slice: the caliper belongs to the one measured
    assert not canvas.marks_shown() and not has_colour(
        rendered(canvas), canvas.viewport_point(*caliper.long_axis[0]), CALIPER_COLOUR
    )
    window.scroll(-1)
    assert canvas.marks_shown()


def test_slices_are_numbered_from_one_with_the_dicom_instance(qtbot, ready):
    window = ready("totalsegmentator/example_ct_dicom")
    volume = window.view.volume
    window.go_to_slice(0)
    instance = int(volume.dicom.headers[0].InstanceNumber)
    assert f"slice 1 of {volume.shape[0]} (DICOM instance {instance})" in window.status.text()
    window.go_to_slice(volume.shape[0] - 1)
    last = int(volume.dicom.headers[-1].InstanceNumber)
    assert f"slice {volume.shape[0]} of {volume.shape[0]} (DICOM instance {last})" in window.status.text()
    assert window.axial.caption == f"Axial · slice {volume.shape[0]} of {volume.shape[0]}"
    assert f"slice {volume.shape[0]}:" in window.view.value_at(10, 10)
    menu = window.lesion_menu(window.lesions.item(0))
    caliper = window.view.caliper(int(window.lesions.item(0).data(Qt.UserRole + 1)))
    instance = int(volume.dicom.headers[caliper.slice_index].InstanceNumber)
    expected = f"Go to lesion {caliper.lesion_id}: slice {caliper.slice_index + 1} of {volume.shape[0]}"
    assert menu.actions()[2].text() == f"{expected} (DICOM instance {instance})"


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_the_lesion_list_shows_confidence_and_check_first_on_screen(qtbot, ready, models_dir, size):
    manifest = json.loads((models_dir / "manifest.json").read_text())
    manifest["models"][0]["confidence"] = {"lesion_flag_below": 0.7, "protocol": "test: lesions below 0.7"}
    (models_dir / "manifest.json").write_text(json.dumps(manifest))
    window = ready("3Dircadb1.1/PATIENT_DICOM.zip", size=size)
    assert window.size().width() == size[0] and window.size().height() <= size[1]
    table = window.lesions
    texts = [table.item(row, CONFIDENCE_COLUMN).text() for row in range(table.count())]
    assert any(text.endswith("check first") for text in texts) and not all(
        text.endswith("check first") for text in texts
    )
    viewport = table.viewport().rect()
    window_rect = QRect(QPoint(0, 0), window.size())
    for row in range(table.count()):
        rect = table.visualItemRect(table.item(row, CONFIDENCE_COLUMN))
        if rect.bottom() > viewport.bottom():
            break  # rows at and below the fold are reached by scrolling; the column is what must fit
        assert viewport.contains(rect), (row, rect, viewport)
        on_window = QRect(table.viewport().mapTo(window, rect.topLeft()), rect.size())
        assert window_rect.contains(on_window)
        needed = table.fontMetrics().horizontalAdvance(table.item(row, CONFIDENCE_COLUMN).text())
        assert rect.width() >= needed  # not cut off
    assert table.horizontalScrollBar().maximum() == 0  # every column on screen without scrolling sideways
