"""Post-processing rules on hand-made label maps."""

from __future__ import annotations

import numpy as np

from liverhealth.inference import PostprocessOptions, postprocess

SPACING = (2.0, 1.0, 1.0)


def _base() -> np.ndarray:
    labels = np.zeros((10, 64, 64), np.uint8)
    labels[2:8, 10:40, 10:40] = 1  # the liver
    return labels


def test_keeps_the_largest_liver_component():
    labels = _base()
    labels[2:4, 50:55, 50:55] = 1  # a detached blob (spleen mistaken for liver)
    out = postprocess(labels, SPACING)
    assert out[2, 52, 52] == 0 and out[5, 20, 20] == 1


def test_fills_holes_slice_by_slice():
    labels = _base()
    labels[2:8, 20:25, 20:25] = 0  # a vessel-shaped hole through every slice
    out = postprocess(labels, SPACING)
    assert (out[2:8, 20:25, 20:25] == 1).all()


def test_tumour_only_inside_the_dilated_liver():
    labels = _base()
    labels[4:7, 15:25, 15:25] = 2  # inside
    labels[4:7, 41:43, 20:26] = 2  # touching the edge: kept (within the margin)
    labels[4:7, 55:62, 55:62] = 2  # far outside: dropped
    out = postprocess(labels, SPACING, PostprocessOptions(liver_margin_mm=3.0))
    assert (out[4:7, 15:25, 15:25] == 2).all()
    assert (out[4:7, 41:43, 20:26] == 2).all()
    assert not out[4:7, 55:62, 55:62].any()


def test_small_lesions_become_liver():
    labels = _base()
    labels[5, 30:32, 30:32] = 2  # 4 voxels × 2 mm³ = 8 mm³ < 20 mm³
    labels[3:6, 12:18, 12:18] = 2  # 108 voxels = 216 mm³
    out = postprocess(labels, SPACING)
    assert (out[5, 30:32, 30:32] == 1).all()
    assert (out[3:6, 12:18, 12:18] == 2).all()


def test_empty_and_single_slice():
    assert not postprocess(np.zeros((3, 8, 8), np.uint8), SPACING).any()
    one = np.zeros((1, 64, 64), np.uint8)
    one[0, 10:50, 10:50] = 1
    one[0, 20:22, 20:22] = 2  # 4 px, below the default 10 px
    one[0, 30:40, 30:40] = 2
    out = postprocess(one, None)
    assert out[0, 21, 21] == 1 and out[0, 35, 35] == 2


def test_hole_filling_and_speck_removal_agree_with_scipy_on_real_masks(ircadb1_masks):
    """The flood-fill hole filling and the boxed speck removal give scipy's own answers on
    3D-IRCADb-01 patient 1's expert masks (the liver with its lesions cut out, and the lesions)."""
    from scipy import ndimage

    from liverhealth.inference.postprocess import FULL_3D, drop_small_components, fill_holes_per_slice

    liver = ircadb1_masks["liver"] & ~ircadb1_masks["tumour"]
    expected = np.stack([ndimage.binary_fill_holes(plane) for plane in liver])
    filled = fill_holes_per_slice(liver)
    assert filled.sum() > liver.sum()  # lesions inside the liver are holes in it
    assert np.array_equal(filled, expected)
    lesions = ircadb1_masks["tumour"]
    components, count = ndimage.label(lesions, structure=FULL_3D)
    sizes = np.bincount(components.ravel())
    threshold = int(np.median(sizes[1:])) + 1
    keep = sizes >= threshold
    keep[0] = False
    assert 0 < keep.sum() < count  # some lesions kept, some dropped
    assert np.array_equal(drop_small_components(lesions, threshold), keep[components])
