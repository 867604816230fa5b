"""The one place that chains load -> segment -> measure (-> report -> save, as they land).

The CLI calls ``segment_file`` and ``write_outputs``; the GUI calls the same steps one at a
time in worker threads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liverhealth import config, imaging
from liverhealth.analysis import key_slice, measure
from liverhealth.errors import InputError
from liverhealth.imaging.display import WINDOW_PRESETS, overlay_labels, to_display
from liverhealth.imaging.writers import save_labels_nifti, save_labels_png, save_png
from liverhealth.inference import Manifest, Segmenter, load_manifest
from liverhealth.inference.engine import CancelCheck, Progress
from liverhealth.types import CtVolume, Measurements, Segmentation

DISCLAIMER = ("Draft for radiologist review. LiverHealth is not a medical device; measurements "
              "come from an automatic segmentation and must be checked.")


@dataclass(frozen=True)
class SegmentResult:
    """Everything one segmentation run produced."""

    volume: CtVolume
    segmentation: Segmentation
    measurements: Measurements
    key_slice: int
    timings: dict[str, float]
    model: dict[str, Any]


def load_input(path: str | Path, pixel_size_mm: float | None = None) -> CtVolume:
    """Load a CT or image; a user-given pixel size applies to rasters only."""
    volume = imaging.load(path)
    if pixel_size_mm is not None:
        if volume.is_hu:
            raise InputError("--pixel-size applies to PNG/JPG/BMP/TIFF images; this input carries its "
                             "own spacing.")
        volume = imaging.with_pixel_size(volume, pixel_size_mm)
    return volume


def segment_volume(volume: CtVolume, manifest: Manifest, model_id: str | None = None,
                   progress: Progress | None = None, cancel: CancelCheck | None = None,
                   load_s: float = 0.0) -> SegmentResult:
    """Segment and measure a loaded volume."""
    started = time.perf_counter()
    segmentation = Segmenter(manifest).segment(volume, model_id, progress=progress, cancel=cancel)
    measurements = measure(volume, segmentation.labels)
    spec = manifest.get(segmentation.model_id)
    timings = {"load_s": round(load_s, 4), **segmentation.timings,
               "measure_s": round(time.perf_counter() - started - segmentation.timings["inference_s"], 4)}
    timings["total_s"] = round(load_s + time.perf_counter() - started, 4)
    model = {"id": spec.model_id, "name": spec.name, "architecture": spec.architecture,
             "sha256": spec.sha256, "metrics": spec.metrics}
    return SegmentResult(volume, segmentation, measurements, key_slice(segmentation.labels), timings, model)


def segment_file(path: str | Path, model_id: str | None = None, models_dir: Path | None = None,
                 pixel_size_mm: float | None = None, progress: Progress | None = None,
                 cancel: CancelCheck | None = None) -> SegmentResult:
    """Load, segment and measure one input."""
    manifest = load_manifest(models_dir or config.models_dir())
    manifest.get(model_id)  # fail on an unknown model before the slow load
    started = time.perf_counter()
    volume = load_input(path, pixel_size_mm)
    return segment_volume(volume, manifest, model_id, progress, cancel, time.perf_counter() - started)


def overlay_image(result: SegmentResult, z: int | None = None, alpha: float = 0.4) -> np.ndarray:
    """RGB picture of slice ``z`` (default: the key slice) with the label overlay."""
    z = result.key_slice if z is None else z
    grey = to_display(result.volume.voxels[z], result.volume.is_hu, WINDOW_PRESETS["abdomen"])
    return overlay_labels(grey, result.segmentation.labels[z], alpha)


def measurements_document(result: SegmentResult) -> dict[str, Any]:
    """The content of measurements.json (no patient identifiers)."""
    volume = result.volume
    return {
        "liverhealth_measurements": 1,
        "disclaimer": DISCLAIMER,
        "model": result.model,
        "input": {**volume.source.to_dict(), "shape_zyx": list(volume.shape),
                  "spacing_zyx_mm": list(volume.spacing) if volume.spacing else None,
                  "is_hu": volume.is_hu},
        "key_slice": result.key_slice,
        "measurements": result.measurements.to_dict(),
        "timings": result.timings,
    }


def write_outputs(result: SegmentResult, out_dir: str | Path) -> dict[str, Path]:
    """Write labels, measurements.json and overlay.png into ``out_dir``; return their paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the output folder {out}: {exc.strerror or exc}.") from exc
    written: dict[str, Path] = {}
    if result.volume.is_2d:
        written["labels"] = out / "labels.png"
        save_labels_png(result.segmentation.labels[0], written["labels"])
    else:
        written["labels"] = out / "labels.nii.gz"
        save_labels_nifti(result.segmentation.labels, result.volume, written["labels"])
    written["overlay"] = out / "overlay.png"
    save_png(overlay_image(result), written["overlay"])
    written["measurements"] = out / "measurements.json"
    try:
        written["measurements"].write_text(json.dumps(measurements_document(result), indent=2), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Could not write {written['measurements']}: {exc.strerror or exc}.") from exc
    return written
