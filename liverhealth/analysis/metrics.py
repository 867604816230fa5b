"""Overlap metrics between a predicted and a reference mask."""

from __future__ import annotations

import numpy as np

from liverhealth.domain import Label


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


def confusion_matrix(prediction: np.ndarray, reference: np.ndarray, classes: int = 3) -> np.ndarray:
    """Counts [reference class, predicted class] over all voxels (int64)."""
    pairs = np.asarray(reference, np.int64).ravel() * classes + np.asarray(prediction, np.int64).ravel()
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def class_metrics(confusion: np.ndarray) -> dict[str, list[float]]:
    """Per-class Dice, IoU and accuracy (recall, TP / reference) from a confusion matrix.

    A class absent from both prediction and reference scores 1.0 (nothing to find, nothing
    invented).
    """
    tp = np.diag(confusion).astype(float)
    reference = confusion.sum(axis=1).astype(float)
    predicted = confusion.sum(axis=0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dice_ = np.where(reference + predicted > 0, 2 * tp / (reference + predicted), 1.0)
        iou_ = np.where(reference + predicted - tp > 0, tp / (reference + predicted - tp), 1.0)
        accuracy = np.where(reference > 0, tp / reference, 1.0)
    return {"dice": dice_.tolist(), "iou": iou_.tolist(), "accuracy": accuracy.tolist()}


def cohen_kappa(confusion: np.ndarray) -> float:
    """Cohen's kappa: agreement beyond chance, (p_o - p_e) / (1 - p_e)."""
    total = float(confusion.sum())
    if total == 0:
        return 1.0
    observed = float(np.trace(confusion)) / total
    expected = float((confusion.sum(axis=0) * confusion.sum(axis=1)).sum()) / total**2
    return 1.0 if expected == 1.0 else (observed - expected) / (1.0 - expected)


def segmentation_report(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The seed paper's Table 2 metrics for one label map (0/1/2) against its reference.

    ``liver_dice`` is the whole organ (labels 1 and 2 together, as LiTS scores it);
    ``tumour_dice`` is label 2; ``miou`` the mean IoU over the three classes; ``accuracy``
    the share of voxels labelled correctly.
    """
    confusion = confusion_matrix(prediction, reference)
    per_class = class_metrics(confusion)
    return {
        "liver_dice": dice(np.asarray(prediction) > 0, np.asarray(reference) > 0),
        "tumour_dice": dice(np.asarray(prediction) == Label.TUMOUR, np.asarray(reference) == Label.TUMOUR),
        "liver_iou": iou(np.asarray(prediction) > 0, np.asarray(reference) > 0),
        "tumour_iou": iou(np.asarray(prediction) == Label.TUMOUR, np.asarray(reference) == Label.TUMOUR),
        "miou": float(np.mean(per_class["iou"])),
        "kappa": cohen_kappa(confusion),
        "accuracy": float(np.trace(confusion)) / max(float(confusion.sum()), 1.0),
        "class_dice": per_class["dice"],
        "class_iou": per_class["iou"],
        "class_accuracy": per_class["accuracy"],
    }
