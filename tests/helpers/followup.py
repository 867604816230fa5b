"""Follow-up studies with known truth, made from a real CT: known lesion changes painted into the
baseline (grow, shrink, remove; add one with the training's synthetic tumour generator), then the
whole study moved by a known affine transform."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from liverhealth.analysis.followup import lesion_map
from liverhealth.analysis.registration import resample_ct, resample_labels
from liverhealth.domain import CtVolume, Label


def known_transform(volume: CtVolume, degrees: float = 6.0, scale=(1.03, 0.98, 1.0), shift=(8.0, -12.0, 6.0)):
    """A 4 × 4 RAS matrix (baseline -> follow-up): rotation about the volume's centre, scaling, shift."""
    a = np.deg2rad(degrees)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) * np.asarray(scale)
    centre = (volume.affine @ np.array([*(np.array(volume.shape[::-1]) / 2), 1.0]))[:3]
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = centre - rotation @ centre + np.asarray(shift)
    return matrix


def _parenchyma_hu(hu: np.ndarray, labels: np.ndarray) -> float:
    return float(np.median(hu[labels == Label.LIVER]))


def _around(mask: np.ndarray, spacing, mm: float) -> tuple[slice, ...]:
    """The mask's bounding box grown by ``mm`` (distance transforms need no more)."""
    from liverhealth.imaging.geometry import bounding_box

    return tuple(
        slice(max(b.start - int(mm / s) - 2, 0), min(b.stop + int(mm / s) + 2, n))
        for b, s, n in zip(bounding_box(mask), spacing, mask.shape, strict=True)
    )


def grow(hu: np.ndarray, labels: np.ndarray, spacing, lesion: int, mm: float) -> None:
    """Lesion ``lesion`` (as measure numbers them) grown by ``mm`` inside the liver, in place."""
    mask = lesion_map(labels) == lesion
    mean = float(hu[mask].mean())
    box = _around(mask, spacing, mm)
    grown = np.zeros_like(mask)
    grown[box] = (ndimage.distance_transform_edt(~mask[box], sampling=spacing) <= mm) & (labels[box] == Label.LIVER)
    hu[grown] = round(mean)
    labels[grown] = Label.TUMOUR


def shrink(hu: np.ndarray, labels: np.ndarray, spacing, lesion: int, mm: float) -> None:
    mask = lesion_map(labels) == lesion
    box = _around(mask, spacing, 0.0)
    kept = np.zeros_like(mask)
    kept[box] = ndimage.distance_transform_edt(mask[box], sampling=spacing) > mm
    lost = mask & ~kept
    hu[lost] = round(_parenchyma_hu(hu, labels))
    labels[lost] = Label.LIVER


def remove(hu: np.ndarray, labels: np.ndarray, lesion: int) -> None:
    mask = lesion_map(labels) == lesion
    hu[mask] = round(_parenchyma_hu(hu, labels))
    labels[mask] = Label.LIVER


def add(hu: np.ndarray, labels: np.ndarray, spacing, seed: int, min_voxels: int = 2000):
    """One synthetic lesion (the training's generator) of at least ``min_voxels``; returns it."""
    from training.synthetic import paint_lesion

    rng = np.random.default_rng(seed)
    for _ in range(50):
        trial_hu, trial_labels = hu.copy(), labels.copy()
        lesion = paint_lesion(trial_hu, trial_labels, spacing, rng, peripheral_fraction=0.0)
        if lesion is not None and lesion.voxels >= min_voxels:
            hu[...], labels[...] = trial_hu, trial_labels
            return lesion
    raise AssertionError("no synthetic lesion could be painted")


def moved(volume: CtVolume, hu: np.ndarray, labels: np.ndarray, matrix: np.ndarray) -> tuple[CtVolume, np.ndarray]:
    """The (edited) baseline seen after the patient moved by ``matrix`` (baseline RAS -> follow-up
    RAS), on the same grid: follow-up(q) = baseline(matrix⁻¹ q)."""
    edited = dataclasses.replace(volume, voxels=hu)
    inverse = np.linalg.inv(matrix)
    follow_hu = np.rint(resample_ct(edited, volume, inverse)).astype(volume.voxels.dtype)
    return dataclasses.replace(volume, voxels=follow_hu), resample_labels(labels, volume, volume, inverse)
