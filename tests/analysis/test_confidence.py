"""Per-lesion and liver confidence from a confidence map, the calibrated flag, "check first" order."""

from __future__ import annotations

import numpy as np

from liverhealth.analysis import measure
from liverhealth.analysis.confidence import ConfidenceFlags, surface_confidence
from liverhealth.domain import CtVolume, SourceInfo
from liverhealth.imaging.geometry import LPS_TO_RAS
from liverhealth.presentation import check_first_note, lesion_label


def _volume(shape=(6, 80, 80), spacing=(2.0, 1.0, 1.0)) -> CtVolume:
    affine = LPS_TO_RAS @ np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    return CtVolume(np.zeros(shape, np.int16), spacing, affine, True, SourceInfo("test", "memory", "synthetic", 6))


def _scene():
    labels = np.zeros((6, 80, 80), np.uint8)
    labels[1:5, 10:70, 10:70] = 1
    labels[2:4, 20:30, 20:30] = 2  # lesion A: 10 x 10 px, the larger
    labels[2:4, 50:56, 50:56] = 2  # lesion B: 6 x 6 px
    confidence = np.full(labels.shape, 95, np.uint8)
    confidence[:, 45:61, 45:61] = 30  # the model was unsure around lesion B only
    return labels, confidence


def test_lesion_confidence_is_the_mean_over_lesion_and_rim():
    labels, confidence = _scene()
    m = measure(_volume(), labels, confidence)
    big, small = m.lesions
    assert big.voxel_count == 200 and big.confidence == 0.95
    assert small.confidence == 0.30  # lesion and its 2 mm rim lie inside the unsure square
    assert big.unsure is None and small.unsure is None  # no calibrated threshold: no flag
    assert [lesion.lesion_id for lesion in m.check_first()] == [2, 1]
    assert check_first_note(m) == ""
    # the liver's figure is its edge band's, not its (easy) interior's
    edge = surface_confidence(confidence, labels > 0, (2.0, 1.0, 1.0))
    assert m.liver_confidence == edge == 0.95
    confidence[:, 8:13, :] = 10  # unsure along one edge of the liver
    assert measure(_volume(), labels, confidence).liver_confidence < 0.95


def test_flags_follow_the_calibrated_threshold():
    labels, confidence = _scene()
    m = measure(_volume(), labels, confidence, ConfidenceFlags(lesion_below=0.6, liver_below=0.5))
    assert [lesion.unsure for lesion in m.lesions] == [False, True] and m.liver_unsure is False
    assert check_first_note(m) == "; check first (low model confidence): lesion(s) 2"
    assert lesion_label(2, 0.07, 36, 8.5, m.lesions[1].confidence, True).endswith("confidence 30 % · check first")
    assert ConfidenceFlags.from_calibration({"lesion_flag_below": 0.61}) == ConfidenceFlags(0.61, None)


def test_without_a_map_nothing_is_invented():
    labels, _ = _scene()
    m = measure(_volume(), labels)
    assert m.liver_confidence is None and all(lesion.confidence is None for lesion in m.lesions)
    assert [lesion.lesion_id for lesion in m.check_first()] == [1, 2]
    assert "confidence" not in lesion_label(1, 0.2, 100, 12.7)
