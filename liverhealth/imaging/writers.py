"""Write label maps and pictures next to the input, in formats other tools read.

Every file is written whole or not at all: it goes to a hidden temporary name in the same
folder and is renamed over the target once complete, so a full disk or a crash never leaves
a truncated file behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np

from liverhealth.domain import CtVolume
from liverhealth.errors import InputError, OutputError


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto it when the block succeeds, removed otherwise."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial{''.join(path.suffixes)}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(
            f"Could not write {path}: {exc.strerror or exc}. Check that the folder is writable "
            "and the disk is not full; nothing was left half-written."
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    with atomic_target(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def check_output_folder(folder: Path) -> Path:
    """Refuse, before any slow work, an output folder that cannot be made or written; nothing is
    created here (a refused input must leave no empty folder behind)."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(
            f"Cannot write into the output folder {folder}: {existing} is a file, not a folder. "
            "Choose another folder with --out."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(
            f"Cannot write into the output folder {folder}: no permission to write in {existing}. "
            "Choose another folder with --out."
        )
    return folder


def make_output_folder(folder: Path) -> Path:
    """Create the output folder (its parents too)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {folder}: {exc.strerror or exc}.") from exc
    return Path(folder)


@contextmanager
def new_folder(folder: Path) -> Iterator[Path]:
    """A hidden folder beside ``folder`` to write into; renamed to ``folder`` when the block succeeds,
    removed otherwise, so ``folder`` appears complete or not at all. An existing ``folder`` is
    refused: a new result never replaces an older one."""
    folder = Path(folder)
    if folder.exists():
        raise OutputError(f"{folder} already exists; nothing was written. Choose a new folder with --out.")
    check_output_folder(folder)
    make_output_folder(folder.parent)
    temporary = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir()
        yield temporary
        os.rename(temporary, folder)
    except OSError as exc:
        raise OutputError(
            f"Could not write {folder}: {exc.strerror or exc}. Check that the folder is writable and the "
            "disk is not full; nothing was left half-written."
        ) from exc
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _check_written(ok: bool, path: Path) -> None:
    if not ok:
        raise OutputError(f"Could not write {path}; check that the folder is writable and the disk is not full.")


def save_labels_nifti(labels: np.ndarray, volume: CtVolume, path: Path) -> None:
    """uint8 labels as NIfTI: array axes [column, row, slice], affine in RAS from the input."""
    save_label_map(labels, volume.affine, path)


def save_label_map(labels: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """A [z, y, x] label map as NIfTI on the grid ``affine`` describes (the one writer of the convention)."""
    _write_nifti(np.asarray(labels, dtype=np.uint8), np.asarray(affine, dtype=float), path)


def read_label_map(path: Path, volume: CtVolume | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels [z, y, x] uint8, affine) from a label NIfTI written by ``save_label_map``; with ``volume``,
    a map that is not on its grid (shape or affine) is refused rather than placed by guess."""
    image = nib.load(str(path))
    labels = np.ascontiguousarray(np.asarray(image.dataobj, dtype=np.uint8).transpose(2, 1, 0))
    affine = np.asarray(image.affine, dtype=float)
    if volume is not None and (labels.shape != volume.shape or not np.allclose(affine, volume.affine, atol=1e-3)):
        raise InputError(
            f"{path} is not on the CT's grid (shape {labels.shape} against {volume.shape}, or another "
            "affine); it belongs to another scan."
        )
    return labels, affine


def save_volume_nifti(volume: CtVolume, path: Path) -> None:
    """The CT itself as NIfTI (int16 HU or the raster's grey), on the same grid as its labels.

    For tools that read only NIfTI; reading it back with ``liverhealth.imaging.load`` gives the
    same voxels.
    """
    dtype = np.int16 if volume.is_hu else volume.voxels.dtype
    _save_nifti(np.asarray(volume.voxels, dtype=dtype), volume, path)


def _save_nifti(array: np.ndarray, volume: CtVolume, path: Path) -> None:
    _write_nifti(array, np.asarray(volume.affine, dtype=float), path)


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    # NIfTI stores [x, y, z] in Fortran order: the transposed view of a C-ordered [z, y, x] array is
    # exactly that layout, so nibabel writes it without the two transposing copies a C-ordered copy costs.
    image = nib.Nifti1Image(np.ascontiguousarray(array).transpose(2, 1, 0), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_target(path) as temporary:
        nib.save(image, str(temporary))


def save_png(image: np.ndarray, path: Path) -> None:
    """Save a uint8 grey or RGB image as PNG."""
    array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buffer = cv2.imencode(".png", array)
    _check_written(ok, path)
    write_bytes_atomic(path, buffer.tobytes())


def save_labels_png(labels_2d: np.ndarray, path: Path) -> None:
    """A 2D label map as PNG with values 0/1/2 (not scaled, so it reads back as labels)."""
    save_png(np.ascontiguousarray(labels_2d, dtype=np.uint8), path)
