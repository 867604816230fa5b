"""A lesion-level false-positive filter: per-component features and a logistic model stored as data.

The segmentation model marks tumour voxel by voxel; many of its false lesions are recognisable as a
whole (small, low confidence, on the liver's edge, long and thin like a vessel). Each predicted
tumour component gets the features below, and a logistic regression fitted by the training package
on cross-validation folds' held-out predictions (``training/fp_filter.py``) gives the probability
that it is a real lesion. Components below the model's threshold become liver. The model's
coefficients travel in its manifest entry (``lesion_filter``), validated here: no pickles, no code
per model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from liverhealth.domain import Label
from liverhealth.errors import ModelError
from liverhealth.imaging.geometry import bounding_box
from liverhealth.inference.postprocess import FULL_3D

FEATURES = (
    "log_volume_ml",  # ln of the component's volume in mL
    "mean_hu",
    "sd_hu",
    "confidence_mean",  # the model's margin (0..1) over the component
    "confidence_max",
    "depth_mm",  # deepest point of the component inside the liver (distance to the liver's surface)
    "edge_fraction",  # share of the component's voxels within 3 mm of the liver's surface
    "elongation",  # ln of the ratio of the largest to the smallest principal axis (mm)
    "slices",  # how many slices it spans
)
EDGE_MM = 3.0


@dataclass(frozen=True)
class LesionFilter:
    """A fitted logistic model over ``FEATURES``: p = sigmoid(intercept + coef · (x - mean) / scale).
    Components with p below ``threshold`` are dropped. ``provenance`` says what it was fitted on."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    provenance: dict[str, Any]

    def probability(self, values: dict[str, float]) -> float:
        """The probability that a component with these feature values is a real lesion."""
        z = self.intercept + sum(
            c * (values[name] - m) / s
            for name, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "threshold": self.threshold,
            "provenance": dict(self.provenance),
        }


def _numbers(model_id: str, raw: dict[str, Any], key: str, count: int) -> tuple[float, ...]:
    values = raw.get(key)
    if (
        not isinstance(values, list)
        or len(values) != count
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    ):
        raise ModelError(f"Model '{model_id}': lesion_filter '{key}' must be {count} finite numbers.")
    return tuple(float(v) for v in values)


def parse_lesion_filter(model_id: str, raw: Any) -> LesionFilter | None:
    """The manifest's optional ``lesion_filter`` block, checked whole (a broken one is refused, never
    half-applied)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ModelError(f"Model '{model_id}': 'lesion_filter' must be an object.")
    features = raw.get("features")
    if not isinstance(features, list) or not features or not all(f in FEATURES for f in features):
        raise ModelError(f"Model '{model_id}': lesion_filter features must be a list drawn from {list(FEATURES)}.")
    count = len(features)
    scale = _numbers(model_id, raw, "scale", count)
    if any(s <= 0 for s in scale):
        raise ModelError(f"Model '{model_id}': lesion_filter scales must be positive.")
    intercept, threshold = raw.get("intercept"), raw.get("threshold")
    if not isinstance(intercept, (int, float)) or isinstance(intercept, bool) or not math.isfinite(intercept):
        raise ModelError(f"Model '{model_id}': lesion_filter 'intercept' must be a finite number.")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0.0 <= threshold < 1.0:
        raise ModelError(f"Model '{model_id}': lesion_filter 'threshold' must lie in [0, 1).")
    provenance = raw.get("provenance", {})
    if not isinstance(provenance, dict):
        raise ModelError(f"Model '{model_id}': lesion_filter 'provenance' must be an object.")
    return LesionFilter(
        features=tuple(features),
        mean=_numbers(model_id, raw, "mean", count),
        scale=scale,
        coef=_numbers(model_id, raw, "coef", count),
        intercept=float(intercept),
        threshold=float(threshold),
        provenance=dict(provenance),
    )


def component_features(
    hu: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray | None,
    spacing: tuple[float, float, float],
    crop: np.ndarray,
    offset: tuple[int, int, int],
    depth: np.ndarray,
    depth_offset: tuple[int, int, int] = (0, 0, 0),
) -> dict[str, float]:
    """The features of one tumour component (``crop`` at ``offset``); ``depth`` is the liver depth map
    (mm), cut from the grid at ``depth_offset``."""
    box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
    depth_box = tuple(slice(o - d, o - d + n) for o, d, n in zip(offset, depth_offset, crop.shape, strict=True))
    voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0
    values = hu[box][crop].astype(np.float64)
    margins = confidence[box][crop].astype(np.float64) / 100.0 if confidence is not None else np.ones(1)
    depths = depth[depth_box][crop]
    points = np.argwhere(crop) * np.asarray(spacing)
    if len(points) >= 3:
        spread = np.linalg.eigvalsh(np.cov(points.T)) if len(points) > 3 else np.ones(3)
        spread = np.sqrt(np.clip(spread, 0.25, None))  # a voxel's own extent keeps flat shapes finite
        elongation = float(np.log(spread.max() / spread.min()))
    else:
        elongation = 0.0
    return {
        "log_volume_ml": float(np.log(max(crop.sum() * voxel_ml, 1e-4))),
        "mean_hu": float(values.mean()),
        "sd_hu": float(values.std()),
        "confidence_mean": float(margins.mean()),
        "confidence_max": float(margins.max()),
        "depth_mm": float(depths.max()),
        "edge_fraction": float((depths <= EDGE_MM).mean()),
        "elongation": elongation,
        "slices": float(crop.any(axis=(1, 2)).sum()),
    }


def mask_components(mask: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """26-connected components of a boolean mask as (cropped mask, offset), largest first: the
    findings' lesion order (``analysis.measure.find_lesions`` is this)."""
    if not mask.any():
        return []
    box = bounding_box(mask)
    components, _ = ndimage.label(mask[box], structure=FULL_3D)
    found = []
    for index, sub in enumerate(ndimage.find_objects(components), start=1):
        crop = components[sub] == index
        found.append((crop, tuple(int(s.start) + int(b.start) for s, b in zip(sub, box, strict=True))))
    found.sort(key=lambda item: -int(item[0].sum()))
    return found  # type: ignore[return-value]


def tumour_components(labels: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """The tumour components of a label map, in the findings' order."""
    return mask_components(labels == Label.TUMOUR)


def lesion_features(
    hu: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None, spacing: tuple[float, float, float]
) -> list[tuple[np.ndarray, tuple[int, int, int], dict[str, float]]]:
    """Each tumour component of ``labels`` (largest first, as ``measure`` numbers them) with its features."""
    found = tumour_components(labels)
    if not found:
        return []
    organ = bounding_box(labels > 0, (1, 1, 1))  # the liver and a voxel of outside around it
    depth = ndimage.distance_transform_edt(labels[organ] > 0, sampling=spacing)
    start = tuple(int(s.start) for s in organ)
    return [
        (crop, offset, component_features(hu, labels, confidence, spacing, crop, offset, depth, start))
        for crop, offset in found
    ]


def apply_lesion_filter(
    hu: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray | None,
    spacing: tuple[float, float, float] | None,
    model: LesionFilter,
) -> tuple[np.ndarray, int]:
    """``labels`` with the components the filter rejects relabelled as liver, and how many it rejected.
    Without a spacing (a picture) nothing is filtered: the features are in mm."""
    if spacing is None:
        return labels, 0
    out = labels
    rejected = 0
    for crop, offset, values in lesion_features(hu, labels, confidence, spacing):
        if model.probability(values) >= model.threshold:
            continue
        if out is labels:
            out = labels.copy()
        box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
        out[box][crop] = Label.LIVER
        rejected += 1
    return out, rejected
