"""Display operations for the "Image Processing" menu: plain functions over 2D arrays.

Inputs are one slice: HU (int16) for CT, or grey levels for a raster. Outputs are uint8 grey
or uint8 RGB images ready to show; nothing here changes the CT itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from liverhealth.domain import Label


@dataclass(frozen=True)
class Window:
    """A display window: HU centre (level) and width."""

    name: str
    center: float
    width: float

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2


WINDOW_PRESETS: dict[str, Window] = {
    "abdomen": Window("Abdomen", 40, 400),
    "liver": Window("Liver", 90, 150),
    "training": Window("Training clip (-200..200)", 0, 400),
    "bone": Window("Bone", 400, 1800),
    "lung": Window("Lung", -600, 1500),
}

# Approximate HU ranges of the tissue classes a radiologist reads off a CT, with colours (RGB).
TISSUE_CLASSES: tuple[tuple[str, float, float, tuple[int, int, int]], ...] = (
    ("air / lung", -np.inf, -190, (0, 0, 0)),
    ("fat", -190, -30, (230, 200, 40)),
    ("soft tissue", -30, 150, (200, 80, 70)),
    ("contrast-enhanced vessels", 150, 400, (230, 60, 220)),
    ("bone", 400, np.inf, (245, 245, 245)),
)

LABEL_COLOURS: dict[int, tuple[int, int, int]] = {Label.LIVER: (40, 200, 60), Label.TUMOUR: (230, 40, 40)}


def grey_to_unit(grey: np.ndarray) -> np.ndarray:
    """Raster grey levels to [0, 1]: 8-bit by /255, 16-bit stretched over its own range.

    16-bit exports from CT viewers use arbitrary ranges (0..4095, HU+1024...), so a fixed
    /65535 would show them nearly black.
    """
    grey = np.asarray(grey, dtype=np.float32)
    if grey.size and grey.max() > 255:
        low, high = float(grey.min()), float(grey.max())
        return (grey - low) / max(high - low, 1.0)
    return grey / 255.0


def apply_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map HU to uint8 grey: ``center - width/2`` is black, ``center + width/2`` white."""
    if width <= 0:
        raise ValueError("window width must be positive")
    low = center - width / 2
    scaled = (np.asarray(hu, dtype=np.float32) - low) * (255.0 / width)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def apply_preset(hu: np.ndarray, preset: str) -> np.ndarray:
    """Apply a named window preset (see ``WINDOW_PRESETS``)."""
    window = WINDOW_PRESETS[preset]
    return apply_window(hu, window.center, window.width)


