"""fill_between_slices rebuilds a real lesion from two of its slices, on the slices between only."""

from __future__ import annotations

import numpy as np

from liverhealth.domain import Label
from liverhealth.editing import fill_between_slices
from liverhealth.editing.interpolate import signed_distance
from tests.editing.conftest import refused


def test_signed_distance_is_negative_inside_and_positive_outside():
    mask = np.zeros((9, 9), bool)
    mask[3:6, 3:6] = True
    distance = signed_distance(mask, (0.5, 0.5))
    assert (distance[mask] < 0).all() and (distance[~mask] > 0).all()
    assert distance[4, 4] == -1.0 and distance[4, 0] == 1.5  # 2 px inside, 3 px outside, at 0.5 mm


def test_a_lesion_cleared_between_two_slices_comes_back(ircadb1, ircadb1_labels, ircadb1_lesions):
    components, _ = ircadb1_lesions
    lesion = components == 2  # livertumor02, 14,464 voxels over some 20 slices
    slices = np.flatnonzero(lesion.any(axis=(1, 2)))
    a, b = int(slices[0]) + 3, int(slices[-1]) - 3
    drawn = ircadb1_labels.copy()
    between = np.zeros(lesion.shape, bool)
    between[a + 1 : b] = lesion[a + 1 : b]
    drawn[between] = Label.LIVER  # the reader outlined it on slices a and b only
    result = fill_between_slices(drawn, Label.TUMOUR, a, b, ircadb1.spacing)
    changed = result.changed_mask()
    rows = np.flatnonzero(changed.any(axis=(1, 2)))
    assert rows.min() > a and rows.max() < b  # only the slices between
    filled = changed & (result.labels == Label.TUMOUR)
    dice = 2 * np.count_nonzero(filled & between) / (filled.sum() + between.sum())
    assert dice > 0.75, dice  # measured 0.80 (the lesion is not a straight prism between its ends)
    assert np.all(result.labels[~changed] == drawn[~changed])
    assert result.edit.parameters == {"label": 2, "slice_a": a, "slice_b": b}


def test_a_liver_fill_adds_liver_and_keeps_tumour():
    labels = np.zeros((5, 20, 20), np.uint8)
    labels[0, 5:15, 5:15] = Label.LIVER
    labels[4, 5:15, 5:15] = Label.LIVER
    labels[2, 8:10, 8:10] = Label.TUMOUR
    result = fill_between_slices(labels, Label.LIVER, 4, 0)
    assert np.all(result.labels[1:4, 5:15, 5:15] > 0)
    assert np.all(result.labels[2, 8:10, 8:10] == Label.TUMOUR)
    assert result.voxels_changed == 3 * 100 - 4


def test_fill_refusals_are_one_line():
    labels = np.zeros((5, 20, 20), np.uint8)
    labels[0, 5:10, 5:10] = Label.TUMOUR
    assert "no tumour" in refused(fill_between_slices, labels, Label.TUMOUR, 0, 4)
    assert "no slice between" in refused(fill_between_slices, labels, Label.TUMOUR, 0, 1)
    refused(fill_between_slices, labels, Label.TUMOUR, 0, 5)
    refused(fill_between_slices, labels, Label.BACKGROUND, 0, 4)
    assert "3D CT" in refused(fill_between_slices, labels[:1], Label.TUMOUR, 0, 0)
