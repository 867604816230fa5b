"""Write label maps and pictures next to the input, in formats other tools read."""

from __future__ import annotations

from pathlib import Path

import cv2
import nibabel as nib
import numpy as np

from liverhealth.errors import InputError
from liverhealth.types import CtVolume


def _check_written(ok: bool, path: Path) -> None:
    if not ok:
        raise InputError(f"Could not write {path}; check that the folder is writable and the disk "
                         "is not full.")


def save_labels_nifti(labels: np.ndarray, volume: CtVolume, path: Path) -> None:
    """uint8 labels as NIfTI: array axes [column, row, slice], affine in RAS from the input."""
    _save_nifti(np.asarray(labels, dtype=np.uint8), volume, path)


def save_volume_nifti(volume: CtVolume, path: Path) -> None:
    """The CT itself as NIfTI (int16 HU or the raster's grey), on the same grid as its labels.

    For tools that read only NIfTI; reading it back with ``liverhealth.imaging.load`` gives the
    same voxels.
    """
    dtype = np.int16 if volume.is_hu else volume.voxels.dtype
    _save_nifti(np.asarray(volume.voxels, dtype=dtype), volume, path)


def _save_nifti(array: np.ndarray, volume: CtVolume, path: Path) -> None:
    image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), volume.affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(volume.affine, code=1)
    image.set_sform(volume.affine, code=1)
    try:
        nib.save(image, str(path))
    except OSError as exc:
        raise InputError(f"Could not write {path}: {exc.strerror or exc}.") from exc


def save_png(image: np.ndarray, path: Path) -> None:
    """Save a uint8 grey or RGB image as PNG."""
    array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    _check_written(cv2.imwrite(str(path), array), path)


def save_labels_png(labels_2d: np.ndarray, path: Path) -> None:
    """A 2D label map as PNG with values 0/1/2 (not scaled, so it reads back as labels)."""
    save_png(np.ascontiguousarray(labels_2d, dtype=np.uint8), path)
