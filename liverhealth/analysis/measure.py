"""Measurements from a label map: liver volume, tumour burden, and each lesion.

Lesions are 3D 26-connected tumour components. The longest axial diameter follows RECIST
1.1: on each slice the lesion crosses, the longest in-plane diameter (the maximum Feret
diameter of the pixel squares, in mm with the pixel spacing), the longest over the slices.
The perpendicular diameter is the lesion's extent at right angles to it on that slice.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from scipy import ndimage

from liverhealth.analysis.confidence import ConfidenceFlags, is_unsure, lesion_confidence, surface_confidence
from liverhealth.domain import CtVolume, Label, Lesion, Measurements
from liverhealth.imaging.geometry import index_to_ras
from liverhealth.inference.lesion_filter import mask_components

FULL_3D = ndimage.generate_binary_structure(3, 3)
_CORNERS = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])


def feret_diameters(mask_2d: np.ndarray, pixel_yx: tuple[float, float] = (1.0, 1.0)) -> tuple[float, float]:
    """Longest diameter of a 2D mask and its extent perpendicular to it, in the units of ``pixel_yx``.

    Measured on the convex hull of the pixel squares (corners), so a single pixel measures
    its diagonal and a disc of diameter d pixels measures about d.
    """
    mask = np.ascontiguousarray(mask_2d, dtype=np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 0.0, 0.0
    centres = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)  # (x, y)
    corners = (centres[:, None, :] + _CORNERS[None, :, :]).reshape(-1, 2)
    points = corners * np.array([pixel_yx[1], pixel_yx[0]])
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    deltas = hull[:, None, :] - hull[None, :, :]
    lengths = np.hypot(deltas[..., 0], deltas[..., 1])
    i, j = np.unravel_index(int(np.argmax(lengths)), lengths.shape)
    longest = float(lengths[i, j])
    if longest == 0:
        return 0.0, 0.0
    axis = deltas[i, j] / longest
    normal = np.array([-axis[1], axis[0]])
    projection = hull @ normal
    return longest, float(projection.max() - projection.min())


def _lesion_diameters(component: np.ndarray, pixel_yx: tuple[float, float]) -> tuple[float, float, float]:
    """Longest in-plane diameter over a lesion's slices and the perpendicular extent on that
    slice (in ``pixel_yx`` units), plus the longest diameter in pixels."""
    longest, perpendicular, longest_px = 0.0, 0.0, 0.0
    for z in np.flatnonzero(component.reshape(component.shape[0], -1).any(axis=1)):
        slice_longest, slice_perpendicular = feret_diameters(component[z], pixel_yx)
        if slice_longest > longest:
            longest, perpendicular = slice_longest, slice_perpendicular
        longest_px = max(longest_px, feret_diameters(component[z])[0])
    return longest, perpendicular, longest_px


def measure_lesion(volume: CtVolume, lesion_id: int, component: np.ndarray, offset: tuple[int, int, int]) -> Lesion:
    """Measure one lesion given its boolean mask cropped to its bounding box at ``offset``."""
    spacing = volume.spacing
    voxel_count = int(component.sum())
    pixel_yx = (spacing[1], spacing[2]) if spacing else (1.0, 1.0)
    longest, perpendicular, longest_px = _lesion_diameters(component, pixel_yx)
    zs, ys, xs = np.nonzero(component)
    centroid = (float(zs.mean() + offset[0]), float(ys.mean() + offset[1]), float(xs.mean() + offset[2]))
    areas = component.reshape(component.shape[0], -1).sum(axis=1)
    largest_z = int(np.argmax(areas))
    largest_area = int(areas[largest_z])
    box = tuple(slice(o, o + n) for o, n in zip(offset, component.shape, strict=True))
    mean_hu = float(volume.voxels[box][component].mean()) if volume.is_hu else None
    voxel_mm3 = volume.voxel_mm3
    return Lesion(
        lesion_id=lesion_id,
        voxel_count=voxel_count,
        volume_ml=voxel_count * voxel_mm3 / 1000.0 if voxel_mm3 else None,
        largest_slice=int(largest_z + offset[0]),
        slice_range=(int(zs.min() + offset[0]), int(zs.max() + offset[0])),
        largest_area_px=largest_area,
        largest_area_mm2=largest_area * spacing[1] * spacing[2] if spacing else None,
        longest_diameter_px=round(longest_px, 3),
        longest_diameter_mm=round(longest, 3) if spacing else None,
        perpendicular_diameter_mm=round(perpendicular, 3) if spacing else None,
        centroid_index=centroid,
        centroid_mm=index_to_ras(volume.affine, centroid) if spacing else None,
        mean_hu=mean_hu,
    )


def find_lesions(tumour: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """26-connected tumour components as (cropped mask, offset), largest first."""
    return mask_components(tumour)


def measure(
    volume: CtVolume,
    labels: np.ndarray,
    confidence: np.ndarray | None = None,
    flags: ConfidenceFlags | None = None,
    reader_drawn: np.ndarray | None = None,
) -> Measurements:
    """All measurements for a label map on ``volume``'s grid; with the model's per-voxel
    ``confidence``, each lesion's and the liver's confidence, flagged by the model's calibrated
    ``flags`` when it has them. ``reader_drawn`` marks voxels a reader edited: they count as
    certain, and a lesion touching them is marked edited and never "check first"."""
    if labels.shape != volume.voxels.shape:
        raise ValueError(f"labels {labels.shape} do not match the volume {volume.voxels.shape}")
    if confidence is not None and confidence.shape != labels.shape:
        raise ValueError(f"confidence {confidence.shape} does not match the labels {labels.shape}")
    if reader_drawn is not None and reader_drawn.shape != labels.shape:
        raise ValueError(f"reader_drawn {reader_drawn.shape} does not match the labels {labels.shape}")
    if reader_drawn is not None and not reader_drawn.any():
        reader_drawn = None
    if confidence is not None and reader_drawn is not None:
        confidence = np.where(reader_drawn, np.uint8(100), confidence)
    flags = flags or ConfidenceFlags()
    spacing = volume.spacing
    is_2d = volume.voxels.shape[0] == 1
    tumour = labels == Label.TUMOUR
    liver_voxels = int(np.count_nonzero((labels == Label.LIVER) | tumour))
    tumour_voxels = int(np.count_nonzero(tumour))
    voxel_ml = volume.voxel_mm3 / 1000.0 if volume.voxel_mm3 else None
    pixel_mm2 = spacing[1] * spacing[2] if spacing and is_2d else None
    found = find_lesions(tumour)
    lesions = tuple(measure_lesion(volume, i, crop, offset) for i, (crop, offset) in enumerate(found, start=1))
    if reader_drawn is not None:
        lesions = tuple(
            replace(lesion, edited=_touches(reader_drawn, crop, offset))
            for lesion, (crop, offset) in zip(lesions, found, strict=True)
        )
    liver_confidence = None
    if confidence is not None:
        rated = []
        for lesion, (crop, offset) in zip(lesions, found, strict=True):
            value = lesion_confidence(confidence, crop, offset, spacing)
            unsure = False if lesion.edited else is_unsure(value, flags.lesion_below)
            rated.append(replace(lesion, confidence=value, unsure=unsure))
        lesions = tuple(rated)
        liver_confidence = surface_confidence(confidence, labels > 0, spacing)
    return Measurements(
        is_2d=is_2d,
        spacing=spacing,
        liver_voxels=liver_voxels,
        tumour_voxels=tumour_voxels,
        liver_volume_ml=liver_voxels * voxel_ml if voxel_ml else None,
        tumour_volume_ml=tumour_voxels * voxel_ml if voxel_ml else None,
        liver_area_mm2=liver_voxels * pixel_mm2 if pixel_mm2 else None,
        tumour_area_mm2=tumour_voxels * pixel_mm2 if pixel_mm2 else None,
        tumour_burden_pct=100.0 * tumour_voxels / liver_voxels if liver_voxels else 0.0,
        lesions=lesions,
        liver_confidence=liver_confidence,
        liver_unsure=is_unsure(liver_confidence, flags.liver_below),
    )


def _touches(mask: np.ndarray, component: np.ndarray, offset: tuple[int, int, int]) -> bool:
    """Whether ``mask`` has a voxel in or next to the component (cropped at ``offset``): an erased
    rim no longer belongs to the lesion but was still an edit of it."""
    box = tuple(
        slice(max(o - 1, 0), min(o + n + 1, size))
        for o, n, size in zip(offset, component.shape, mask.shape, strict=True)
    )
    grown = np.zeros(tuple(b.stop - b.start for b in box), dtype=bool)
    grown[tuple(slice(o - b.start, o - b.start + n) for o, b, n in zip(offset, box, component.shape, strict=True))] = (
        component
    )
    return bool(mask[box][ndimage.binary_dilation(grown, structure=FULL_3D)].any())


def key_slice(labels: np.ndarray) -> int:
    """The slice with the largest tumour area, else the largest liver area, else the middle."""
    flat = labels.reshape(labels.shape[0], -1)
    tumour_area = np.count_nonzero(flat == Label.TUMOUR, axis=1)
    if tumour_area.any():
        return int(np.argmax(tumour_area))
    liver_area = np.count_nonzero(flat > 0, axis=1)
    return int(np.argmax(liver_area)) if liver_area.any() else labels.shape[0] // 2
