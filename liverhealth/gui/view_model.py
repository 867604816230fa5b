"""The window's view state and what each view shows, without Qt (testable on its own).

The widgets forward user actions here and paint the arrays this class returns. It holds view
state only (the crosshair's voxel, shown in the axial, coronal and sagittal planes; window, view,
opacity, the lesion picked in the list, the edit mode's tool and brush, and what is on screen);
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
from liverhealth.presentation import confidence_text, lesion_text, slice_number, slice_text, tumour_ml

if TYPE_CHECKING:
    from liverhealth.analysis.caliper import Caliper
    from liverhealth.results import SegmentResult

EDITED_MARK = "[edited] "  # before a lesion a reader drew, erased or relabelled some of (seen in a narrow list)
LESION_COLUMNS = ("Lesion", "Volume", "Long × short", "Slice", "Confidence")  # confidence: '41 %, check first'
PLANE_NAMES = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}


@dataclass(frozen=True)
class LesionRow:
    """One row of the lesion list: the lesion, the slice its diameters were measured on (0-based
    array index), the cells under ``LESION_COLUMNS`` and the row's tooltip."""

    lesion_id: int
    slice_index: int
    cells: tuple[str, ...]
    tooltip: str


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
    cursor_row: int = 0  # the crosshair's y (the coronal picture shown); slice_index is its z
    cursor_column: int = 0  # the crosshair's x (the sagittal picture shown)
    show_crosshair: bool = True
    calipers: tuple[Caliper, ...] = ()  # the result's, from the workflow session
    selected_lesion: int | None = None  # picked in the list: outlined, with its caliper
    _geometries: tuple[CtVolume | None, dict[str, display.PlaneGeometry]] = field(
        default=(None, {}), init=False, repr=False
    )

    def set_volume(self, volume: CtVolume) -> None:
        """A new study: forget the old result, put the crosshair in the middle of the volume."""
        self.volume = volume
        self.result = None
        self.slice_index = volume.shape[0] // 2
        self.cursor_row, self.cursor_column = volume.shape[1] // 2, volume.shape[2] // 2
        self.right_view = "segmentation"
        self.tools.fill_from = None
        self.calipers, self.selected_lesion = (), None

    def set_result(self, result: SegmentResult) -> None:
        """A segmentation finished: show the slice with the most tumour (else liver)."""
        if self.volume is None or self.volume.shape != result.volume.shape:
            self.cursor_row, self.cursor_column = result.volume.shape[1] // 2, result.volume.shape[2] // 2
        self.result = result
        self.volume = result.volume
        self.slice_index = result.key_slice
        self.right_view = "segmentation"
        self.tools.fill_from = None
        self.calipers, self.selected_lesion = (), None

    def update_result(self, result: SegmentResult) -> None:
        """An edit, undo or redo changed the result: show it on the slice the reader is on (the
        lesions are numbered again, so none stays picked)."""
        self.result = result
        self.right_view = "segmentation"
        self.calipers, self.selected_lesion = (), None

    # the three planes and the crosshair ---------------------------------------------------
    @property
    def has_planes(self) -> bool:
        """Whether coronal and sagittal pictures make sense (a volume of more than one slice)."""
        return self.volume is not None and self.volume.shape[0] > 1

    @property
    def cursor(self) -> tuple[int, int, int]:
        """The crosshair's voxel (z, y, x)."""
        return self.slice_index, self.cursor_row, self.cursor_column

    def geometry(self, plane: str) -> display.PlaneGeometry:
        """How ``plane`` is shown: head up, pixel aspect and edge letters (a picture without patient
        geometry, a raster, has no letters)."""
        volume = self.volume
        assert volume is not None
        if self._geometries[0] is not volume:  # worked out once per volume
            self._geometries = (volume, {})
        known = self._geometries[1]
        if plane not in known:
            known[plane] = display.plane_geometry(
                plane, volume.shape, volume.affine, volume.spacing, oriented=volume.is_hu
            )
        return known[plane]

    def picture_key(self, plane: str) -> tuple:
        """What ``plane_image`` depends on (the volume and result by identity): the same key, the same
        picture, so the window skips the work. Keep the volume and result alive beside a kept key."""
        index = self.plane_index(plane) if self.volume is not None else None
        view = self.right_view if plane == "axial" else None
        return (id(self.volume), id(self.result), plane, index, self.window, self.opacity, self.show_uncertainty, view)

    def plane_index(self, plane: str) -> int:
        """Which picture of ``plane`` the crosshair shows."""
        return self.cursor[self.geometry(plane).fixed_axis]

    def plane_count(self, plane: str) -> int:
        return self.volume.shape[self.geometry(plane).fixed_axis] if self.volume is not None else 0

    def plane_image(self, plane: str) -> np.ndarray | None:
        """The picture of ``plane`` at the crosshair: the axial one is the segmentation or processed
        view (``right_image``); coronal and sagittal ones are windowed, with the labels over them."""
        if self.volume is None:
            return None
        if plane == "axial":
            return self.right_image()
        geometry, index = self.geometry(plane), self.plane_index(plane)
        image = display.to_display(
            display.plane_slice(self.volume.voxels, geometry, index), self.volume.is_hu, self.window
        )
        if self.result is None:
            return image
        labels = display.plane_slice(self.result.segmentation.labels, geometry, index)
        image = display.overlay_labels(image, labels, self.opacity)
        confidence = self.result.segmentation.confidence
        if self.show_uncertainty and confidence is not None:
            image = display.overlay_uncertainty(image, display.plane_slice(confidence, geometry, index))
        return image

    def crosshair(self, plane: str) -> tuple[int, int] | None:
        """(row, column) of the crosshair on ``plane``'s picture; None when it is hidden."""
        if self.volume is None or not self.show_crosshair:
            return None
        _, row, column = display.volume_to_picture(self.geometry(plane), self.cursor, self.volume.shape)
        return row, column

    def pick(self, plane: str, row: int, column: int) -> None:
        """A click at (row, column) of ``plane``'s picture: the crosshair goes to that voxel, so the
        other two planes show it."""
        if self.volume is None:
            return
        z, y, x = display.picture_to_volume(
            self.geometry(plane), self.plane_index(plane), row, column, self.volume.shape
        )
        self._move_cursor(z, y, x)

    def scroll_plane(self, plane: str, steps: int) -> None:
        """The wheel on ``plane``: the next or previous picture of that plane."""
        if self.volume is None:
            return
        cursor = list(self.cursor)
        cursor[self.geometry(plane).fixed_axis] += steps
        self._move_cursor(*cursor)

    def _move_cursor(self, z: int, y: int, x: int) -> None:
        shape = self.volume.shape
        self.slice_index = int(np.clip(z, 0, shape[0] - 1))
        self.cursor_row = int(np.clip(y, 0, shape[1] - 1))
        self.cursor_column = int(np.clip(x, 0, shape[2] - 1))

    def plane_caption(self, plane: str) -> str:
        """'Axial · slice 66 of 129', 'Coronal · 257 of 512' (1-based, as every number people see)."""
        if self.volume is None:
            return PLANE_NAMES[plane]
        if plane == "axial":
            return f"Axial · {slice_text(self.slice_index, self.slice_count)}"
        return f"{PLANE_NAMES[plane]} · {slice_number(self.plane_index(plane))} of {self.plane_count(plane)}"

    def instance_number(self, index: int) -> int | None:
        """The DICOM InstanceNumber of slice ``index`` when the headers are one-to-one with the slices."""
        dicom = self.volume.dicom if self.volume is not None else None
        if dicom is None or len(dicom.headers) != self.slice_count:
            return None
        value = dicom.headers[index].get("InstanceNumber")
        try:
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    def slice_label(self, index: int | None = None) -> str:
        """'slice 66 of 129 (DICOM instance 64)' for slice ``index`` (default: the current one)."""
        index = self.slice_index if index is None else index
        return slice_text(index, max(self.slice_count, 1), self.instance_number(index))

    # the lesion picked in the list ----------------------------------------------------------
    def caliper(self, lesion_id: int) -> Caliper | None:
        return next((caliper for caliper in self.calipers if caliper.lesion_id == lesion_id), None)

    def select_lesion(self, lesion_id: int) -> None:
        """Pick a lesion: go to the slice its diameters were measured on, the crosshair on the
        middle of its long axis (else to its largest slice and centroid)."""
        self.selected_lesion = lesion_id
        caliper = self.caliper(lesion_id)
        if caliper is not None:
            (row_a, column_a), (row_b, column_b) = caliper.long_axis
            self._move_cursor(caliper.slice_index, round((row_a + row_b) / 2), round((column_a + column_b) / 2))
            return
        lesion = next((item for item in self.result.measurements.lesions if item.lesion_id == lesion_id), None)
        if lesion is not None:
            _, y, x = lesion.centroid_index
            self._move_cursor(lesion.largest_slice, round(y), round(x))

    def shown_caliper(self) -> Caliper | None:
        """The picked lesion's caliper when the axial view shows the slice it was measured on."""
        caliper = self.caliper(self.selected_lesion) if self.selected_lesion is not None else None
        return caliper if caliper is not None and caliper.slice_index == self.slice_index else None

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
        return f"x {column}, y {row}, slice {slice_number(self.slice_index)}: {value} {unit}{label}"

    def lesion_rows(self) -> list[LesionRow]:
        """The lesion list's rows in ``lesion_order``; each lesion's slice is the one its diameters
        were measured on (its caliper's), else its largest."""
        if self.result is None:
            return []
        measurements = self.result.measurements
        lesions = measurements.check_first() if self.lesion_order == "check" else measurements.lesions
        rows = []
        for lesion in lesions:
            caliper = self.caliper(lesion.lesion_id)
            z = caliper.slice_index if caliper is not None else lesion.largest_slice
            if lesion.longest_diameter_mm is not None:
                axes = f"{lesion.longest_diameter_mm:.1f} × {lesion.perpendicular_diameter_mm or 0:.1f} mm"
            else:
                axes = f"{lesion.longest_diameter_px:.0f} px"
            volume = tumour_ml(lesion.volume_ml) if lesion.volume_ml is not None else f"{lesion.largest_area_px} px"
            confidence = confidence_text(lesion.confidence, lesion.unsure) or "–"
            number = f"{EDITED_MARK if lesion.edited else ''}{lesion.lesion_id}"
            cells = (number, volume, axes, str(slice_number(z)), confidence)
            rows.append(
                LesionRow(lesion.lesion_id, z, cells, f"{lesion_text(lesion)} · measured on {self.slice_label(z)}")
            )
        return rows

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
