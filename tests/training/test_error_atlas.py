"""The error atlas points at the slices where a prediction really differs from the reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liverhealth.imaging.ircadb import load_ircadb_case
from training.error_atlas import error_atlas, slice_errors, worst_slices

pytestmark = pytest.mark.slow  # builds sample folders or scores whole cases: the full gate runs it


def test_worst_slices_by_hand():
    errors = np.array([0, 5, 9, 8, 0, 1, 7])
    assert worst_slices(errors, 2, min_gap=2) == [2, 6]
    assert worst_slices(errors, 5, min_gap=2) == [2, 6]
    assert worst_slices(errors, 5, min_gap=1) == [1, 2, 3, 5, 6]
    assert worst_slices(np.zeros(4, dtype=int), 3) == []


def test_atlas_shows_the_slices_where_the_liver_was_missed(data_root, tmp_path):
    volume, reference = load_ircadb_case(data_root / "3Dircadb1.1")
    prediction = reference.copy()
    prediction[60:71][prediction[60:71] > 0] = 0
    errors = slice_errors(prediction, reference)
    assert errors.sum() == int((reference[60:71] > 0).sum())
    path = tmp_path / "atlas.png"
    shown = error_atlas(volume.voxels, prediction, reference, path, "missed slices 60-70", count=3)
    assert len(shown) == 3 and all(60 <= z <= 70 for z in shown)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600
