"""Fill the slices between two drawn slices by shape-based interpolation.

Each of the two outlines becomes a signed distance map (negative inside, in mm through the pixel
size, or pixels without one); on a slice a fraction t of the way from one to the other, what has
(1 - t) * d_a + t * d_b < 0 is inside. Two outlines of one lesion morph into each other. An outline
inside neither drawn one never appears, so a lesion that moves sideways by more than its width
between the two slices interpolates to nothing in the middle: draw a slice in between.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from liverhealth.domain import Label
from liverhealth.editing.edit import EditKind, EditResult, make_result
from liverhealth.editing.grid import check_label, check_labels, check_slice, pixel_yx, require_3d
from liverhealth.errors import InputError
from liverhealth.imaging.geometry import bounding_box


def signed_distance(mask: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    """Signed distance of a 2D mask: negative inside (to the nearest outside pixel), positive outside."""
    return ndimage.distance_transform_edt(~mask, sampling=sampling) - ndimage.distance_transform_edt(
        mask, sampling=sampling
    )


def _outline(labels: np.ndarray, z: int, label: Label) -> np.ndarray:
    return labels[z] == Label.TUMOUR if label == Label.TUMOUR else labels[z] > 0


def fill_between_slices(
    labels: np.ndarray, label: int, slice_a: int, slice_b: int, spacing: Sequence[float] | None = None
) -> EditResult:
    """Interpolate ``label``'s outline on slices ``slice_a`` and ``slice_b`` onto the slices between.

    The fill only adds: tumour fills become tumour; liver fills (the liver outline, liver and tumour
    together) turn background into liver and leave tumour as it is. Nothing outside the
    interpolated shapes is cleared."""
    check_labels(labels)
    require_3d(labels.shape, "Filling between slices")
    value = check_label(label, (Label.LIVER, Label.TUMOUR), "Fill between slices")
    a, b = sorted((check_slice(labels.shape, slice_a), check_slice(labels.shape, slice_b)))
    if b - a < 2:
        raise InputError(f"Slices {a} and {b} have no slice between them; choose two slices further apart.")
    first, last = _outline(labels, a, value), _outline(labels, b, value)
    for z, mask in ((a, first), (b, last)):
        if not mask.any():
            raise InputError(f"Slice {z} has no {value.name.lower()} outlined; draw it on both slices first.")
    rows, cols = bounding_box(first | last, (1, 1))
    sampling = pixel_yx(spacing) or (1.0, 1.0)
    near, far = signed_distance(first[rows, cols], sampling), signed_distance(last[rows, cols], sampling)
    after = labels.copy()
    for z in range(a + 1, b):
        t = (z - a) / (b - a)
        inside = (1.0 - t) * near + t * far < 0
        region = after[z, rows, cols]
        if value == Label.TUMOUR:
            region[inside] = Label.TUMOUR
        else:
            region[inside & (region == Label.BACKGROUND)] = Label.LIVER
    parameters = {"label": int(value), "slice_a": a, "slice_b": b}
    return make_result(labels, after, EditKind.FILL_BETWEEN_SLICES, parameters, (slice(a + 1, b), rows, cols))