def to_display(image: np.ndarray, is_hu: bool, window: Window = WINDOW_PRESETS["abdomen"]) -> np.ndarray:
    """A slice as uint8 grey: windowed when it is HU, scaled when it is a raster."""
    if is_hu:
        return apply_window(image, window.center, window.width)
    return np.clip(grey_to_unit(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def clahe(grey: np.ndarray, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of a uint8 image."""
    op = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid, tile_grid))
    return op.apply(np.ascontiguousarray(grey, dtype=np.uint8))


def denoise_gaussian(grey: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian smoothing (kernel size from sigma)."""
    return cv2.GaussianBlur(np.ascontiguousarray(grey), (0, 0), sigmaX=sigma)


def denoise_median(grey: np.ndarray, size: int = 3) -> np.ndarray:
    """Median filter; ``size`` is odd. Removes speckle while keeping edges."""
    if size % 2 == 0:
        size += 1
    return cv2.medianBlur(np.ascontiguousarray(grey, dtype=np.uint8), size)


def denoise_bilateral(
    grey: np.ndarray, diameter: int = 7, sigma_color: float = 40.0, sigma_space: float = 5.0
) -> np.ndarray:
    """Edge-preserving bilateral filter of a uint8 image."""
    return cv2.bilateralFilter(np.ascontiguousarray(grey, dtype=np.uint8), diameter, sigma_color, sigma_space)


def edges_canny(grey: np.ndarray, low: float = 50, high: float = 150) -> np.ndarray:
    """Canny edge map (uint8, 0 or 255)."""
    return cv2.Canny(np.ascontiguousarray(grey, dtype=np.uint8), low, high)


def edges_sobel(grey: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude scaled to uint8."""
    image = np.asarray(grey, dtype=np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1))
    peak = float(magnitude.max())
    return (magnitude * (255.0 / peak)).astype(np.uint8) if peak > 0 else np.zeros_like(grey, np.uint8)


def tissue_colour_map(hu: np.ndarray) -> np.ndarray:
    """Colour each pixel by its HU tissue class (``TISSUE_CLASSES``) as uint8 RGB."""
    hu = np.asarray(hu, dtype=np.float32)
    rgb = np.zeros((*hu.shape, 3), dtype=np.uint8)
    for _, low, high, colour in TISSUE_CLASSES:
        rgb[(hu >= low) & (hu < high)] = colour
    return rgb


UNCERTAIN_COLOUR = (255, 0, 255)  # magenta: not a label colour, so it never reads as liver or tumour
UNCERTAIN_BELOW = 50  # confidence percent under which a pixel is tinted, the more the less sure


def uncertainty_map(confidence: np.ndarray) -> np.ndarray:
    """100 - confidence where the confidence is below ``UNCERTAIN_BELOW``, else 0 (uint8): the web
    viewer's overlay, in which 0 is transparent."""
    uncertainty = 100 - np.asarray(confidence, dtype=np.int16)
    uncertainty[confidence >= UNCERTAIN_BELOW] = 0
    return uncertainty.astype(np.uint8)


def overlay_uncertainty(image: np.ndarray, confidence: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """Tint the pixels of a grey or RGB slice where the model's confidence (uint8 percent) is below
    ``UNCERTAIN_BELOW``: opacity grows to ``alpha`` as the confidence falls to 0."""
    rgb = image if image.ndim == 3 else cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_GRAY2RGB)
    weight = np.clip((UNCERTAIN_BELOW - confidence.astype(np.float32)) / UNCERTAIN_BELOW, 0.0, 1.0) * alpha
    if not weight.any():
        return rgb.copy()
    out = rgb.astype(np.float32) * (1 - weight[..., None]) + np.array(UNCERTAIN_COLOUR, np.float32) * weight[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def overlay_labels(grey: np.ndarray, labels: np.ndarray, alpha: float = 0.4, outline: bool = True) -> np.ndarray:
    """Blend liver and tumour colours over a uint8 grey slice; returns uint8 RGB."""
    rgb = cv2.cvtColor(np.ascontiguousarray(grey, dtype=np.uint8), cv2.COLOR_GRAY2RGB).astype(np.float32)
    for label, colour in LABEL_COLOURS.items():
        mask = labels == label
        if not mask.any():
            continue
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.array(colour, dtype=np.float32)
    out = np.clip(rgb, 0, 255).astype(np.uint8)
    if outline:
        for label, colour in LABEL_COLOURS.items():
            mask = (labels == label).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, colour, 1)
    return out


# Three planes ---------------------------------------------------------------------------------
# A volume's array axes are (z, y, x): axial pictures fix z, coronal ones y, sagittal ones x. What
# each edge of a picture points to is read from the affine (nibabel's orientation codes), never
# assumed; pictures are never mirrored, only coronal and sagittal ones are turned head up.

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
_FIXED_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}
_OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}


@dataclass(frozen=True)
class PlaneGeometry:
    """How one plane of a volume is shown: the array axes along the picture's rows and columns,
    whether the rows run backwards (head up), each pixel's size in mm (None without a pixel size)
    and the letter at each edge ('' when the orientation is unknown)."""

    plane: str
    fixed_axis: int
    row_axis: int
    column_axis: int
    flip_rows: bool
    row_mm: float | None
    column_mm: float | None
    top: str = ""
    bottom: str = ""
    left: str = ""
    right: str = ""

    @property
    def aspect(self) -> float:
        """Shown height of a pixel over its width (1 without a pixel size)."""
        return self.row_mm / self.column_mm if self.row_mm and self.column_mm else 1.0


def axis_codes(affine: np.ndarray) -> tuple[str, str, str]:
    """Where the array axes (z, y, x) point in the patient ('S', 'P', 'L' for the readers' usual
    axial stack), from the affine that maps (column, row, slice) to RAS."""
    import nibabel as nib

    codes = nib.aff2axcodes(np.asarray(affine, dtype=np.float64))
    return codes[2], codes[1], codes[0]


def plane_geometry(
    plane: str,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    spacing: tuple[float, float, float] | None,
    oriented: bool = True,
) -> PlaneGeometry:
    """The geometry of ``plane`` for a volume of ``shape`` (z, y, x). ``oriented`` False (a picture
    without patient geometry) leaves the letters blank. Axial pictures are the array's slices as
    they are; coronal and sagittal ones are turned so the head end is up when the slice axis
    points to S or I."""
    fixed = _FIXED_AXIS[plane]
    row_axis, column_axis = (1, 2) if plane == "axial" else (0, 2 if plane == "coronal" else 1)
    codes = axis_codes(affine) if oriented else None
    flip = plane != "axial" and codes is not None and codes[row_axis] == "S"
    letters = {}
    if codes is not None:
        row_end = codes[row_axis]  # the letter where the row index is largest
        top, bottom = (row_end, _OPPOSITE[row_end]) if flip else (_OPPOSITE[row_end], row_end)
        letters = {"top": top, "bottom": bottom, "left": _OPPOSITE[codes[column_axis]], "right": codes[column_axis]}
    return PlaneGeometry(
        plane=plane,
        fixed_axis=fixed,
        row_axis=row_axis,
        column_axis=column_axis,
        flip_rows=flip,
        row_mm=float(spacing[row_axis]) if spacing else None,
        column_mm=float(spacing[column_axis]) if spacing else None,
        **letters,
    )


def plane_slice(array: np.ndarray, geometry: PlaneGeometry, index: int) -> np.ndarray:
    """Picture ``index`` of a [z, y, x] array (CT, labels or confidence) in ``geometry``'s plane."""
    picture = np.take(array, int(index), axis=geometry.fixed_axis)
    return picture[::-1] if geometry.flip_rows else picture


def picture_to_volume(
    geometry: PlaneGeometry, index: int, row: int, column: int, shape: tuple[int, int, int]
) -> tuple[int, int, int]:
    """The (z, y, x) voxel shown at (row, column) of picture ``index``."""
    point = [0, 0, 0]
    point[geometry.fixed_axis] = int(index)
    point[geometry.row_axis] = shape[geometry.row_axis] - 1 - int(row) if geometry.flip_rows else int(row)
    point[geometry.column_axis] = int(column)
    return point[0], point[1], point[2]


def volume_to_picture(
    geometry: PlaneGeometry, voxel: tuple[int, int, int], shape: tuple[int, int, int]
) -> tuple[int, int, int]:
    """(picture index, row, column) where voxel (z, y, x) is shown in ``geometry``'s plane."""
    row = voxel[geometry.row_axis]
    if geometry.flip_rows:
        row = shape[geometry.row_axis] - 1 - row
    return int(voxel[geometry.fixed_axis]), int(row), int(voxel[geometry.column_axis])


def scale_bar_mm(mm_per_pixel: float, max_pixels: float) -> float:
    """The longest 1, 2 or 5 x 10^k mm that fits in ``max_pixels`` screen pixels (the scale bar)."""
    if mm_per_pixel <= 0 or max_pixels <= 0:
        raise ValueError("the pixel size and the room for the bar must be positive")
    room = mm_per_pixel * max_pixels
    power = 10.0 ** np.floor(np.log10(room))
    return float(max(step * power for step in (1, 2, 5) if step * power <= room))
