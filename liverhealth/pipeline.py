"""The one place that chains load -> segment -> measure -> report -> save/export/reopen.

The CLI calls ``segment_file`` and ``write_outputs``; the GUI calls the same steps one at a
time in worker threads.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import nibabel as nib
import numpy as np

from liverhealth import config, imaging
from liverhealth.analysis import key_slice, measure
from liverhealth.domain import CtVolume, Measurements, Segmentation, SourceInfo
from liverhealth.errors import InputError
from liverhealth.imaging.display import WINDOW_PRESETS, overlay_labels, to_display
from liverhealth.imaging.writers import (
    check_output_folder,
    make_output_folder,
    save_labels_nifti,
    save_labels_png,
    save_png,
    write_bytes_atomic,
)
from liverhealth.inference import Manifest, Segmenter, load_manifest
from liverhealth.inference.engine import CancelCheck, Progress
from liverhealth.redact import scrub_identifiers
from liverhealth.reporting import LlmSettings, ReportContent, build_report, report_markdown, write_pdf
from liverhealth.storage import ReportRecord, Repository, ResultRecord, StoredResult, content_hash

DISCLAIMER = (
    "Draft for radiologist review. LiverHealth is not a medical device; measurements "
    "come from an automatic segmentation and must be checked."
)


@dataclass(frozen=True)
class SegmentResult:
    """Everything one segmentation run produced."""

    volume: CtVolume
    segmentation: Segmentation
    measurements: Measurements
    key_slice: int
    timings: dict[str, float]
    model: dict[str, Any]

    @cached_property
    def content_sha256(self) -> str:
        """Hash of the scan, so the database recognises the same scan again."""
        return content_hash(self.volume.voxels, self.volume.spacing)


def load_input(path: str | Path, pixel_size_mm: float | None = None) -> CtVolume:
    """Load a CT or image; a user-given pixel size applies to rasters only."""
    volume = imaging.load(path)
    if pixel_size_mm is not None:
        if volume.is_hu:
            raise InputError("--pixel-size applies to PNG/JPG/BMP/TIFF images; this input carries its own spacing.")
        volume = imaging.with_pixel_size(volume, pixel_size_mm)
    return volume


def segment_volume(
    volume: CtVolume,
    manifest: Manifest,
    model_id: str | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    load_s: float = 0.0,
) -> SegmentResult:
    """Segment and measure a loaded volume."""
    started = time.perf_counter()
    segmentation = Segmenter(manifest).segment(volume, model_id, progress=progress, cancel=cancel)
    measurements = measure(volume, segmentation.labels)
    spec = manifest.get(segmentation.model_id)
    timings = {
        "load_s": round(load_s, 4),
        **segmentation.timings,
        "measure_s": round(time.perf_counter() - started - segmentation.timings["inference_s"], 4),
    }
    timings["total_s"] = round(load_s + time.perf_counter() - started, 4)
    model = {
        "id": spec.model_id,
        "name": spec.name,
        "architecture": spec.architecture,
        "sha256": spec.sha256,
        "metrics": spec.metrics,
    }
    return SegmentResult(volume, segmentation, measurements, key_slice(segmentation.labels), timings, model)


def segment_file(
    path: str | Path,
    model_id: str | None = None,
    models_dir: Path | None = None,
    pixel_size_mm: float | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> SegmentResult:
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
        "input": {
            **volume.source.to_dict(),
            "shape_zyx": list(volume.shape),
            "spacing_zyx_mm": list(volume.spacing) if volume.spacing else None,
            "is_hu": volume.is_hu,
            "affine": np.asarray(volume.affine).tolist(),
            "content_sha256": result.content_sha256,
        },
        "key_slice": result.key_slice,
        "measurements": result.measurements.to_dict(),
        "timings": result.timings,
    }


def overlay_png(result: SegmentResult) -> bytes:
    """The overlay picture as PNG bytes (for the database and reports)."""
    return _png(overlay_image(result))


def result_record(result: SegmentResult) -> ResultRecord:
    """What the database keeps of a segmentation run."""
    volume = result.volume
    return ResultRecord(
        labels=result.segmentation.labels,
        model_id=result.model["id"],
        model_sha256=result.model["sha256"],
        measurements=result.measurements.to_dict(),
        timings=result.timings,
        source=volume.source,
        spacing=volume.spacing,
        content_sha256=result.content_sha256,
        affine=volume.affine,
        overlay_png=overlay_png(result),
        patient=volume.patient,
    )


def save_result(
    result: SegmentResult, db_url: str | None = None, store_patient: bool = False, report: ReportRecord | None = None
) -> tuple[int, str]:
    """Save a result to the database (created on first use); returns (result id, where)."""
    repository = Repository(db_url)
    try:
        repository.init()
        return repository.save(result_record(result), report, store_patient), repository.where
    finally:
        repository.close()


def write_outputs(result: SegmentResult, out_dir: str | Path) -> dict[str, Path]:
    """Write labels, overlay.png and, last, measurements.json into ``out_dir``; return their paths.

    Each file is written whole or not at all, and measurements.json (which makes a folder a
    complete result for `db save`) goes last, after the old one is removed: an interrupted run
    never leaves a folder that looks complete.
    """
    out = make_output_folder(check_output_folder(Path(out_dir)))
    (out / "measurements.json").unlink(missing_ok=True)
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
    write_bytes_atomic(written["measurements"], json.dumps(measurements_document(result), indent=2).encode("utf-8"))
    return written


def record_from_outputs(out_dir: str | Path) -> ResultRecord:
    """Rebuild a database record from a `segment` output folder (to retry a failed save)."""
    out = Path(out_dir)
    try:
        doc = json.loads((out / "measurements.json").read_text(encoding="utf-8"))
        if (out / "labels.nii.gz").is_file():
            labels = np.asarray(nib.load(str(out / "labels.nii.gz")).dataobj, dtype=np.uint8).transpose(2, 1, 0)
        else:
            labels = cv2.imread(str(out / "labels.png"), cv2.IMREAD_UNCHANGED)[np.newaxis]
        overlay = (out / "overlay.png").read_bytes() if (out / "overlay.png").is_file() else None
        source_fields = {
            k: doc["input"][k] for k in ("format", "path", "description", "slice_count", "series_uid", "modality")
        }
        spacing = doc["input"]["spacing_zyx_mm"]
        _check_labels_fit(out, labels, doc)
        return ResultRecord(
            labels=np.ascontiguousarray(labels),
            model_id=doc["model"]["id"],
            model_sha256=doc["model"]["sha256"],
            measurements=doc["measurements"],
            timings=doc["timings"],
            source=SourceInfo(**source_fields, notes=tuple(doc["input"].get("notes", ()))),
            spacing=tuple(spacing) if spacing else None,
            content_sha256=doc["input"]["content_sha256"],
            affine=np.asarray(doc["input"]["affine"]),
            overlay_png=overlay,
        )
    except (
        OSError,
        EOFError,
        zlib.error,
        nib.filebasedimages.ImageFileError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(
            f"{out} is not a complete, readable `liverhealth segment` output folder ({reason}). Segment the CT again."
        ) from exc


def _check_labels_fit(out: Path, labels: np.ndarray, doc: dict[str, Any]) -> None:
    """Refuse an output folder whose label map is not the one its measurements.json describes."""
    measured = doc["measurements"]
    shape = tuple(doc["input"]["shape_zyx"])
    liver = int(np.count_nonzero(labels > 0))
    tumour = int(np.count_nonzero(labels == 2))
    if labels.shape != shape or liver != measured["liver_voxels"] or tumour != measured["tumour_voxels"]:
        raise InputError(
            f"{out}: the label map does not fit measurements.json (shape {labels.shape} against "
            f"{shape}, {liver} liver and {tumour} tumour voxels against {measured['liver_voxels']} and "
            f"{measured['tumour_voxels']}); it was changed after the run. Segment the CT again."
        )


def _png(image: np.ndarray) -> bytes:
    array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buffer = cv2.imencode(".png", array)
    return buffer.tobytes() if ok else b""


def key_slice_strip(result: SegmentResult, count: int = 5, width: int = 160) -> list[tuple[int, bytes]]:
    """Small overlay pictures of slices spread over the liver (for the report's strip)."""
    labels = result.segmentation.labels
    present = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    if labels.shape[0] < 2 or present.size == 0:
        return []
    picks = np.unique(np.linspace(present[0], present[-1], min(count, present.size)).round().astype(int))
    strip = []
    for z in picks:
        image = overlay_image(result, int(z))
        height = round(image.shape[0] * width / image.shape[1])
        strip.append((int(z), _png(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))))
    return strip


