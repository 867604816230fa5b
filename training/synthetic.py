"""Synthetic liver tumours painted into healthy liver (after Hu et al., "Label-free liver
tumor segmentation", CVPR 2023).

Only one of our labelled cases has liver tumours, so the models learn tumours mostly from
lesions painted here. Each lesion follows the recipe of the paper:

- **location**: a random point of liver parenchyma, away from contrast-filled vessels
  (voxels much brighter than the parenchyma); most lesions lie deep in the liver, a share
  (``PERIPHERAL_FRACTION``) at its edge, where the liver outline cuts them off as it cuts
  off real subcapsular tumours (3Dircadb1.1's largest, 84 mL, is one);
- **size**: one of four classes (tiny, small, medium, large) with radii in mm;
- **shape**: an ellipsoid with random axes and orientation, deformed by a smooth random
  displacement field, so margins are lobulated rather than perfectly round;
- **texture and contrast**: a random field mixing fine grain and coarse mottling (large
  real tumours are heterogeneous: 3Dircadb1.1's spread 47–110 HU from 10th to 90th
  percentile) around a mean 15–70 HU below the parenchyma (hypodense, as most metastases
  and HCC in the portal phase), with a darker core for larger lesions;
- **margins**: the mask is blurred and used as an alpha map, so the lesion fades into the
  parenchyma instead of having a cut-out edge.

Lesions are painted only inside the liver; the returned label map marks them as tumour.

``SMALL_SIZE_CLASSES`` is the small-lesion set (issue 29, step 7): 5–20 mm across, never at the
edge, the whole lesion plus ``SMALL_CLEARANCE_MM`` inside parenchyma (so away from vessels),
painted only on livers without a tumour label (``preprocess --small-synthetic-copies``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from liverhealth.domain import Label
from liverhealth.imaging.geometry import bounding_box

# (name, probability, radius range in mm)
SIZE_CLASSES: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("tiny", 0.15, (3.0, 5.0)),
    ("small", 0.35, (5.0, 10.0)),
    ("medium", 0.30, (10.0, 20.0)),
    ("large", 0.20, (20.0, 35.0)),
)
# Small lesions: diameters 5-10 mm and 10-20 mm, as radii.
SMALL_SIZE_CLASSES: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("small5-10", 0.5, (2.5, 5.0)),
    ("small10-20", 0.5, (5.0, 10.0)),
)
SMALL_CLEARANCE_MM = 2.0
PERIPHERAL_FRACTION = 0.35
CONTRAST_HU = (15.0, 70.0)
EDGE_DEPTH_MM = 2.0


@dataclass(frozen=True)
class SyntheticLesion:
    """What was painted: for tests and the preview images."""

    centre_zyx: tuple[int, int, int]
    radius_mm: float
    size_class: str
    contrast_hu: float
    voxels: int
    peripheral: bool


def _parenchyma(hu: np.ndarray, liver: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Median and spread of liver HU, and the mask of liver voxels that look like parenchyma."""
    values = hu[liver].astype(np.float32)
    median = float(np.median(values))
    spread = float(np.percentile(values, 75) - np.percentile(values, 25)) or 10.0
    parenchyma = liver & (np.abs(hu.astype(np.float32) - median) < 2.0 * spread)
    return median, spread, parenchyma


def _deformed_ellipsoid(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], radius_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Signed 'inside-ness' (> 0 inside) of a randomly rotated, deformed ellipsoid centred in the crop."""
    axes = radius_mm * rng.uniform(0.75, 1.25, 3)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    grid = np.stack(
        np.meshgrid(*[(np.arange(n) - n // 2) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"), axis=-1
    )
    local = grid @ rotation
    distance = np.sqrt(np.sum((local / axes) ** 2, axis=-1))
    wobble = ndimage.gaussian_filter(rng.normal(size=shape), sigma=[max(radius_mm / (2 * s), 1.0) for s in spacing])
    wobble *= 0.35 / (np.abs(wobble).max() + 1e-6)
    return 1.0 + wobble - distance


def _texture(
    shape: tuple[int, int, int], rng: np.random.Generator, sigma_px: float | Sequence[float] = 1.0
) -> np.ndarray:
    """A smoothed random field with unit standard deviation."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma_px)
    return field / (field.std() + 1e-6)


def _mottled(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], radius_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Fine grain mixed with blobs a quarter of the lesion's radius across; unit standard deviation."""
    coarse = _texture(shape, rng, [max(radius_mm / (4 * s), 1.0) for s in spacing])
    share = rng.uniform(0.0, 1.0)
    field = share * coarse + (1.0 - share) * _texture(shape, rng)
    return field / (field.std() + 1e-6)


def sample_size(
    rng: np.random.Generator, classes: tuple[tuple[str, float, tuple[float, float]], ...] = SIZE_CLASSES
) -> tuple[str, float]:
    """A size class (by the probabilities of ``classes``) and a radius in mm within it."""
    names, probabilities, ranges = zip(*classes, strict=True)
    index = rng.choice(len(names), p=np.array(probabilities) / sum(probabilities))
    return names[index], float(rng.uniform(*ranges[index]))


