"""Affines between voxel indices and patient space.

Affines follow the NIfTI convention: a 4x4 matrix mapping (column, row, slice) indices to
RAS millimetres. DICOM and NRRD describe geometry in LPS; ``LPS_TO_RAS`` converts.
"""

from __future__ import annotations

import numpy as np
from nibabel import orientations

from liverhealth.errors import InputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
TARGET_AXCODES = ("L", "P", "S")


def check_affine(affine: np.ndarray, where: str) -> None:
    """Refuse geometry that cannot be trusted: NaN/infinite entries, a zero-length or degenerate
    (singular) voxel axis. Called by every reader before any pixel work."""
    matrix = np.asarray(affine, dtype=float)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise InputError(
            f"{where} has no valid geometry (NaN or infinite values in its orientation or "
            "spacing). Export the scan again from the scanner or PACS."
        )
    lengths = np.linalg.norm(matrix[:3, :3], axis=0)
    if lengths.min() <= 1e-6 or abs(np.linalg.det(matrix[:3, :3])) <= 1e-6 * float(np.prod(lengths)):
        raise InputError(
            f"{where} has degenerate geometry (a voxel size of 0 or axes that do not span 3D: "
            f"voxel axis lengths {', '.join(f'{v:g}' for v in lengths)} mm). Export the scan again."
        )


def reorient(data_xyz: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorient an [x, y, z] array and its RAS affine to L, P, S (axial, as DICOM's usual layout);
    return [z, y, x] and the new affine. Axes are only permuted and flipped, never resampled."""
    current = orientations.io_orientation(affine)
    transform = orientations.ornt_transform(current, orientations.axcodes2ornt(TARGET_AXCODES))
    data = orientations.apply_orientation(data_xyz, transform)
    new_affine = affine @ orientations.inv_ornt_aff(transform, data_xyz.shape[:3])
    return np.ascontiguousarray(data.transpose(2, 1, 0)), new_affine


def dicom_affine(
    first_position: np.ndarray,
    orientation: np.ndarray,
    pixel_spacing: tuple[float, float],
    slice_step: np.ndarray,
) -> np.ndarray:
    """RAS affine of a DICOM series from its first slice's geometry.

    ``orientation`` is ImageOrientationPatient (row direction, then column direction),
    ``pixel_spacing`` is PixelSpacing (between rows, between columns) and ``slice_step``
    the LPS vector from one slice's position to the next.
    """
    row_dir = np.asarray(orientation[:3], dtype=float)
    col_dir = np.asarray(orientation[3:6], dtype=float)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * float(pixel_spacing[1])
    lps[:3, 1] = col_dir * float(pixel_spacing[0])
    lps[:3, 2] = np.asarray(slice_step, dtype=float)
    lps[:3, 3] = np.asarray(first_position, dtype=float)
    return LPS_TO_RAS @ lps


def index_to_ras(affine: np.ndarray, zyx: tuple[float, float, float]) -> tuple[float, float, float]:
    """Patient RAS position (mm) of a fractional voxel index given as (z, y, x)."""
    z, y, x = zyx
    point = np.asarray(affine) @ np.array([x, y, z, 1.0])
    return (float(point[0]), float(point[1]), float(point[2]))


def bounding_box(mask: np.ndarray, pad: tuple[int, ...] | None = None) -> tuple[slice, ...]:
    """Slices of the smallest box holding every True voxel of a non-empty mask, padded and
    clipped to the array."""
    pad = pad or (0,) * mask.ndim
    box = []
    for axis, (margin, length) in enumerate(zip(pad, mask.shape, strict=True)):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        present = np.flatnonzero(mask.any(axis=others))
        box.append(slice(max(int(present[0]) - margin, 0), min(int(present[-1]) + margin + 1, length)))
    return tuple(box)
