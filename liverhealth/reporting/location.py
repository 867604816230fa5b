"""Where a lesion lies, for the report: the slice its RECIST diameters were measured on and the side
of the liver by a simple, stated rule (``presentation.SIDE_RULE``), marked approximate.

The rule: the lesion's centre (its column) is compared, on that slice, with the middle of the liver's
extent along the image row; the affine says which way along the row is the patient's right. It is not
Cantlie's line (the lobes' boundary), which a segmentation of the whole liver does not show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liverhealth.analysis.caliper import Caliper
from liverhealth.domain import Label, Lesion

_SIDE_SUFFIX = " side of the liver (approximate)"


@dataclass(frozen=True)
class LesionPlace:
    """Lesion ``lesion_id``: the 0-based index of the slice it was measured on, the slice count, and
    "right"/"left" ("" where the image axes do not say which way is right)."""

    lesion_id: int
    measured_slice: int
    slice_count: int
    side: str = ""

    @property
    def side_text(self) -> str:
        return f"{self.side}{_SIDE_SUFFIX}" if self.side else ""


def liver_side(liver_2d: np.ndarray, lesion_column: float, affine: np.ndarray, near_zero: float = 0.5) -> str:
    """'right' or 'left': the patient's side of the liver's middle (along the row) the lesion lies on;
    '' when the slice holds no liver or the image rows do not run mainly left-right."""
    columns = np.flatnonzero(np.asarray(liver_2d).any(axis=0))
    column_axis = np.asarray(affine, dtype=float)[:3, 0]
    length = float(np.linalg.norm(column_axis))
    if columns.size == 0 or length == 0 or abs(column_axis[0]) < near_zero * length:
        return ""
    middle = (columns[0] + columns[-1]) / 2
    towards_right = (lesion_column - middle) * column_axis[0]  # RAS: +x is the patient's right
    return "right" if towards_right >= 0 else "left"


def lesion_places(
    labels: np.ndarray, affine: np.ndarray, lesions: tuple[Lesion, ...], calipers: tuple[Caliper, ...]
) -> dict[int, LesionPlace]:
    """Each lesion's place, keyed by lesion id (``calipers`` numbered as the lesions)."""
    by_id = {caliper.lesion_id: caliper for caliper in calipers}
    places = {}
    for lesion in lesions:
        caliper = by_id.get(lesion.lesion_id)
        if caliper is None:
            continue
        z = caliper.slice_index
        side = liver_side(labels[z] != Label.BACKGROUND, lesion.centroid_index[2], affine)
        places[lesion.lesion_id] = LesionPlace(lesion.lesion_id, z, int(labels.shape[0]), side)
    return places
