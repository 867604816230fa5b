"""The window's view state and what each view shows, without Qt (testable on its own).

The widgets forward user actions here and paint the arrays this class returns. It holds view
state only (slice, window, view, opacity, the edit mode's tool and brush, and what is on screen);
every step of the work (load, segment, edit, report, sign, database) is the workflow service's,
which the window runs in worker threads. Importing this module pulls in neither ONNX Runtime,
SQLAlchemy nor reportlab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from liverhealth.domain import CtVolume, Label
from liverhealth.imaging import display
from liverhealth.presentation import lesion_text

if TYPE_CHECKING:
    from liverhealth.results import SegmentResult

EDITED_MARK = "[edited] "  # before a lesion a reader drew, erased or relabelled some of (seen in a narrow list)

PROCESSING: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    # key: (menu text, function of (windowed grey, HU or grey slice) -> image)
    "clahe": ("CLAHE (local contrast)", lambda grey, _: display.clahe(grey)),
    "gaussian": ("Denoise: Gaussian", lambda grey, _: display.denoise_gaussian(grey, 1.2)),
    "median": ("Denoise: median", lambda grey, _: display.denoise_median(grey, 3)),
    "bilateral": ("Denoise: bilateral", lambda grey, _: display.denoise_bilateral(grey)),
    "canny": ("Edges: Canny", lambda grey, _: display.edges_canny(grey)),
    "sobel": ("Edges: Sobel", lambda grey, _: display.edges_sobel(grey)),
    "tissue": ("HU tissue colour map", lambda _, hu: display.tissue_colour_map(hu)),
}


class Tool(StrEnum):
    """What a click on the segmentation does in edit mode."""

    PAINT = "paint"
    ERASE = "erase"
    ADD_LESION = "add-lesion"
    REMOVE_LESION = "remove-lesion"
    RELABEL_AS_LIVER = "relabel-as-liver"
    FILL_BETWEEN = "fill-between-slices"


BRUSH_TOOLS = (Tool.PAINT, Tool.ERASE)
BRUSH_MM = (0.5, 50.0)  # the brush radius's range; in pixels for a raster without a pixel size


@dataclass
class EditTools:
    """The edit mode's view state: whether it is on, the tool, the brush, the label painted, erased
    or filled, and the first slice chosen for a fill between slices."""

    active: bool = False
    tool: Tool = Tool.PAINT
    radius_mm: float = 5.0
    label: Label = Label.TUMOUR
    fill_from: int | None = None

    def resize_brush(self, steps: int) -> float:
        """The radius ``steps`` steps bigger (or smaller when negative), each about a quarter of it and at
        least 0.5 mm, kept to 0.5 mm and within ``BRUSH_MM``; returns it."""
        change = max(0.5, 0.25 * self.radius_mm) * steps
        self.radius_mm = float(np.clip(round((self.radius_mm + change) * 2) / 2, *BRUSH_MM))
        return self.radius_mm

    def brush_pixels(self, spacing: tuple[float, float, float] | None) -> tuple[float, float] | None:
        """The brush's (row, column) radius in pixels for the cursor outline; None for a tool without one."""
        if not self.active or self.tool not in BRUSH_TOOLS:
            return None
        size_y, size_x = spacing[1:] if spacing is not None else (1.0, 1.0)
        return self.radius_mm / size_y, self.radius_mm / size_x


