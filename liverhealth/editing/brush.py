"""Paint and erase with a disc brush on one axial slice.

The brush radius is in mm through the in-plane pixel size, so a 5 mm brush is 5 mm on any scanner
(an ellipse in pixels when rows and columns differ); for a raster without a pixel size
(``spacing`` None) the radius is in pixels. The rules, so nothing is decided silently:

- paint(TUMOUR) makes every brushed voxel tumour, outside the liver too (the reader decides);
- paint(LIVER) makes brushed background liver and leaves tumour as it is (erase tumour for that);
- erase(TUMOUR) turns brushed tumour into liver (a liver tumour is part of the liver's outline);
- erase(LIVER) clears brushed liver and tumour to background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liverhealth.domain import Label
from liverhealth.editing.edit import EditKind, EditResult, make_result
from liverhealth.editing.grid import check_label, check_labels, check_seed, pixel_yx
from liverhealth.errors import InputError

_LABELS = (Label.LIVER, Label.TUMOUR)


def disc(
    shape_yx: tuple[int, int], centre: tuple[int, int], radius_mm: float, spacing: Sequence[float] | None
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The (rows, columns) box of a disc on a slice and its boolean mask on that box.

    A pixel is in the disc when its centre lies within ``radius_mm`` of the centre pixel's centre;
    the centre pixel always is."""
    size_y, size_x = pixel_yx(spacing) or (1.0, 1.0)
    reach_y, reach_x = int(np.floor(radius_mm / size_y)), int(np.floor(radius_mm / size_x))
    row, col = centre
    rows = slice(max(row - reach_y, 0), min(row + reach_y + 1, shape_yx[0]))
    cols = slice(max(col - reach_x, 0), min(col + reach_x + 1, shape_yx[1]))
    dy = (np.arange(rows.start, rows.stop) - row)[:, None] * size_y
    dx = (np.arange(cols.start, cols.stop) - col)[None, :] * size_x
    return (rows, cols), dy**2 + dx**2 <= radius_mm**2 + 1e-9


def _brush(
    labels: np.ndarray,
    spacing: Sequence[float] | None,
    slice_index: int,
    centre: Sequence[int],
    radius_mm: float,
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    check_labels(labels)
    if not _positive(radius_mm):
        unit = "mm" if spacing is not None else "pixels"
        raise InputError(f"The brush radius must be a positive number of {unit}; got {radius_mm!r}.")
    z, row, col = check_seed(labels.shape, (slice_index, *tuple(centre)))
    (rows, cols), mask = disc(labels.shape[1:], (row, col), float(radius_mm), spacing)  # type: ignore[arg-type]
    return (slice(z, z + 1), rows, cols), mask[None]


def _positive(value: object) -> bool:
    try:
        return not isinstance(value, bool) and bool(np.isfinite(float(value)) and float(value) > 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def paint(
    labels: np.ndarray,
    spacing: Sequence[float] | None,
    slice_index: int,
    centre: Sequence[int],
    radius_mm: float,
    label: int,
) -> EditResult:
    """Paint ``label`` (liver or tumour) with a disc of ``radius_mm`` around ``centre`` (row, col) on
    one axial slice; ``spacing`` (z, y, x) mm, or None for a raster (the radius is then in pixels)."""
    value = check_label(label, _LABELS, "Paint")
    box, mask = _brush(labels, spacing, slice_index, centre, radius_mm)
    after = labels.copy()
    region = after[box]
    if value == Label.TUMOUR:
        region[mask] = Label.TUMOUR
    else:
        region[mask & (region == Label.BACKGROUND)] = Label.LIVER
    parameters = {"slice": box[0].start, "centre": list(centre), "radius": radius_mm, "radius_unit": _unit(spacing)}
    return make_result(labels, after, EditKind.PAINT, {**parameters, "label": int(value)}, box)


def erase(
    labels: np.ndarray,
    spacing: Sequence[float] | None,
    slice_index: int,
    centre: Sequence[int],
    radius_mm: float,
    label: int,
) -> EditResult:
    """Erase with a disc on one axial slice: tumour becomes liver (``label`` TUMOUR), or liver and
    tumour become background (``label`` LIVER). Radius and spacing as for ``paint``."""
    value = check_label(label, _LABELS, "Erase")
    box, mask = _brush(labels, spacing, slice_index, centre, radius_mm)
    after = labels.copy()
    region = after[box]
    if value == Label.TUMOUR:
        region[mask & (region == Label.TUMOUR)] = Label.LIVER
    else:
        region[mask] = Label.BACKGROUND
    parameters = {"slice": box[0].start, "centre": list(centre), "radius": radius_mm, "radius_unit": _unit(spacing)}
    return make_result(labels, after, EditKind.ERASE, {**parameters, "label": int(value)}, box)


def _unit(spacing: Sequence[float] | None) -> str:
    return "mm" if spacing is not None else "px"
