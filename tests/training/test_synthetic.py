"""Synthetic tumours: where, how big, how dark and how soft-edged the painted lesions are."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from liverhealth.imaging.ircadb import load_ircadb_case
from training.synthetic import (
    CONTRAST_HU,
    SIZE_CLASSES,
    SMALL_CLEARANCE_MM,
    SMALL_SIZE_CLASSES,
    paint_lesions,
    sample_size,
)


@pytest.fixture(scope="module")
def liver_slab(data_root):
    """3Dircadb1.7 (no liver tumours) cut to 40 slices through the liver, to keep the test fast."""
    volume, labels = load_ircadb_case(data_root / "3Dircadb1.7")
    return volume.voxels[90:130].copy(), labels[90:130].copy(), volume.spacing


def test_size_distribution():
    rng = np.random.default_rng(0)
    draws = [sample_size(rng) for _ in range(4000)]
    for name, probability, (low, high) in SIZE_CLASSES:
        radii = [r for n, r in draws if n == name]
        assert len(radii) / len(draws) == pytest.approx(probability, abs=0.03)
        assert low <= min(radii) and max(radii) <= high


def test_painted_lesions_are_inside_darker_and_soft_edged(liver_slab):
    hu, labels, spacing = liver_slab
    painted_hu, painted_labels, lesions = paint_lesions(hu, labels, spacing, count=4, seed=7)
    assert lesions, "no lesion painted"
    tumour = painted_labels == 2
    assert int(tumour.sum()) == sum(lesion.voxels for lesion in lesions)
    assert not (tumour & (labels != 1)).any()  # only inside the liver
    assert np.array_equal(painted_labels[~tumour], labels[~tumour])  # nothing else relabelled
    parenchyma = float(np.median(hu[labels == 1]))
    lesion_hu = float(painted_hu[tumour].mean())
    assert CONTRAST_HU[0] - 5 < parenchyma - lesion_hu < 120, (parenchyma, lesion_hu)
    assert float(painted_hu[tumour].std()) > 5  # textured, not a flat fill
    changed = painted_hu != hu
    assert (changed & ~tumour).sum() > 0.1 * tumour.sum()  # blurred margins reach past the label
    far = np.ones_like(changed)
    for lesion in lesions:
        z, y, x = lesion.centre_zyx
        reach = [int(np.ceil(lesion.radius_mm * 2.5 / s)) for s in spacing]
        far[
            max(z - reach[0], 0) : z + reach[0],
            max(y - reach[1], 0) : y + reach[1],
            max(x - reach[2], 0) : x + reach[2],
        ] = False
    assert not changed[far].any()  # and stop near the lesion
    assert np.array_equal(hu, liver_slab[0])  # the input is not modified


def test_same_seed_same_lesions(liver_slab):
    hu, labels, spacing = liver_slab
    first = paint_lesions(hu, labels, spacing, count=2, seed=3)
    second = paint_lesions(hu, labels, spacing, count=2, seed=3)
    assert np.array_equal(first[0], second[0]) and first[2] == second[2]


@pytest.mark.slow
def test_peripheral_lesions_run_into_the_liver_edge_and_deep_ones_do_not(liver_slab):
    """Subcapsular lesions are cut off by the liver outline, as real ones are; deep ones mostly keep clear of it."""
    hu, labels, spacing = liver_slab
    liver = labels == 1
    outline = liver & ~ndimage.binary_erosion(liver, border_value=1)  # the slab's ends are no edge

    def touching(fraction: float) -> list[bool]:
        touches = []
        for seed in range(8):
            _, painted, lesions = paint_lesions(hu, labels, spacing, count=1, seed=seed, peripheral_fraction=fraction)
            if lesions:
                assert lesions[0].peripheral == (fraction == 1.0)
                touches.append(bool((painted == 2)[outline].any()))
        return touches

    edge, deep = touching(1.0), touching(0.0)
    assert len(edge) >= 6 and len(deep) >= 6
    assert sum(edge) >= len(edge) - 1, edge
    assert sum(deep) / len(deep) < sum(edge) / len(edge) - 0.3, (edge, deep)


def test_small_lesions_are_5_to_20_mm_and_clear_of_vessels_and_outline(liver_slab):
    """The small set: 5-20 mm across, none peripheral, no painted voxel next to a vessel or the outline."""
    hu, labels, spacing = liver_slab
    liver = labels == 1
    values = hu[liver].astype(np.float32)
    median = float(np.median(values))
    spread = float(np.percentile(values, 75) - np.percentile(values, 25))
    other = ~(liver & (np.abs(hu.astype(np.float32) - median) < 2.0 * spread))  # vessels, outline, outside
    distance = ndimage.distance_transform_edt(~other, sampling=spacing)
    low, high = SMALL_SIZE_CLASSES[0][2][0], SMALL_SIZE_CLASSES[-1][2][1]
    assert (2 * low, 2 * high) == (5.0, 20.0)
    painted_any = 0
    for seed in range(6):
        _, painted, lesions = paint_lesions(hu, labels, spacing, count=3, seed=seed, small=True)
        painted_any += len(lesions)
        for lesion in lesions:
            assert low <= lesion.radius_mm <= high and not lesion.peripheral
        tumour = painted == 2
        assert not (tumour & ~liver).any()
        if lesions:
            assert distance[tumour].min() >= SMALL_CLEARANCE_MM, distance[tumour].min()
    assert painted_any >= 6, painted_any
