"""NIfTI (.nii, .nii.gz) and NRRD input, reoriented to the same layout as DICOM.

Whatever the file's orientation, arrays come out as [z, y, x] with x running to the patient's
left, y to posterior and z feet -> head (DICOM's usual axial layout, so a slice looks the same
whichever format it came from). The affine is updated to match, in RAS.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np

from liverhealth.domain import CtVolume, SourceInfo, spacing_from_affine
from liverhealth.errors import InputError
from liverhealth.imaging.geometry import LPS_TO_RAS, check_affine, reorient
from liverhealth.imaging.limits import check_voxels

_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    zlib.error,
    gzip.BadGzipFile,
    nib.filebasedimages.ImageFileError,
    nrrd.NRRDError,
)


def check_declared_size(path: Path) -> None:
    """Refuse a NIfTI/NRRD whose header declares more voxels than LiverHealth reads (header only)."""
    try:
        if path.name.lower().endswith((".nrrd", ".nhdr")):
            shape = tuple(nrrd.read_header(str(path)).get("sizes", ()))
        else:
            shape = nib.load(str(path)).shape
    except _READ_ERRORS as exc:
        raise InputError(f"{path.name} is not a readable NIfTI/NRRD file ({exc}).") from exc
    check_voxels(shape, path.name)


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        image = nib.load(str(path))
        check_voxels(image.shape, str(path))
        data = np.asanyarray(image.dataobj)
        affine = np.asarray(image.affine, dtype=float)
    except _READ_ERRORS as exc:
        raise InputError(
            f"{path} is not a readable NIfTI file ({exc}). The file may be truncated; export it again."
        ) from exc
    return data, affine


def _nrrd_affine(header: dict) -> np.ndarray:
    directions = np.asarray(header.get("space directions"), dtype=float)
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = directions.T  # one row per axis in NRRD, one column per axis here
    affine[:3, 3] = origin
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space in ("left-posterior-superior", "lps"):
        return LPS_TO_RAS @ affine
    if space in ("right-anterior-superior", "ras"):
        return affine
    raise InputError(f"NRRD space '{space}' is not supported; save the volume in LPS or RAS.")


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        check_voxels(tuple(nrrd.read_header(str(path)).get("sizes", ())), str(path))
        data, header = nrrd.read(str(path))
    except _READ_ERRORS as exc:
        raise InputError(f"{path} is not a readable NRRD file ({exc}).") from exc
    if "space directions" not in header:
        raise InputError(f"{path} has no 'space directions': its geometry is unknown.")
    return data, _nrrd_affine(header)


def _read_oriented(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    name = path.name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        data, affine, fmt = *_read_nrrd(path), "NRRD"
    else:
        data, affine, fmt = *_read_nifti(path), "NIfTI"
    data = np.squeeze(data) if data.ndim > 3 else data
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim != 3:
        raise InputError(f"{path} has {data.ndim} dimensions; LiverHealth reads 3D volumes.")
    check_affine(affine, str(path))
    zyx, affine = reorient(data, affine)
    return zyx, affine, fmt


def read_label_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a label map (NIfTI or NRRD) as uint8/int [z, y, x] and its RAS affine."""
    data, affine, _ = _read_oriented(Path(path))
    return np.rint(data).astype(np.int32) if data.dtype.kind == "f" else data, affine


MAX_LABEL_VALUES = 64


def looks_like_label_map(data: np.ndarray) -> bool:
    """True for a few distinct small non-negative whole numbers (a segmentation), whatever the
    minimum: a CT exported already windowed (air and fat stored as −40 HU) is not one."""
    sample = np.asarray(data[:: max(1, data.shape[0] // 64)])  # every slice of a small volume, 64 of a large one
    if data.dtype.kind == "f" and not np.array_equal(sample, np.rint(sample)):
        return False
    values = np.unique(sample)
    return len(values) <= MAX_LABEL_VALUES and values[0] >= 0 and values[-1] <= 255


def load_volume(path: Path) -> CtVolume:
    """Load a NIfTI or NRRD CT volume in HU."""
    data, affine, fmt = _read_oriented(path)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise InputError(f"{path} has NaN or infinite values, so it cannot be measured. Export the CT again.")
    low, high = float(np.min(data)), float(np.max(data))
    if data.dtype == np.uint8 or looks_like_label_map(data):
        raise InputError(
            f"{path} holds {'8-bit grey levels' if data.dtype == np.uint8 else 'a few whole numbers'} "
            f"({low:g} to {high:g}), not Hounsfield units: it looks like a label map. "
            "Open the CT volume instead."
        )
    if (high - low) < 50 or low > 0 or high < 0:
        raise InputError(
            f"{path} does not look like a CT in Hounsfield units (values {low:g} to "
            f"{high:g}). Open the CT volume instead."
        )
    voxels = np.clip(np.rint(data), -32768, 32767).astype(np.int16)
    z, y, x = voxels.shape
    source = SourceInfo(
        format=fmt, path=str(path), description=f"{fmt} volume, {z} slices of {y}×{x}", slice_count=z, modality="CT"
    )
    return CtVolume(voxels=voxels, spacing=spacing_from_affine(affine), affine=affine, is_hu=True, source=source)
