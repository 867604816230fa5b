"""Plain image slices (PNG, JPG, BMP, TIFF): 8-bit, 16-bit, grey or colour.

A raster is a picture of a CT, not the CT: its grey levels are kept as they are and the
volume is marked ``is_hu=False``. Without a pixel size, measurements are in pixels.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from liverhealth.domain import CtVolume, SourceInfo
from liverhealth.errors import InputError
from liverhealth.imaging.geometry import LPS_TO_RAS
from liverhealth.imaging.limits import check_raster

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# OpenCV prints its own warning lines (e.g. "PNG input buffer is incomplete") to stderr; a damaged
# image gets our one-line message instead.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _to_grey(image: np.ndarray, path: Path) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    raise InputError(f"{path} has an unsupported pixel layout {image.shape}.")


def check_declared_size(path: Path) -> None:
    """The image's width and height from its header (Pillow reads only the header), checked
    before the pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # our own limit applies, with our own message
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return  # not readable as declared: the decoder below gives the message
    check_raster(width, height, str(path))


def load_raster(path: Path) -> CtVolume:
    """Load an image file as a one-slice volume of grey levels (uint8 or uint16)."""
    check_declared_size(path)
    try:
        buffer = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise InputError(
            f"{path} is not a readable image (damaged or not really "
            f"{path.suffix.lstrip('.').upper()}). Export the slice again."
        )
    grey = _to_grey(image, path)
    if grey.dtype not in (np.uint8, np.uint16):
        grey = np.clip(grey, 0, 65535).astype(np.uint16)
    height, width = grey.shape
    depth = "16-bit" if grey.dtype == np.uint16 else "8-bit"
    colour = "colour" if image.ndim == 3 else "grey"
    source = SourceInfo(
        format="raster",
        path=str(path),
        description=f"{path.suffix.lstrip('.').upper()} image, {width}×{height}, {depth} {colour}",
        slice_count=1,
        notes=("grey levels, not Hounsfield units",),
    )
    return CtVolume(voxels=grey[np.newaxis].copy(), spacing=None, affine=LPS_TO_RAS.copy(), is_hu=False, source=source)


def with_pixel_size(volume: CtVolume, pixel_mm: float) -> CtVolume:
    """The same raster with a user-given pixel size, so areas come out in mm²."""
    if pixel_mm <= 0:
        raise InputError(f"The pixel size must be positive (got {pixel_mm} mm).")
    affine = LPS_TO_RAS @ np.diag([pixel_mm, pixel_mm, 1.0, 1.0])
    notes = (*volume.source.notes, f"pixel size {pixel_mm} mm given by the user")
    return replace(volume, spacing=(1.0, pixel_mm, pixel_mm), affine=affine, source=replace(volume.source, notes=notes))
