"""What a viewer beside the report reads for one study: the CT and its layers as NIfTI on the CT's
grid (the labels, and the uncertainty where the model was unsure), and the numbers shown next to
it, all from the segmentation. The web page's NiiVue reads these; the workflow writes them, so no
face builds files or summaries of its own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverhealth.analysis.recist import target_lesions
from liverhealth.domain import CtVolume
from liverhealth.imaging.display import uncertainty_map
from liverhealth.imaging.geometry import index_to_ras
from liverhealth.imaging.writers import save_label_map, save_labels_nifti, save_volume_nifti
from liverhealth.presentation import confidence_text, lesion_text, size_summary, slice_number, slice_text
from liverhealth.results import SegmentResult

if TYPE_CHECKING:
    from liverhealth.analysis.caliper import Caliper

CT_FILE = "ct.nii.gz"
LABELS_FILE = "labels.nii.gz"
UNCERTAINTY_FILE = "uncertainty.nii.gz"


def write_volume(volume: CtVolume, out_dir: Path) -> Path:
    """The CT as NIfTI (HU as int16), what the viewer shows first while the model works."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CT_FILE
    save_volume_nifti(volume, path)
    return path


def volume_view(volume: CtVolume) -> dict[str, Any]:
    """The CT's grid as the page states it beside the first view."""
    return {
        "shape_zyx": list(volume.shape),
        "spacing_zyx_mm": list(volume.spacing) if volume.spacing else None,
        "is_hu": volume.is_hu,
        "description": volume.source.description,
    }


def write_layers(result: SegmentResult, out_dir: Path) -> dict[str, Path]:
    """The viewer's layers beside the result's files: labels as NIfTI (a 2D image's result files hold
    PNG only) and the uncertainty map (only where the model was unsure) when there is a confidence."""
    written: dict[str, Path] = {}
    labels = out_dir / LABELS_FILE
    if not labels.is_file():
        save_labels_nifti(result.segmentation.labels, result.volume, labels)
    written["labels"] = labels
    confidence = result.segmentation.confidence
    if confidence is not None:
        written["uncertainty"] = out_dir / UNCERTAINTY_FILE
        save_label_map(uncertainty_map(confidence), result.volume.affine, written["uncertainty"])
    return written


def result_view(result: SegmentResult, calipers: Sequence[Caliper] = ()) -> dict[str, Any]:
    """The numbers shown beside the viewer: volumes, each lesion with where to go (scanner RAS mm)
    and, given its caliper, where its RECIST axes were measured, the RECIST targets and the model.
    Slice numbers for people are 1-based (``presentation.slice_number``); ``*_slice`` fields stay
    array indices. Nothing here comes from the language model."""
    m = result.measurements
    affine = result.volume.affine
    count = result.volume.shape[0]
    measured = {caliper.lesion_id: caliper.slice_index for caliper in calipers}
    lesions = [
        {
            "lesion_id": lesion.lesion_id,
            "label": lesion_text(lesion),
            "confidence": lesion.confidence,
            "confidence_text": confidence_text(lesion.confidence, lesion.unsure),
            "unsure": lesion.unsure,
            "volume_ml": lesion.volume_ml,
            "longest_diameter_mm": lesion.longest_diameter_mm,
            "perpendicular_diameter_mm": lesion.perpendicular_diameter_mm,
            "largest_slice": lesion.largest_slice,
            "measured_slice": measured.get(lesion.lesion_id, lesion.largest_slice),  # where its axes are
            "slice_number": slice_number(lesion.largest_slice),
            "slice_label": _slice_label(lesion.largest_slice, measured.get(lesion.lesion_id)),
            "ras_mm": ras_mm(affine, (lesion.largest_slice, lesion.centroid_index[1], lesion.centroid_index[2])),
        }
        for lesion in m.lesions
    ]
    targets = target_lesions(m.lesions)
    model = result.model
    shape = result.volume.shape
    return {
        "size": size_summary(m),
        "liver_volume_ml": m.liver_volume_ml,
        "tumour_volume_ml": m.tumour_volume_ml,
        "tumour_burden_pct": m.tumour_burden_pct,
        "lesions": lesions,
        "liver_confidence": m.liver_confidence,
        "recist_targets": [t.lesion_id for t in targets],
        "recist_sum_mm": round(sum(t.longest_diameter_mm for t in targets), 1) if targets else None,
        "model": {"id": model.model_id, "name": model.name, "validation": model.validation_text()},
        "key_slice": result.key_slice,
        "key_slice_text": slice_text(result.key_slice, count),
        "slice_count": count,
        "key_ras_mm": ras_mm(affine, (result.key_slice, shape[1] / 2, shape[2] / 2)),
        "calipers": caliper_view(calipers, affine),
    }


def _slice_label(largest: int, measured: int | None) -> str:
    """The lesion table's slice: its largest slice, and the one its axes were measured on where that differs."""
    text = str(slice_number(largest))
    return text if measured is None or measured == largest else f"{text} (axes on {slice_number(measured)})"


def caliper_view(calipers: Sequence[Caliper], affine: np.ndarray) -> list[dict[str, Any]]:
    """Each lesion's outline and RECIST long and short axes on its measured slice, as scanner RAS mm
    points a viewer maps to its screen (it shows its own orientation), with the slice to go to."""

    def points(zyx_points: Sequence[tuple[float, float]], z: int) -> list[list[float]]:
        return [ras_mm(affine, (z, row, column)) for row, column in zyx_points]

    return [
        {
            "lesion_id": c.lesion_id,
            "slice_index": c.slice_index,
            "slice_number": slice_number(c.slice_index),
            "long_axis_mm": points(c.long_axis, c.slice_index),
            "short_axis_mm": points(c.short_axis, c.slice_index),
            "long_length": c.long_length,
            "short_length": c.short_length,
            "outline_mm": [points(contour, c.slice_index) for contour in c.outline],
        }
        for c in calipers
    ]


def ras_mm(affine: np.ndarray, zyx: tuple[float, float, float]) -> list[float]:
    """Scanner (RAS) mm of a voxel, to 0.01 mm: where the viewer is told to go (it shows its own orientation)."""
    return [round(v, 2) for v in index_to_ras(affine, zyx)]
