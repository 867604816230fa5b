"""Paint and erase change the disc on one slice as documented, and nothing else."""

from __future__ import annotations

import numpy as np

from liverhealth.domain import Label
from liverhealth.editing import EditKind, erase, paint
from tests.editing.conftest import refused

SLICE = 77
LIVER_CENTRE = (249, 145)  # deep in the liver, 5 mm from any tumour or background
LESION_CENTRE = (334, 178)  # the deepest point of livertumor02 on this slice
EDGE = (249, 54)  # on the liver's edge: half liver, half background around it


def _only_disc_changed(before, result, z):
    changed = result.changed_mask()
    assert changed[z].any() and not np.delete(changed, z, axis=0).any()
    assert np.array_equal(result.labels[~changed], before[~changed])


def test_paint_tumour_is_a_disc_of_the_radius_in_mm(ircadb1, ircadb1_labels):
    before = ircadb1_labels
    result = paint(before, ircadb1.spacing, SLICE, LIVER_CENTRE, 5.0, Label.TUMOUR)
    assert not before.flags.writeable and result.labels is not before
    painted = result.changed_mask()[SLICE]
    assert np.all(before[SLICE][painted] == Label.LIVER) and np.all(result.labels[SLICE][painted] == Label.TUMOUR)
    rows, cols = np.nonzero(painted)
    assert np.hypot((rows - LIVER_CENTRE[0]) * 0.57, (cols - LIVER_CENTRE[1]) * 0.57).max() <= 5.0
    expected = np.pi * 5.0**2 / 0.57**2  # pixels of a 5 mm disc at 0.57 mm
    assert abs(painted.sum() - expected) / expected < 0.05
    _only_disc_changed(before, result, SLICE)
    assert result.edit.kind == EditKind.PAINT and result.edit.voxels_changed == int(painted.sum())
    assert result.edit.lesions_added == 1
    assert result.edit.parameters == {
        "slice": SLICE,
        "centre": list(LIVER_CENTRE),
        "radius": 5.0,
        "radius_unit": "mm",
        "label": 2,
    }


def test_paint_liver_keeps_tumour_and_erase_tumour_gives_liver(ircadb1, ircadb1_labels):
    before = ircadb1_labels
    liver = paint(before, ircadb1.spacing, SLICE, EDGE, 5.0, Label.LIVER)
    assert liver.voxels_changed > 100
    assert np.all(before[liver.changed_mask()] == Label.BACKGROUND)
    over_tumour = paint(before, ircadb1.spacing, SLICE, LESION_CENTRE, 8.0, Label.LIVER)
    assert np.array_equal(over_tumour.labels == Label.TUMOUR, before == Label.TUMOUR)  # liver paint keeps tumour

    erased = erase(before, ircadb1.spacing, SLICE, LESION_CENTRE, 8.0, Label.TUMOUR)
    changed = erased.changed_mask()
    assert changed.any()
    assert np.all(before[changed] == Label.TUMOUR) and np.all(erased.labels[changed] == Label.LIVER)
    assert np.array_equal(erased.labels > 0, before > 0)  # the liver outline is kept
    _only_disc_changed(before, erased, SLICE)


def test_erase_liver_clears_liver_and_tumour(ircadb1, ircadb1_labels):
    before = ircadb1_labels
    result = erase(before, ircadb1.spacing, SLICE, LESION_CENTRE, 10.0, Label.LIVER)
    changed = result.changed_mask()
    assert {int(v) for v in np.unique(before[changed])} == {Label.LIVER, Label.TUMOUR}
    assert np.all(result.labels[changed] == Label.BACKGROUND)
    _only_disc_changed(before, result, SLICE)


def test_tumour_may_be_painted_outside_the_liver_and_a_new_lesion_is_counted(ircadb1, ircadb1_labels):
    result = paint(ircadb1_labels, ircadb1.spacing, 20, (100, 100), 4.0, Label.TUMOUR)
    assert np.all(ircadb1_labels[result.changed_mask()] == Label.BACKGROUND)
    assert result.edit.lesions_added == 1 and result.edit.lesions_removed == 0
    undone = erase(result.labels, ircadb1.spacing, 20, (100, 100), 4.0, Label.LIVER)
    assert undone.edit.lesions_removed == 1
    assert np.array_equal(undone.labels, ircadb1_labels)


def test_a_raster_without_spacing_takes_the_radius_in_pixels():
    labels = np.zeros((1, 40, 40), np.uint8)
    result = paint(labels, None, 0, (20, 20), 3, Label.LIVER)
    rows, cols = np.nonzero(result.labels[0])
    assert np.hypot(rows - 20, cols - 20).max() <= 3 and len(rows) == 29  # the pixels within 3 px
    assert result.edit.parameters["radius_unit"] == "px"
    at_edge = paint(labels, None, 0, (0, 39), 3, Label.TUMOUR)  # clipped at the image border
    assert at_edge.labels[0, 0, 39] == Label.TUMOUR and at_edge.box is not None


def test_brush_refusals_are_one_line():
    labels = np.zeros((3, 10, 10), np.uint8)
    assert "liver or tumour" in refused(paint, labels, None, 0, (5, 5), 2, Label.BACKGROUND)
    refused(erase, labels, None, 0, (5, 5), 2, 7)
    assert "positive" in refused(paint, labels, None, 0, (5, 5), 0, Label.TUMOUR)
    refused(paint, labels, None, 0, (5, 5), float("nan"), Label.TUMOUR)
    assert "outside" in refused(paint, labels, None, 0, (10, 5), 2, Label.TUMOUR)
    refused(erase, labels, None, 3, (5, 5), 2, Label.TUMOUR)
    nothing = erase(labels, None, 0, (5, 5), 2, Label.TUMOUR)  # erasing where there is nothing changes nothing
    assert nothing.box is None and nothing.voxels_changed == 0 and nothing.changed_mask().sum() == 0
