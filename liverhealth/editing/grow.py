"""Grow a lesion from one click by its density (the region-grow method of add_lesion).

The lesion's HU is the median, after a light Gaussian smoothing, in a small ball at the click; the
liver's is the median of the liver-labelled voxels around it. The region is what lies within a band
around the lesion's HU, its half-width a fraction of the lesion-liver contrast (so the tolerance is
set by the two tissues, not a fixed HU band, and fat or air beside the liver never joins), inside
the liver outline dilated by ``liver_margin_mm`` (the model often leaves a lesion at the liver's edge
out of the liver), opened in-plane to cut thin bridges, connected to the click, holes filled.
The band widens step by step (0.2, 0.3, ... of the contrast, up to ``tolerance``) and stops before
a step that multiplies the region by more than ``leak_ratio`` (once it holds at least the seed's
ball): a region that suddenly multiplies has leaked into the liver or a neighbour, a lesion's own
rim adds a little at each step. A lesion of
the liver's density cannot be grown; that is refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy import ndimage

from liverhealth.domain import CtVolume, Label
from liverhealth.editing.grid import Index, box_around, check_seed, check_volume, require_3d, voxel_mm
from liverhealth.errors import InputError
from liverhealth.inference.postprocess import FACE_3D, dilate_in_plane, fill_holes_per_slice


@dataclass(frozen=True)
class GrowOptions:
    """The region grow's settings. ``tolerance``, ``leak_ratio``, ``liver_margin_mm`` and ``smoothing_mm``
    were chosen on 21 lits_jpg patients, each segmented by the fold model that held it out
    (``bench/bench_editing.py``, bench/results/editing/bench_editing.txt); the others are set, not tuned."""

    smoothing_mm: float = 1.0  # Gaussian sigma before thresholding (CT noise is larger than lesion contrast)
    seed_radius_mm: float = 3.0  # the lesion's HU: median over this ball at the click
    tolerance: float = 0.7  # widest band kept: lesion HU ± this fraction of the lesion-liver contrast
    leak_ratio: float = 2.0  # the band widens in steps; a step that multiplies the region by more is a leak
    min_contrast_hu: float = 10.0  # below this the lesion cannot be told from the liver by density
    liver_margin_mm: float = 6.0  # how far outside the liver outline the lesion may reach
    opening_mm: float = 1.0  # in-plane opening radius (cuts bridges into vessels); 0: none
    max_radius_mm: float = 60.0  # the lesion is looked for within this distance of the click
    max_volume_ml: float = 500.0  # a region larger than this is a leak, refused

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def ball(radius_mm: float, sizes: tuple[float, float, float]) -> np.ndarray:
    """Boolean ball of ``radius_mm`` on a grid of voxel ``sizes`` (mm), centred, at least one voxel."""
    reach = [int(np.floor(radius_mm / s)) for s in sizes]
    axes = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    return sum((a * s) ** 2 for a, s in zip(axes, sizes, strict=True)) <= radius_mm**2 + 1e-9


def _ball_at(shape: tuple[int, ...], centre: Index, radius_mm: float, sizes: tuple[float, float, float]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    kernel = ball(radius_mm, sizes)
    half = [n // 2 for n in kernel.shape]
    target = tuple(slice(max(c - h, 0), min(c + h + 1, n)) for c, h, n in zip(centre, half, shape, strict=True))
    source = tuple(slice(t.start - (c - h), t.stop - (c - h)) for t, c, h in zip(target, centre, half, strict=True))
    mask[target] = kernel[source]
    return mask


def open_in_plane(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Open each axial slice with a disc of ``radius_px`` pixels."""
    if radius_px <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))
    out = np.zeros_like(mask)
    for z in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
        out[z] = cv2.morphologyEx(mask[z].astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    return out


def component_at(
    mask: np.ndarray, seed: Index, reach_mm: float, sizes: tuple[float, float, float]
) -> np.ndarray | None:
    """The face-connected component of ``mask`` holding ``seed``, or the one nearest it within
    ``reach_mm``; None when there is none that close."""
    if not mask[seed]:
        near = mask & _ball_at(mask.shape, seed, reach_mm, sizes)
        if not near.any():
            return None
        points = np.argwhere(near)
        distances = (((points - np.asarray(seed)) * np.asarray(sizes)) ** 2).sum(axis=1)
        seed = tuple(int(v) for v in points[int(np.argmin(distances))])  # type: ignore[assignment]
    components, _ = ndimage.label(mask, structure=FACE_3D)
    return components == components[seed]


def allowed_region(labels: np.ndarray, margin_mm: float, sizes: tuple[float, float, float]) -> np.ndarray:
    """Where a lesion may lie: the liver outline (liver and tumour) dilated in-plane by ``margin_mm``."""
    return dilate_in_plane(labels > 0, round(margin_mm / min(sizes[1], sizes[2])))


def tolerance_steps(widest: float, step: float = 0.1) -> tuple[float, ...]:
    """The bands tried, narrowest first: 0.2, 0.3, ... up to ``widest`` (a fraction of the contrast)."""
    steps = [round(0.2 + i * step, 4) for i in range(100) if 0.2 + i * step < widest - 1e-6]
    return (*steps, round(widest, 4))


def grow_region(
    volume: CtVolume,
    labels: np.ndarray,
    seed: Index,
    options: GrowOptions | None = None,
    liver_only: bool = False,
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The lesion grown from ``seed`` (z, y, x): its box and boolean mask on the box. With
    ``liver_only`` it stays inside the liver label itself (a liver region relabelled tumour)."""
    options = options or GrowOptions()
    check_volume(volume, labels)
    require_3d(labels.shape, "Growing a lesion from a click")
    seed = check_seed(labels.shape, seed)
    sizes = voxel_mm(volume.spacing)
    box = box_around(labels.shape, seed, options.max_radius_mm, volume.spacing)
    local: Index = tuple(s - b.start for s, b in zip(seed, box, strict=True))  # type: ignore[assignment]
    crop = labels[box]
    allowed = (crop == Label.LIVER) if liver_only else allowed_region(crop, options.liver_margin_mm, sizes)
    if not allowed[local]:
        where = "on the liver" if liver_only else f"in the liver (or within {options.liver_margin_mm:g} mm of it)"
        raise InputError(f"The click (z, y, x) = {seed} is not {where}; click on the lesion.")
    sigma = [options.smoothing_mm / s for s in sizes]
    hu = ndimage.gaussian_filter(volume.voxels[box].astype(np.float32), sigma, truncate=3.0)
    lesion_hu = float(np.median(hu[_ball_at(hu.shape, local, options.seed_radius_mm, sizes) & allowed]))
    liver = crop == Label.LIVER
    if not liver.any():
        raise InputError(
            "There is no liver outlined around the click to compare the lesion with; outline the liver first."
        )
    liver_hu = float(np.median(hu[liver]))
    contrast = liver_hu - lesion_hu
    if abs(contrast) < options.min_contrast_hu:
        raise InputError(
            f"At the click the tissue ({lesion_hu:.0f} HU) has the liver's density ({liver_hu:.0f} HU), so no "
            "lesion can be grown from it; outline it with the brush."
        )
    opening_px = round(options.opening_mm / min(sizes[1], sizes[2]))
    seed_voxels = int(ball(options.seed_radius_mm, sizes).sum())
    region = None
    for fraction in tolerance_steps(options.tolerance):
        band = allowed & (np.abs(hu - lesion_hu) <= fraction * abs(contrast))
        grown = component_at(open_in_plane(band, opening_px), local, options.seed_radius_mm, sizes)
        if grown is None:
            continue
        if _leaked(region, grown, options.leak_ratio, seed_voxels):
            break
        region = grown
    if region is None:
        raise InputError(f"Nothing lesion-like was found at the click (z, y, x) = {seed}; outline it with the brush.")
    region = fill_holes_per_slice(region) & allowed
    _check_size(region, sizes, options.max_volume_ml)
    return box, region


def _leaked(region: np.ndarray | None, grown: np.ndarray, ratio: float, seed_voxels: int) -> bool:
    """Whether a wider band's region is a leak: more than ``ratio`` times the narrower one, once that
    one holds at least the seed ball (below it a region still fills in the lesion's own noise)."""
    if region is None or ratio <= 0:
        return False
    before = int(region.sum())
    return before >= seed_voxels and int(grown.sum()) > ratio * before


def _check_size(region: np.ndarray, sizes: tuple[float, float, float], max_ml: float) -> None:
    volume_ml = float(region.sum()) * sizes[0] * sizes[1] * sizes[2] / 1000.0
    if volume_ml > max_ml:
        raise InputError(
            f"The region grown from the click reached {volume_ml:.0f} mL, more than {max_ml:g} mL: its edge is "
            "not clear. Click nearer the lesion's centre or outline it with the brush."
        )
