"""How sure the model was of what it outlined: one figure per lesion and one for the liver.

The engine's per-voxel confidence is the margin between the model's two most probable classes
(uint8 percent). A lesion's figure is the mean over the lesion and a rim around it, in-plane,
``RIM_MM`` wide: its inside says whether the model believed it is tumour at all, its rim
whether the edge (and so the diameter) is clear. The liver's figure is the mean over a band
``RIM_MM`` either side of its surface: the interior of a liver is easy, the edge is where an
outline goes wrong. Whether a low figure means a lesion is worth checking first is measured on
held-out patients (``bench/bench_confidence.py``); a model's manifest entry carries the
thresholds only when that measurement showed it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liverhealth.imaging.geometry import bounding_box
from liverhealth.inference.postprocess import dilate_in_plane

RIM_MM = 2.0


@dataclass(frozen=True)
class ConfidenceFlags:
    """Thresholds below which a lesion or the liver is flagged "check first" (None: not calibrated)."""

    lesion_below: float | None = None
    liver_below: float | None = None

    @classmethod
    def from_calibration(cls, calibration: dict) -> ConfidenceFlags:
        """From a manifest entry's ``confidence`` block (empty: nothing is flagged)."""
        lesion, liver = calibration.get("lesion_flag_below"), calibration.get("liver_flag_below")
        return cls(float(lesion) if lesion is not None else None, float(liver) if liver is not None else None)


def _rim_px(spacing: tuple[float, float, float] | None) -> int:
    pixel = min(spacing[1], spacing[2]) if spacing else 1.0
    return max(round(RIM_MM / pixel), 1)


def lesion_confidence(
    confidence: np.ndarray, component: np.ndarray, offset: tuple[int, int, int], spacing: tuple | None
) -> float:
    """Mean confidence (0..1) over a lesion (its mask cropped at ``offset``) and its in-plane rim."""
    rim = _rim_px(spacing)
    height, width = confidence.shape[1:]
    z0, y0, x0 = offset
    y1, x1 = max(y0 - rim, 0), max(x0 - rim, 0)
    y2, x2 = min(y0 + component.shape[1] + rim, height), min(x0 + component.shape[2] + rim, width)
    region = np.zeros((component.shape[0], y2 - y1, x2 - x1), dtype=bool)
    region[:, y0 - y1 : y0 - y1 + component.shape[1], x0 - x1 : x0 - x1 + component.shape[2]] = component
    region = dilate_in_plane(region, rim)
    values = confidence[z0 : z0 + component.shape[0], y1:y2, x1:x2][region]
    return round(float(values.mean()) / 100.0, 4)


def surface_confidence(confidence: np.ndarray, mask: np.ndarray, spacing: tuple | None) -> float | None:
    """Mean confidence (0..1) in a band ``RIM_MM`` either side of a mask's in-plane edge (None: empty)."""
    if not mask.any():
        return None
    rim = _rim_px(spacing)
    box = bounding_box(mask, (0, rim + 1, rim + 1))
    crop = mask[box]
    band = dilate_in_plane(crop, rim) & dilate_in_plane(~crop, rim)
    if not band.any():
        return None
    return round(float(confidence[box][band].mean()) / 100.0, 4)


def is_unsure(value: float | None, below: float | None) -> bool | None:
    """True/False when a calibrated threshold exists, None when it does not (no flag to show)."""
    if value is None or below is None:
        return None
    return value < below
