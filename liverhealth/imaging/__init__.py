"""CT input (DICOM, NIfTI, NRRD, raster slices) and display operations."""

from __future__ import annotations

from pathlib import Path

from liverhealth.domain import CtVolume
from liverhealth.errors import InputError
from liverhealth.imaging import raster, volumes
from liverhealth.imaging.dicom import load_dicom_file, load_dicom_folder, load_dicom_zip
from liverhealth.imaging.raster import RASTER_SUFFIXES, load_raster, with_pixel_size
from liverhealth.imaging.volumes import load_volume

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr")

__all__ = ["check_declared_size", "load", "with_pixel_size"]


def check_declared_size(path: Path) -> None:
    """Refuse, from its header alone, an image or volume file that declares a size over the limits
    (a DICOM zip's entries and each DICOM slice are checked by the DICOM reader the same way)."""
    name = path.name.lower()
    if name.endswith(VOLUME_SUFFIXES):
        volumes.check_declared_size(path)
    elif name.endswith(RASTER_SUFFIXES):
        raster.check_declared_size(path)


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