def make_report(
    result: SegmentResult,
    settings: LlmSettings | None = None,
    use_llm: bool = True,
    on_text: Callable[[str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    include_patient: bool = False,
) -> ReportContent:
    """Findings + LLM draft for a result, with everything the PDF shows."""
    volume = result.volume
    slice_png = _png(to_display(volume.voxels[result.key_slice], volume.is_hu, WINDOW_PRESETS["abdomen"]))
    overlay = overlay_png(result)
    measurements = result.measurements.to_dict()
    study = scrub_identifiers(
        f"{volume.source.description} ({volume.source.format}); key slice {result.key_slice}", volume.patient
    )
    report = build_report(measurements, result.model, study, slice_png, overlay, settings, use_llm, on_text, cancel)
    return ReportContent(
        report=report,
        measurements=measurements,
        model=result.model,
        study=study,
        slice_png=slice_png,
        overlay_png=overlay,
        key_slices=key_slice_strip(result),
        patient=volume.patient if include_patient else None,
    )


def write_report(content: ReportContent, out_dir: str | Path) -> dict[str, Path]:
    """Write report.pdf and report.md into ``out_dir``."""
    out = Path(out_dir)
    paths = {"pdf": out / "report.pdf", "markdown": out / "report.md"}
    write_bytes_atomic(paths["pdf"], write_pdf(content))
    write_bytes_atomic(paths["markdown"], report_markdown(content.report, content.model).encode("utf-8"))
    return paths


def report_record(content: ReportContent) -> ReportRecord:
    """What the database keeps of a report."""
    report = content.report
    return ReportRecord(
        findings_text=report.findings,
        draft_text=report.draft,
        draft_notice=report.draft_notice,
        llm_endpoint=report.draft_endpoint,
        llm_model=report.draft_model,
        pdf=write_pdf(content),
    )


def reopen_result(stored: StoredResult) -> SegmentResult:
    """A saved result back in the workstation: its CT reloaded from where it was read, checked
    to be the same scan, with the saved labels (measurements recomputed from them)."""
    path = stored.study.get("source_path")
    if not path or not Path(path).exists():
        raise InputError(
            f"The CT of saved result {stored.summary.result_id} is no longer at {path or 'a known '}"
            f"{'' if path else 'place'}; its labels, measurements and reports are still in the "
            "database (`liverhealth db export`)."
        )
    volume = load_input(path)
    if content_hash(volume.voxels, volume.spacing) != stored.study["content_sha256"]:
        raise InputError(
            f"The CT at {path} has changed since result {stored.summary.result_id} was saved; "
            "the saved labels do not belong to it."
        )
    segmentation = Segmentation(
        labels=stored.labels, model_id=stored.summary.model_id, model_sha256=stored.model_sha256, timings=stored.timings
    )
    labels = stored.labels
    model = {
        "id": stored.summary.model_id,
        "name": stored.summary.model_id,
        "sha256": stored.model_sha256,
        "metrics": {},
    }
    return SegmentResult(volume, segmentation, measure(volume, labels), key_slice(labels), stored.timings, model)
