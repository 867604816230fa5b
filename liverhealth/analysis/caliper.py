"""Where a lesion was measured: its outline and RECIST long and short axes on the measured slice.

The numbers come from ``measure`` (the longest in-plane diameter over the lesion's slices and the
extent at right angles to it on that slice); this module finds the same slice and segment again so
every face (window, web page, PDF key images) draws the caliper the figures were read from.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from liverhealth.analysis.measure import find_lesions
from liverhealth.domain import Label

_CORNERS = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])

Point = tuple[float, float]  # (row, column) on the slice, pixel centres at integers


@dataclass(frozen=True)
class Caliper:
    """Lesion ``lesion_id``'s outline and RECIST axes on slice ``slice_index`` (0-based array index;
    shown to people as slice ``slice_index + 1``). Axes are (start, end) points in (row, column)
    pixel coordinates; lengths in mm when the pixel size is known, else in pixels."""

    lesion_id: int
    slice_index: int
    long_axis: tuple[Point, Point]
    short_axis: tuple[Point, Point]
    long_length: float
    short_length: float
    outline: tuple[tuple[Point, ...], ...]  # closed contours of the lesion on that slice


def _hull(mask_2d: np.ndarray, pixel_yx: tuple[float, float]) -> np.ndarray:
    """Convex hull of the mask's pixel squares, (x, y) in the units of ``pixel_yx``."""
    mask = np.ascontiguousarray(mask_2d, dtype=np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 2))
    centres = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
    corners = (centres[:, None, :] + _CORNERS[None, :, :]).reshape(-1, 2) * np.array([pixel_yx[1], pixel_yx[0]])
    return cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def slice_axes(mask_2d: np.ndarray, pixel_yx: tuple[float, float]) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Longest diameter and perpendicular extent of a 2D mask (as ``measure.feret_diameters``), with
    the two segments as 2x2 arrays of (x, y) points in the units of ``pixel_yx``. The short axis is
    drawn at right angles to the long one, through the middle of the two points that bound it."""
    hull = _hull(mask_2d, pixel_yx)
    if len(hull) == 0:
        empty = np.zeros((2, 2))
        return 0.0, 0.0, empty, empty
    deltas = hull[:, None, :] - hull[None, :, :]
    lengths = np.hypot(deltas[..., 0], deltas[..., 1])
    i, j = np.unravel_index(int(np.argmax(lengths)), lengths.shape)
    longest = float(lengths[i, j])
    if longest == 0:
        point = np.array([hull[0], hull[0]])
        return 0.0, 0.0, point, point
    axis = deltas[i, j] / longest
    normal = np.array([-axis[1], axis[0]])
    projection = hull @ normal
    low, high = int(np.argmin(projection)), int(np.argmax(projection))
    along = float(((hull[low] + hull[high]) / 2) @ axis)
    base = hull[j] + axis * (along - float(hull[j] @ axis))  # on the long axis, at that position
    base = base - normal * float(base @ normal)
    short = np.array([base + normal * projection[low], base + normal * projection[high]])
    return longest, float(projection[high] - projection[low]), np.array([hull[j], hull[i]]), short


def _to_rows_columns(points_xy: np.ndarray, pixel_yx: tuple[float, float]) -> tuple[Point, Point]:
    rows = points_xy[:, 1] / pixel_yx[0]
    columns = points_xy[:, 0] / pixel_yx[1]
    return ((float(rows[0]), float(columns[0])), (float(rows[1]), float(columns[1])))


def lesion_calipers(labels: np.ndarray, spacing: tuple[float, float, float] | None) -> tuple[Caliper, ...]:
    """Each lesion's caliper, numbered as ``measure`` numbers the lesions (largest first)."""
    pixel_yx = (spacing[1], spacing[2]) if spacing else (1.0, 1.0)
    calipers = []
    for lesion_id, (crop, offset) in enumerate(find_lesions(labels == Label.TUMOUR), start=1):
        best: tuple[float, float, np.ndarray, np.ndarray, int] | None = None
        for z in np.flatnonzero(crop.reshape(crop.shape[0], -1).any(axis=1)):
            longest, short, long_xy, short_xy = slice_axes(crop[z], pixel_yx)
            if best is None or longest > best[0]:
                best = (longest, short, long_xy, short_xy, int(z))
        assert best is not None  # a lesion has at least one voxel
        longest, short, long_xy, short_xy, z = best
        shift = np.array([offset[2], offset[1]]) * np.array([pixel_yx[1], pixel_yx[0]])
        contours, _ = cv2.findContours(crop[z].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        outline = tuple(
            tuple((float(y + offset[1]), float(x + offset[2])) for x, y in contour.reshape(-1, 2))
            for contour in contours
        )
        calipers.append(
            Caliper(
                lesion_id=lesion_id,
                slice_index=z + offset[0],
                long_axis=_to_rows_columns(long_xy + shift, pixel_yx),
                short_axis=_to_rows_columns(short_xy + shift, pixel_yx),
                long_length=round(longest, 3),
                short_length=round(short, 3),
                outline=outline,
            )
        )
    return tuple(calipers)
