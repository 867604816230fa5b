"""The window's view state without Qt: the crosshair across the three planes, 1-based numbers and the
DICOM instance beside them, and a picked lesion's caliper on its measured slice only."""

from __future__ import annotations

from liverhealth.analysis.caliper import lesion_calipers
from liverhealth.gui.view_model import ViewModel


def test_the_crosshair_is_one_voxel_seen_in_three_planes(ircadb1):
    view = ViewModel()
    view.set_volume(ircadb1)
    depth, rows, columns = ircadb1.shape
    assert view.cursor == (depth // 2, rows // 2, columns // 2)
    view.pick("coronal", 0, 10)  # the coronal picture's top row is the head end: the last slice
    assert view.cursor == (depth - 1, rows // 2, 10)
    view.pick("sagittal", depth - 1, 300)
    assert view.cursor == (0, 300, 10) and view.crosshair("axial") == (300, 10)
    assert view.crosshair("coronal") == (depth - 1, 10) and view.crosshair("sagittal") == (depth - 1, 300)
    view.scroll_plane("sagittal", -50)  # clamped at the volume's edge
    assert view.cursor_column == 0 and view.plane_index("sagittal") == 0
    assert view.plane_caption("coronal") == f"Coronal · 301 of {rows}"
    view.show_crosshair = False
    assert view.crosshair("axial") is None
    image = view.plane_image("coronal")
    assert image.shape == (depth, columns) and view.geometry("coronal").aspect > 2.8


def test_numbers_are_one_based_with_the_dicom_instance(ircadb1):
    view = ViewModel()
    view.set_volume(ircadb1)
    view.slice_index = 0
    instance = int(ircadb1.dicom.headers[0].InstanceNumber)
    assert view.slice_label() == f"slice 1 of {ircadb1.shape[0]} (DICOM instance {instance})"
    assert view.value_at(5, 5).startswith("x 5, y 5, slice 1: ")
    assert view.plane_caption("axial") == f"Axial · slice 1 of {ircadb1.shape[0]}"


def test_a_picked_lesion_shows_its_caliper_on_its_measured_slice_only(ircadb1, ircadb1_masks):
    labels = ircadb1_masks["liver"].astype("uint8") + ircadb1_masks["tumour"].astype("uint8")
    view = ViewModel()
    view.set_volume(ircadb1)
    view.calipers = lesion_calipers(labels, ircadb1.spacing)
    caliper = view.calipers[1]
    view.select_lesion(caliper.lesion_id)
    (row_a, column_a), (row_b, column_b) = caliper.long_axis
    assert view.cursor == (caliper.slice_index, round((row_a + row_b) / 2), round((column_a + column_b) / 2))
    assert view.shown_caliper() is caliper
    view.scroll(1 if caliper.slice_index == 0 else -1)
    assert view.shown_caliper() is None
