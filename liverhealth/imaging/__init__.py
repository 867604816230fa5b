"""CT input (DICOM, NIfTI, NRRD, raster slices) and display operations."""

from __future__ import annotations

from pathlib import Path

from liverhealth.domain import CtVolume
from liverhealth.errors import InputError
from liverhealth.imaging.dicom import load_dicom_file, load_dicom_folder, load_dicom_zip
from liverhealth.imaging.raster import RASTER_SUFFIXES, load_raster, with_pixel_size
from liverhealth.imaging.volumes import load_volume

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr")

__all__ = ["load", "with_pixel_size"]


def load(path: str | Path) -> CtVolume:
    """Load a CT from a DICOM file/folder/zip, NIfTI, NRRD or an image file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist. Check the path and try again.")
    if path.is_dir():
        return load_dicom_folder(path)
    name = path.name.lower()
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes).")
    if name.endswith(".zip"):
        return load_dicom_zip(path)
    if name.endswith(VOLUME_SUFFIXES):
        return load_volume(path)
    if name.endswith(RASTER_SUFFIXES):
        return load_raster(path)
    return load_dicom_file(path)
