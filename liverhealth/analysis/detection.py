"""Lesion-wise detection metrics: which reference lesions were found, and what was invented.

A reference lesion (26-connected component of label 2) is found when any predicted tumour
component overlaps it by at least one voxel; a predicted component that overlaps no reference
lesion is a false positive. Per-lesion Dice compares a reference lesion with the union of the
predicted components that overlap it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from liverhealth.analysis.metrics import dice
from liverhealth.domain import Label

FULL_3D = ndimage.generate_binary_structure(3, 3)


@dataclass(frozen=True)
class LesionMatch:
    """One reference lesion and how the prediction did on it."""

    reference_id: int
    voxels: int
    found: bool
    dice: float
    matched_predictions: tuple[int, ...]


@dataclass(frozen=True)
class LesionDetection:
    """Lesion-wise results over a case."""

    matches: tuple[LesionMatch, ...]
    predicted_count: int
    false_positive_ids: tuple[int, ...]

    @property
    def reference_count(self) -> int:
        return len(self.matches)

    @property
    def found_count(self) -> int:
        return sum(match.found for match in self.matches)

    @property
    def recall(self) -> float:
        """Share of reference lesions found (1.0 when there are none to find)."""
        return self.found_count / self.reference_count if self.matches else 1.0

    @property
    def false_positives(self) -> int:
        return len(self.false_positive_ids)

    def to_dict(self) -> dict:
        return {
            "reference_lesions": self.reference_count,
            "found": self.found_count,
            "recall": self.recall,
            "predicted_lesions": self.predicted_count,
            "false_positives": self.false_positives,
            "per_lesion_dice": [round(m.dice, 4) for m in self.matches],
        }


def lesion_detection(prediction: np.ndarray, reference: np.ndarray) -> LesionDetection:
    """Match predicted tumour components to reference lesions (label maps or boolean masks)."""
    predicted = prediction == Label.TUMOUR if prediction.dtype != bool else prediction
    truth = reference == Label.TUMOUR if reference.dtype != bool else reference
    ref_components, ref_count = ndimage.label(truth, structure=FULL_3D if truth.ndim == 3 else None)
    pred_components, pred_count = ndimage.label(predicted, structure=FULL_3D if predicted.ndim == 3 else None)
    both = truth & predicted
    pairs = (
        np.unique(np.stack([ref_components[both], pred_components[both]]), axis=1)
        if both.any()
        else np.zeros((2, 0), int)
    )
    matches = []
    sizes = np.bincount(ref_components.ravel(), minlength=ref_count + 1)
    for ref_id in range(1, ref_count + 1):
        partners = tuple(int(p) for p in pairs[1][pairs[0] == ref_id])
        lesion = ref_components == ref_id
        union = np.isin(pred_components, partners) if partners else np.zeros_like(lesion)
        matches.append(LesionMatch(ref_id, int(sizes[ref_id]), bool(partners), dice(union, lesion), partners))
    matched = set(int(p) for p in pairs[1])
    false_positives = tuple(p for p in range(1, pred_count + 1) if p not in matched)
    return LesionDetection(tuple(matches), int(pred_count), false_positives)