def _pick_centre(
    parenchyma: np.ndarray,
    region: np.ndarray,
    spacing: tuple[float, float, float],
    depth_mm: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """A random parenchyma voxel whose distance to the edge of ``region`` lies in ``depth_mm``.

    A Euclidean distance transform on the region's bounding box: a morphological erosion with
    a structuring element this large would take minutes and gigabytes.
    """
    if not (parenchyma & region).any():
        return None
    box = bounding_box(region, (1, 1, 1))
    depth = ndimage.distance_transform_edt(region[box], sampling=spacing)
    candidates = np.argwhere(parenchyma[box] & (depth >= depth_mm[0]) & (depth <= depth_mm[1]))
    if len(candidates) == 0:
        return None
    return candidates[rng.integers(len(candidates))] + np.array([b.start for b in box])


def paint_lesion(
    hu: np.ndarray,
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    rng: np.random.Generator,
    margin_mm: float = 4.0,
    peripheral_fraction: float = PERIPHERAL_FRACTION,
    size_classes: tuple[tuple[str, float, tuple[float, float]], ...] = SIZE_CLASSES,
    clearance_mm: float | None = None,
) -> SyntheticLesion | None:
    """Paint one lesion in place into ``hu`` (int16) and ``labels``; None when no room was found.

    A peripheral lesion's centre lies closer to the liver's outline than 0.6 of its radius, so
    the lesion runs into it; the others lie at least half a radius (at most 15 mm) away from
    anything that is not parenchyma (outline and vessels), or, with ``clearance_mm``, the
    lesion's reach (1.7 radii: longest axis 1.25 radii, deformed by up to 35 %) plus that clearance.
    """
    liver = labels == Label.LIVER
    median, spread, parenchyma = _parenchyma(hu, liver)
    size_class, radius_mm = sample_size(rng, size_classes)
    peripheral = bool(rng.random() < peripheral_fraction)
    if peripheral:
        centre = _pick_centre(
            parenchyma, liver, spacing, (EDGE_DEPTH_MM, max(0.6 * radius_mm, EDGE_DEPTH_MM + 1.0)), rng
        )
    else:
        depth = min(radius_mm * 0.5, 15.0) if clearance_mm is None else 1.7 * radius_mm + clearance_mm
        centre = _pick_centre(parenchyma, parenchyma, spacing, (depth, np.inf), rng)
    if centre is None:
        return None
    half = [int(np.ceil((radius_mm * 1.6 + margin_mm) / s)) for s in spacing]
    box = tuple(slice(max(c - h, 0), min(c + h + 1, n)) for c, h, n in zip(centre, half, hu.shape, strict=True))
    crop_shape = tuple(b.stop - b.start for b in box)
    inside = _deformed_ellipsoid(tuple(2 * h + 1 for h in half), spacing, radius_mm, rng)
    start = [b.start - (c - h) for b, c, h in zip(box, centre, half, strict=True)]
    inside = inside[tuple(slice(s, s + n) for s, n in zip(start, crop_shape, strict=True))]
    blur_mm = rng.uniform(0.6, 1.8)
    alpha = ndimage.gaussian_filter((inside > 0).astype(np.float32), [blur_mm / s for s in spacing])
    alpha *= liver[box]
    contrast = float(rng.uniform(*CONTRAST_HU))
    core_darkening = np.clip(inside, 0, 1) * (0.3 * contrast if radius_mm > 10 else 0.0)
    texture = _mottled(crop_shape, spacing, radius_mm, rng) * rng.uniform(0.4, 1.1) * spread
    lesion_hu = median - contrast - core_darkening + texture
    region = hu[box].astype(np.float32)
    hu[box] = np.clip(np.rint((1 - alpha) * region + alpha * lesion_hu), -1024, 3071).astype(hu.dtype)
    painted = (alpha > 0.5) & liver[box]
    labels[box][painted] = Label.TUMOUR
    return SyntheticLesion(
        tuple(int(c) for c in centre), radius_mm, size_class, contrast, int(painted.sum()), peripheral
    )


def paint_lesions(
    hu: np.ndarray,
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    count: int,
    seed: int,
    peripheral_fraction: float = PERIPHERAL_FRACTION,
    small: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[SyntheticLesion]]:
    """A copy of the case with ``count`` synthetic lesions painted into its liver.

    ``small``: the small-lesion set (``SMALL_SIZE_CLASSES``, none peripheral, clear of vessels).
    """
    rng = np.random.default_rng(seed)
    hu, labels = hu.copy(), labels.copy()
    lesions = []
    options = (
        {"peripheral_fraction": 0.0, "size_classes": SMALL_SIZE_CLASSES, "clearance_mm": SMALL_CLEARANCE_MM}
        if small
        else {"peripheral_fraction": peripheral_fraction}
    )
    for _ in range(count):
        lesion = paint_lesion(hu, labels, spacing, rng, **options)
        if lesion is not None and lesion.voxels > 0:
            lesions.append(lesion)
    return hu, labels, lesions
