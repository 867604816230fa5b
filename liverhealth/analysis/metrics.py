"""Overlap metrics between a predicted and a reference mask."""

from __future__ import annotations

import numpy as np


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient 2|A∩B| / (|A|+|B|) of two boolean masks; 1.0 when both are empty."""
    prediction = np.asarray(prediction, dtype=bool)
    reference = np.asarray(reference, dtype=bool)
    total = int(prediction.sum()) + int(reference.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(prediction & reference)) / total


def iou(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    prediction = np.asarray(prediction, dtype=bool)
    reference = np.asarray(reference, dtype=bool)
    union = int(np.count_nonzero(prediction | reference))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(prediction & reference)) / union
