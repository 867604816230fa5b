"""Lesion-wise metrics on hand-made label maps and on the IRCADb ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from liverhealth.analysis import lesion_detection
from liverhealth.imaging.ircadb import ircadb_labels


def test_two_lesions_one_missed_one_false_positive():
    reference = np.zeros((10, 40, 40), np.uint8)
    reference[2:8, 5:35, 5:35] = 1
    reference[3:6, 8:14, 8:14] = 2  # lesion A: 108 voxels
    reference[4:7, 25:30, 25:30] = 2  # lesion B: 75 voxels, missed
    prediction = reference.copy()
    prediction[prediction == 2] = 1
    prediction[3:6, 8:14, 10:16] = 2  # overlaps A: 3*6*4 = 72 shared of 108 + 108
    prediction[7:9, 30:33, 5:8] = 2  # a false positive
    result = lesion_detection(prediction, reference)
    assert result.reference_count == 2 and result.found_count == 1
    assert result.recall == pytest.approx(0.5)
    assert result.predicted_count == 2 and result.false_positives == 1
    first, second = result.matches
    assert first.found and first.dice == pytest.approx(2 * 72 / (108 + 108))
    assert not second.found and second.dice == 0.0
    assert result.to_dict()["per_lesion_dice"] == [round(2 * 72 / 216, 4), 0.0]


def test_split_prediction_counts_once():
    reference = np.zeros((3, 20, 20), np.uint8)
    reference[1, 2:18, 5:10] = 2
    prediction = np.zeros_like(reference)
    prediction[1, 2:8, 5:10] = 2
    prediction[1, 10:18, 5:10] = 2  # two pieces on one lesion
    result = lesion_detection(prediction, reference)
    assert result.recall == 1.0 and result.false_positives == 0
    assert result.matches[0].dice == pytest.approx(2 * 70 / (80 + 70))


@pytest.mark.slow
def test_ircadb_against_itself(data_root, ircadb1):
    labels = ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)
    result = lesion_detection(labels, labels)
    assert result.reference_count == 7 and result.recall == 1.0 and result.false_positives == 0
    assert all(match.dice == 1.0 for match in result.matches)
    assert sorted(m.voxels for m in result.matches) == [766, 4859, 5224, 7192, 14464, 19426, 162337]
    empty = lesion_detection(np.zeros_like(labels), labels)
    assert empty.recall == 0.0 and empty.predicted_count == 0
