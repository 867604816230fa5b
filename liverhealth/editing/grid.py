"""Where an edit lands: voxel indices of the CT's grid, checked, and world (RAS mm) points mapped to them.

Edits work in voxel indices ``(z, y, x)`` = (slice, row, column) of the CtVolume's arrays, so the
labels never leave the grid the pixels are on. A point in patient space reaches that grid through
the volume's affine, which maps (column, row, slice, 1) to RAS millimetres: its inverse takes a RAS
point back to fractional (column, row, slice), and the voxel is the nearest centre (index k covers
k - 0.5 .. k + 0.5). A raster without a pixel size has an affine in pixel units, so its "mm" are pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liverhealth.domain import CtVolume, Label
from liverhealth.errors import InputError
from liverhealth.imaging.geometry import index_to_ras

Index = tuple[int, int, int]


def _grid(shape: Sequence[int]) -> str:
    return " × ".join(str(int(n)) for n in shape)


def world_to_index(volume: CtVolume, ras_mm: Sequence[float]) -> Index:
    """The voxel (z, y, x) whose centre is nearest a RAS point (mm); refused outside the grid."""
    point = np.asarray(ras_mm, dtype=float)
    if point.shape != (3,) or not np.isfinite(point).all():
        raise InputError(f"A point in patient space needs three finite coordinates (R, A, S) in mm; got {ras_mm!r}.")
    column, row, slice_ = (np.linalg.inv(np.asarray(volume.affine, dtype=float)) @ np.append(point, 1.0))[:3]
    index = tuple(int(np.floor(value + 0.5)) for value in (slice_, row, column))
    if not all(0 <= i < n for i, n in zip(index, volume.shape, strict=True)):
        shown = ", ".join(f"{v:.1f}" for v in point)
        raise InputError(
            f"The point ({shown}) mm lies outside the CT (voxel z, y, x = {index} on a grid of "
            f"{_grid(volume.shape)}); click inside the image."
        )
    return index  # type: ignore[return-value]


def index_to_world(volume: CtVolume, index: Sequence[float]) -> tuple[float, float, float]:
    """The RAS position (mm) of a voxel index (z, y, x), fractional or whole."""
    return index_to_ras(volume.affine, tuple(float(v) for v in index))  # type: ignore[arg-type]


def check_labels(labels: np.ndarray) -> None:
    """Labels are a uint8 [z, y, x] map (a caller passing anything else has a bug)."""
    if not isinstance(labels, np.ndarray) or labels.ndim != 3 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a uint8 [z, y, x] array, got {getattr(labels, 'dtype', type(labels))}")


def check_volume(volume: CtVolume, labels: np.ndarray) -> None:
    """The labels lie on the volume's grid."""
    check_labels(labels)
    if labels.shape != volume.shape:
        raise ValueError(f"labels {labels.shape} do not lie on the CT's grid {volume.shape}")


def _whole(value: object) -> bool:
    """Whether a value is a whole number (3, 3.0, numpy's 3), not a bool or text."""
    if isinstance(value, bool | str | bytes):
        return False
    try:
        return float(value).is_integer()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def check_seed(shape: Sequence[int], seed: Sequence[int]) -> Index:
    """A click as whole voxel indices (z, y, x) inside the grid; refused otherwise."""
    values = tuple(seed) if isinstance(seed, Sequence | np.ndarray) else ()
    if len(values) != 3 or not all(_whole(v) for v in values):
        raise InputError(f"A click needs a whole voxel index (z, y, x); got {seed!r}.")
    index = tuple(int(v) for v in values)
    if not all(0 <= i < n for i, n in zip(index, shape, strict=True)):
        raise InputError(f"The click (z, y, x) = {index} lies outside the CT's grid of {_grid(shape)} voxels.")
    return index  # type: ignore[return-value]


def check_slice(shape: Sequence[int], slice_index: int) -> int:
    """An axial slice index inside the grid."""
    if not _whole(slice_index) or not 0 <= int(slice_index) < shape[0]:
        raise InputError(f"Slice {slice_index} does not exist; this CT has slices 0 to {shape[0] - 1}.")
    return int(slice_index)


def require_3d(shape: Sequence[int], what: str) -> None:
    """Refuse a single slice (a 2D raster) for an operation that works in 3D."""
    if shape[0] == 1:
        raise InputError(f"{what} needs a 3D CT; this is a single slice (a 2D image). Paint or erase on it instead.")


def check_label(label: int, allowed: Sequence[Label], what: str) -> Label:
    """A label value one of ``allowed``."""
    try:
        value = Label(int(label))
    except ValueError:
        value = None
    if value not in allowed:
        names = " or ".join(a.name.lower() for a in allowed)
        raise InputError(f"{what} works with {names}; got label {label!r}.")
    return value  # type: ignore[return-value]


def pixel_yx(spacing: Sequence[float] | None) -> tuple[float, float] | None:
    """In-plane pixel size (row, column) in mm, or None without a known spacing."""
    return (float(spacing[1]), float(spacing[2])) if spacing is not None else None


def voxel_mm(spacing: Sequence[float] | None) -> tuple[float, float, float]:
    """Voxel size (z, y, x) in mm, or 1 voxel per unit without a known spacing."""
    return tuple(float(s) for s in spacing) if spacing is not None else (1.0, 1.0, 1.0)  # type: ignore[return-value]


def box_around(shape: Sequence[int], centre: Index, radius_mm: float, spacing: Sequence[float] | None) -> tuple:
    """The index box (slices) holding a ball of ``radius_mm`` around ``centre``, clipped to the grid."""
    sizes = voxel_mm(spacing)
    return tuple(
        slice(max(c - int(np.ceil(radius_mm / s)), 0), min(c + int(np.ceil(radius_mm / s)) + 1, int(n)))
        for c, s, n in zip(centre, sizes, shape, strict=True)
    )