@dataclass
class ViewModel:
    """Everything the window shows: the volume, the slice, the window, the right-hand view."""

    volume: CtVolume | None = None
    result: SegmentResult | None = None
    slice_index: int = 0
    window: display.Window = field(default_factory=lambda: display.WINDOW_PRESETS["abdomen"])
    right_view: str = "segmentation"  # "segmentation" or a PROCESSING key
    opacity: float = 0.4
    show_uncertainty: bool = False  # tint where the model was unsure (over the segmentation view)
    lesion_order: str = "size"  # "size" (largest first, as numbered) or "check" (least confident first)
    tools: EditTools = field(default_factory=EditTools)

    def set_volume(self, volume: CtVolume) -> None:
        """A new study: forget the old result, go to the middle slice."""
        self.volume = volume
        self.result = None
        self.slice_index = volume.shape[0] // 2
        self.right_view = "segmentation"
        self.tools.fill_from = None

    def set_result(self, result: SegmentResult) -> None:
        """A segmentation finished: show the slice with the most tumour (else liver)."""
        self.result = result
        self.volume = result.volume
        self.slice_index = result.key_slice
        self.right_view = "segmentation"
        self.tools.fill_from = None

    def update_result(self, result: SegmentResult) -> None:
        """An edit, undo or redo changed the result: show it on the slice the reader is on."""
        self.result = result
        self.right_view = "segmentation"

    @property
    def slice_count(self) -> int:
        return self.volume.shape[0] if self.volume is not None else 0

    def scroll(self, steps: int) -> int:
        """Move by ``steps`` slices (clamped); returns the new index."""
        if self.volume is not None:
            self.slice_index = int(np.clip(self.slice_index + steps, 0, self.slice_count - 1))
        return self.slice_index

    def set_window(self, center: float, width: float) -> None:
        self.window = display.Window("Custom", float(center), max(float(width), 1.0))

    def adjust_window(self, d_center: float, d_width: float) -> None:
        """Drag-to-adjust: right-drag changes level (vertical) and width (horizontal)."""
        self.set_window(self.window.center + d_center, self.window.width + d_width)

    def _slice(self) -> np.ndarray:
        assert self.volume is not None
        return self.volume.voxels[self.slice_index]

    def left_image(self) -> np.ndarray | None:
        """The original slice, windowed (uint8 grey)."""
        if self.volume is None:
            return None
        return display.to_display(self._slice(), self.volume.is_hu, self.window)

    def right_image(self) -> np.ndarray | None:
        """The processed view or the segmentation overlay (uint8 grey or RGB)."""
        if self.volume is None:
            return None
        grey = self.left_image()
        if self.right_view in PROCESSING:
            return PROCESSING[self.right_view][1](grey, self._slice())
        if self.result is None:
            return grey
        image = display.overlay_labels(grey, self.result.segmentation.labels[self.slice_index], self.opacity)
        confidence = self.result.segmentation.confidence
        if self.show_uncertainty and confidence is not None:
            image = display.overlay_uncertainty(image, confidence[self.slice_index])
        return image

    @property
    def has_confidence(self) -> bool:
        return self.result is not None and self.result.segmentation.confidence is not None

    def value_at(self, row: int, column: int) -> str:
        """Status-bar text for the pixel under the cursor."""
        if self.volume is None or not (0 <= row < self.volume.shape[1] and 0 <= column < self.volume.shape[2]):
            return ""
        value = int(self._slice()[row, column])
        unit = "HU" if self.volume.is_hu else "grey"
        label = ""
        if self.result is not None:
            tissue = Label(int(self.result.segmentation.labels[self.slice_index, row, column]))
            label = "" if tissue == Label.BACKGROUND else f" · {tissue.name.lower()}"
            if self.result.segmentation.confidence is not None:
                label += f" · confidence {self.result.segmentation.confidence[self.slice_index, row, column]} %"
        return f"x {column}, y {row}, slice {self.slice_index}: {value} {unit}{label}"

    def lesion_rows(self) -> list[tuple[int, str, int]]:
        """(lesion id, text, its largest slice) for the lesion list, in ``lesion_order``."""
        if self.result is None:
            return []
        measurements = self.result.measurements
        lesions = measurements.check_first() if self.lesion_order == "check" else measurements.lesions
        return [
            (lesion.lesion_id, (EDITED_MARK if lesion.edited else "") + lesion_text(lesion), lesion.largest_slice)
            for lesion in lesions
        ]

    def status_text(self) -> str:
        if self.volume is None:
            return "No study open"
        spacing = ("×".join(f"{s:.2f}" for s in self.volume.spacing) + " mm") if self.volume.spacing else "no spacing"
        model = f" · model {self.result.model.model_id}" if self.result else ""
        return f"{self.volume.source.description} · {spacing}{model}"


@dataclass
class ComparisonView:
    """The side-by-side comparison: the baseline and the follow-up resampled onto its grid, so one
    slice index shows the same anatomy on both (linked scrolling in registered space)."""

    baseline: CtVolume
    baseline_labels: np.ndarray
    followup_ct: np.ndarray
    followup_labels: np.ndarray
    rows: list[tuple[str, int]]  # (lesion text, baseline slice) for the lesion list
    summary: str
    slice_index: int = 0
    window: display.Window = field(default_factory=lambda: display.WINDOW_PRESETS["liver"])
    opacity: float = 0.3

    @property
    def slice_count(self) -> int:
        return self.baseline.shape[0]

    def scroll(self, steps: int) -> int:
        self.slice_index = int(np.clip(self.slice_index + steps, 0, self.slice_count - 1))
        return self.slice_index

    def images(self) -> tuple[np.ndarray, np.ndarray]:
        """(baseline, follow-up) at the current slice, windowed, with their outlines."""
        z, is_hu = self.slice_index, self.baseline.is_hu
        left = display.to_display(self.baseline.voxels[z], is_hu, self.window)
        right = display.to_display(self.followup_ct[z], is_hu, self.window)
        return (
            display.overlay_labels(left, self.baseline_labels[z], self.opacity),
            display.overlay_labels(right, self.followup_labels[z], self.opacity),
        )
