"""Measurements against hand-computable shapes and the IRCADb ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import pdist

from liverhealth.analysis import dice, feret_diameters, iou, key_slice, measure
from liverhealth.domain import CtVolume, SourceInfo
from liverhealth.imaging.geometry import LPS_TO_RAS
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.imaging.raster import with_pixel_size


def _volume(shape, spacing, hu=40) -> CtVolume:
    affine = LPS_TO_RAS @ np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    return CtVolume(
        voxels=np.full(shape, hu, np.int16),
        spacing=spacing,
        affine=affine,
        is_hu=True,
        source=SourceInfo("test", "memory", "synthetic", shape[0]),
    )


def _ball(shape, spacing, centre_mm, radius_mm) -> np.ndarray:
    z, y, x = np.indices(shape, dtype=float)
    return (
        (z * spacing[0] - centre_mm[0]) ** 2
        + (y * spacing[1] - centre_mm[1]) ** 2
        + (x * spacing[2] - centre_mm[2]) ** 2
    ) <= radius_mm**2


def test_sphere_volume_and_diameter():
    spacing = (1.0, 0.5, 0.5)
    shape = (60, 120, 120)
    labels = np.zeros(shape, np.uint8)
    labels[5:55, 5:115, 5:115] = 1
    labels[_ball(shape, spacing, (30, 30, 30), 15)] = 2
    m = measure(_volume(shape, spacing), labels)
    assert len(m.lesions) == 1
    lesion = m.lesions[0]
    assert lesion.volume_ml == pytest.approx(4 / 3 * np.pi * 15**3 / 1000, rel=0.03)
    assert lesion.longest_diameter_mm == pytest.approx(30.0, abs=0.75)  # within 1.5 pixels
    assert lesion.perpendicular_diameter_mm == pytest.approx(30.0, abs=0.75)
    assert lesion.slice_range == (15, 45)
    assert lesion.largest_slice == 30
    assert lesion.mean_hu == pytest.approx(40)
    assert lesion.centroid_index == pytest.approx((30, 60, 60), abs=0.01)
    assert m.liver_volume_ml == pytest.approx(50 * 110 * 110 * 0.25 / 1000)
    assert m.tumour_burden_pct == pytest.approx(100 * m.tumour_voxels / m.liver_voxels)


def test_two_lesions_sorted_and_separated():
    spacing = (2.0, 1.0, 1.0)
    shape = (20, 80, 80)
    labels = np.zeros(shape, np.uint8)
    labels[:, 5:75, 5:75] = 1
    labels[_ball(shape, spacing, (20, 20, 20), 6)] = 2
    labels[_ball(shape, spacing, (20, 55, 55), 12)] = 2
    m = measure(_volume(shape, spacing), labels)
    assert [lesion.lesion_id for lesion in m.lesions] == [1, 2]
    assert m.lesions[0].volume_ml > m.lesions[1].volume_ml
    assert m.lesions[0].longest_diameter_mm == pytest.approx(24, abs=1.5)
    assert m.lesions[1].longest_diameter_mm == pytest.approx(12, abs=1.5)
    assert m.lesions[0].centroid_index[1] == pytest.approx(55, abs=0.5)


def test_disc_in_2d_pixels_and_mm():
    yy, xx = np.mgrid[:200, :200]
    disc = ((yy - 100) ** 2 + (xx - 100) ** 2) <= 40**2
    longest, perpendicular = feret_diameters(disc)
    assert longest == pytest.approx(81, abs=1.0) and perpendicular == pytest.approx(81, abs=1.0)
    assert feret_diameters(disc, (0.5, 0.5))[0] == pytest.approx(40.5, abs=0.5)
    ellipse = ((yy - 100) / 20.0) ** 2 + ((xx - 100) / 60.0) ** 2 <= 1
    longest, perpendicular = feret_diameters(ellipse)
    assert longest == pytest.approx(121, abs=1.5) and perpendicular == pytest.approx(41, abs=1.5)
    labels = np.zeros((1, 200, 200), np.uint8)
    labels[0][disc] = 2
    raster = CtVolume(
        voxels=np.zeros((1, 200, 200), np.uint8),
        spacing=None,
        affine=np.eye(4),
        is_hu=False,
        source=SourceInfo("raster", "memory", "png", 1),
    )
    m = measure(raster, labels)
    assert m.liver_volume_ml is None and m.liver_area_mm2 is None
    assert m.lesions[0].largest_area_px == int(disc.sum())
    assert m.lesions[0].longest_diameter_mm is None and m.lesions[0].mean_hu is None
    with_size = with_pixel_size(raster, 0.5)
    m = measure(with_size, labels)
    assert m.tumour_area_mm2 == pytest.approx(disc.sum() * 0.25)
    assert m.lesions[0].volume_ml is None


def _brute_force_diameter(mask_2d, pixel_mm):
    """Largest distance between any two corners of the boundary pixels (no convex hull)."""
    boundary = mask_2d & ~ndimage.binary_erosion(mask_2d)
    ys, xs = np.nonzero(boundary)
    corners = np.concatenate([np.stack([ys + dy, xs + dx], 1) for dy in (-0.5, 0.5) for dx in (-0.5, 0.5)])
    return float(pdist(corners * pixel_mm).max())


def test_ircadb1_ground_truth(data_root, ircadb1, ircadb1_masks):
    labels = ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)
    m = measure(ircadb1, labels)
    assert m.liver_volume_ml == pytest.approx(1489.4, abs=0.1)
    assert m.tumour_volume_ml == pytest.approx(111.4, abs=0.1)
    assert [round(lesion.volume_ml, 2) for lesion in m.lesions] == [84.39, 10.10, 7.52, 3.74, 2.72, 2.53, 0.40]
    by_size = sorted(ircadb1_masks["tumours"], key=lambda t: -int(t.sum()))
    for lesion, mask in zip(m.lesions, by_size, strict=True):
        assert lesion.voxel_count == int(mask.sum())
        slices = np.flatnonzero(mask.any(axis=(1, 2)))
        assert lesion.slice_range == (slices[0], slices[-1])
        expected = max(_brute_force_diameter(mask[z], 0.57) for z in slices)
        assert lesion.longest_diameter_mm == pytest.approx(expected, abs=0.01)
        assert lesion.perpendicular_diameter_mm <= lesion.longest_diameter_mm
        assert -50 < lesion.mean_hu < 200
    assert key_slice(labels) == m.lesions[0].largest_slice


def test_overlap_metrics():
    a = np.zeros(10, bool)
    b = np.zeros(10, bool)
    a[:4] = True
    b[2:6] = True
    assert dice(a, b) == pytest.approx(0.5)
    assert iou(a, b) == pytest.approx(2 / 6)
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_confusion_metrics_by_hand():
    from liverhealth.analysis.metrics import class_metrics, cohen_kappa, confusion_matrix, segmentation_report

    reference = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    prediction = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 0])
    confusion = confusion_matrix(prediction, reference)
    assert confusion.tolist() == [[3, 1, 0], [0, 3, 1], [1, 0, 1]]
    per_class = class_metrics(confusion)
    assert per_class["dice"] == pytest.approx([6 / 8, 6 / 8, 2 / 4])
    assert per_class["iou"] == pytest.approx([3 / 5, 3 / 5, 1 / 3])
    assert per_class["accuracy"] == pytest.approx([3 / 4, 3 / 4, 1 / 2])
    # p_o = 7/10; p_e = (4*4 + 4*4 + 2*2) / 100 = 0.36; kappa = 0.34 / 0.64
    assert cohen_kappa(confusion) == pytest.approx(0.34 / 0.64)
    report = segmentation_report(prediction, reference)
    assert report["accuracy"] == pytest.approx(0.7)
    assert report["liver_dice"] == pytest.approx(2 * 5 / (6 + 6))  # organ = labels 1 or 2
    assert report["miou"] == pytest.approx((3 / 5 + 3 / 5 + 1 / 3) / 3)
