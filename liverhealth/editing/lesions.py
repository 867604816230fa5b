"""Lesion-level edits from one click: remove a lesion, or relabel a region liver <-> tumour.

A lesion is a 26-connected tumour component, the connectivity ``analysis.measure.find_lesions``
counts lesions with, so what the reader removes is what the report listed as one lesion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from liverhealth.analysis.measure import FULL_3D
from liverhealth.domain import CtVolume, Label
from liverhealth.editing.edit import EditKind, EditResult, make_result
from liverhealth.editing.grid import Index, box_around, check_label, check_labels, check_seed, require_3d, voxel_mm
from liverhealth.editing.grow import GrowOptions, grow_region
from liverhealth.errors import InputError
from liverhealth.imaging.geometry import bounding_box

REMOVE_WITHIN_MM = 10.0


def lesion_at(
    labels: np.ndarray, seed: Index, spacing: Sequence[float] | None, within_mm: float
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The lesion holding ``seed`` or, when the click is beside one, the lesion nearest it within
    ``within_mm`` (voxels without a spacing): its bounding box and mask on the box."""
    sizes = voxel_mm(spacing)
    if labels[seed] != Label.TUMOUR:
        near = box_around(labels.shape, seed, within_mm, spacing)
        points = np.argwhere(labels[near] == Label.TUMOUR)
        if not len(points):
            raise InputError(f"There is no lesion at the click (z, y, x) = {seed} or within {within_mm:g} mm of it.")
        offset = np.array([s.start for s in near])
        distances = np.sqrt((((points + offset - np.asarray(seed)) * np.asarray(sizes)) ** 2).sum(axis=1))
        if distances.min() > within_mm:
            raise InputError(f"There is no lesion at the click (z, y, x) = {seed} or within {within_mm:g} mm of it.")
        seed = tuple(int(v) for v in points[int(np.argmin(distances))] + offset)  # type: ignore[assignment]
    tumour = labels == Label.TUMOUR
    box = bounding_box(tumour)
    components, _ = ndimage.label(tumour[box], structure=FULL_3D)
    lesion = components == components[tuple(s - b.start for s, b in zip(seed, box, strict=True))]
    inner = bounding_box(lesion)
    full = tuple(slice(b.start + i.start, b.start + i.stop) for b, i in zip(box, inner, strict=True))
    return full, lesion[inner]  # type: ignore[return-value]


def remove_lesion(
    labels: np.ndarray, seed: Sequence[int], spacing: Sequence[float] | None = None, within_mm: float = REMOVE_WITHIN_MM
) -> EditResult:
    """The lesion at (or nearest within ``within_mm`` of) the click (z, y, x) becomes liver: a false
    positive taken away, the liver outline kept."""
    check_labels(labels)
    seed = check_seed(labels.shape, seed)
    box, lesion = lesion_at(labels, seed, spacing, within_mm)
    after = labels.copy()
    after[box][lesion] = Label.LIVER
    parameters = {"seed": list(seed), "within_mm": within_mm}
    return make_result(labels, after, EditKind.REMOVE_LESION, parameters, box)


def relabel_lesion(
    labels: np.ndarray,
    seed: Sequence[int],
    to: int,
    volume: CtVolume | None = None,
    grow: GrowOptions | None = None,
) -> EditResult:
    """Relabel the clicked region: ``to`` LIVER turns the tumour component under the click into liver
    (a cyst or a vessel the model called tumour); ``to`` TUMOUR turns the liver region of similar
    density connected to the click into tumour (grown inside the liver label only; needs ``volume``)."""
    check_labels(labels)
    target = check_label(to, (Label.LIVER, Label.TUMOUR), "Relabel")
    seed = check_seed(labels.shape, seed)
    if target == Label.LIVER:
        if labels[seed] != Label.TUMOUR:
            raise InputError(f"The click (z, y, x) = {seed} is not on a lesion; click on the tumour to relabel it.")
        box, region = lesion_at(labels, seed, None, 0.0)
    else:
        if volume is None:
            raise InputError("Relabelling liver as tumour needs the CT itself (its densities); none was given.")
        require_3d(labels.shape, "Relabelling a region as tumour")
        if labels[seed] != Label.LIVER:
            raise InputError(f"The click (z, y, x) = {seed} is not on the liver; click on the region to relabel.")
        box, region = grow_region(volume, labels, seed, grow, liver_only=True)
    after = labels.copy()
    after[box][region] = target
    parameters = {"seed": list(seed), "to": int(target)}
    if target == Label.TUMOUR:
        parameters["grow"] = (grow or GrowOptions()).to_dict()
    return make_result(labels, after, EditKind.RELABEL_LESION, parameters, box, relabelled=1)
