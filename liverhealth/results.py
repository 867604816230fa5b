"""A segmentation result and everything made from it: its pictures, its measurements
document, the output folder (written and read back), the report content and the database
records. Plain functions of values; ``liverhealth.workflow`` chains them for every face.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import nibabel as nib
import numpy as np

from liverhealth.analysis import key_slice
from liverhealth.analysis.caliper import Caliper, lesion_calipers
from liverhealth.analysis.recist import target_lesions
from liverhealth.documents import (
    read_report_document,
    read_result_document,
    read_revision,
    report_document,
    result_document,
)
from liverhealth.domain import (
    CtVolume,
    Label,
    Measurements,
    ModelInfo,
    PatientInfo,
    Report,
    Revision,
    Segmentation,
    StudyInfo,
    StudyRef,
)
from liverhealth.errors import InputError
from liverhealth.imaging.display import WINDOW_PRESETS, overlay_labels, to_display
from liverhealth.imaging.writers import (
    check_output_folder,
    make_output_folder,
    read_label_map,
    save_label_map,
    save_labels_png,
    write_bytes_atomic,
)
from liverhealth.presentation import slice_text, technique_text
from liverhealth.redact import scrub_identifiers
from liverhealth.reporting import (
    KeyImage,
    LesionPlace,
    LlmSettings,
    ReportContent,
    build_findings,
    build_report,
    lesion_places,
    report_markdown,
)
from liverhealth.storage import ResultRecord, StoredReport, StoredResult, content_hash
from liverhealth.text import one_line


@dataclass(frozen=True)
class SegmentResult:
    """Everything one segmentation run produced."""

    volume: CtVolume
    segmentation: Segmentation
    measurements: Measurements
    key_slice: int
    timings: dict[str, float]
    model: ModelInfo
    revision: Revision | None = None  # a reader's revision (None: the model's own labels)
    reader_drawn: np.ndarray | None = field(default=None, repr=False, compare=False)  # bool, edited voxels

    @cached_property
    def content_sha256(self) -> str:
        """Hash of the scan, so the database recognises the same scan again."""
        return content_hash(self.volume.voxels, self.volume.spacing)

    @cached_property
    def study(self) -> StudyRef:
        """The CT this result lies on, as files and the database keep it (no pixels, no patient)."""
        volume = self.volume
        return StudyRef(volume.source, volume.shape, volume.spacing, volume.affine, volume.is_hu, self.content_sha256)

    @cached_property
    def overlay_rgb(self) -> np.ndarray:
        """The key slice with the label overlay (made once: files, database and report share it)."""
        return overlay_image(self)

    @cached_property
    def overlay_png(self) -> bytes:
        return png_bytes(self.overlay_rgb)


def overlay_image(result: SegmentResult, z: int | None = None, alpha: float = 0.4) -> np.ndarray:
    """RGB picture of slice ``z`` (default: the key slice) with the label overlay."""
    z = result.key_slice if z is None else z
    grey = to_display(result.volume.voxels[z], result.volume.is_hu, WINDOW_PRESETS["abdomen"])
    return overlay_labels(grey, result.segmentation.labels[z], alpha)


def measurements_document(result: SegmentResult) -> dict[str, Any]:
    """The content of measurements.json (no patient identifiers)."""
    return result_document(
        result.study, result.model, result.measurements, result.key_slice, result.timings, revision=result.revision
    )


def result_record(result: SegmentResult, owner: str | None = None) -> ResultRecord:
    """What the database keeps of a segmentation run (``owner``: the web account saving it)."""
    volume = result.volume
    return ResultRecord(
        labels=result.segmentation.labels,
        model=result.model,
        measurements=result.measurements,
        timings=result.timings,
        source=volume.source,
        spacing=volume.spacing,
        content_sha256=result.content_sha256,
        affine=volume.affine,
        overlay_png=result.overlay_png,
        patient=volume.patient,
        owner=owner,
        confidence=result.segmentation.confidence,
        revision=result.revision,
        reader_drawn=result.reader_drawn,
        study_info=volume.study,
    )


def write_outputs(result: SegmentResult, out_dir: str | Path) -> dict[str, Path]:
    """Write labels, overlay.png and, last, measurements.json into ``out_dir``; return their paths."""
    return _write_result_files(
        Path(out_dir),
        result.segmentation.labels,
        result.volume.affine,
        result.segmentation.confidence,
        result.overlay_png,
        measurements_document(result),
        result.reader_drawn,
    )


def export_saved(stored: StoredResult, out_dir: str | Path, include_patient: bool = False) -> dict[str, Path]:
    """A saved result back to files, as `segment` writes them (so `db save` takes the folder again):
    labels, confidence, overlay.png, each report (report.pdf/.md/.json, then report_2.*, ...) and,
    last, measurements.json naming the saved result. With ``include_patient`` the Markdown
    reports' header carries the identity the database kept (clinical sites), else blanks; the PDFs
    are the saved ones, as they were signed or drafted."""
    patient, study = (stored.patient_info, stored.study_info) if include_patient else (None, None)
    out = make_output_folder(check_output_folder(Path(out_dir)))
    document = result_document(
        stored.study,
        stored.model,
        stored.measurements,
        key_slice(stored.labels),
        stored.timings,
        stored.summary.result_id,
        stored.revision,
    )
    (out / "measurements.json").unlink(missing_ok=True)
    written: dict[str, Path] = {}
    for index, saved in enumerate(stored.reports, start=1):
        suffix = "" if index == 1 else f"_{index}"
        written |= {
            f"{key}{suffix}": path
            for key, path in _write_report_files(
                out, saved.report, stored.model, saved.pdf, suffix, patient, study
            ).items()
        }
    affine = stored.study.affine if stored.study.affine is not None else np.eye(4)
    return {
        **written,
        **_write_result_files(
            out, stored.labels, affine, stored.confidence, stored.overlay_png, document, stored.reader_drawn
        ),
    }


READER_DRAWN = "reader_drawn.nii.gz"  # 1 where a reader edited the labels (a revision's folder only)


def _write_result_files(
    out_dir: Path,
    labels: np.ndarray,
    affine: np.ndarray,
    confidence: np.ndarray | None,
    overlay_png: bytes | None,
    document: dict[str, Any],
    reader_drawn: np.ndarray | None = None,
) -> dict[str, Path]:
    """The one writer of a result folder. Each file is written whole or not at all, and
    measurements.json (which makes a folder a complete result for `db save`) goes last, after the
    old one is removed: an interrupted run never leaves a folder that looks complete."""
    out = make_output_folder(check_output_folder(out_dir))
    (out / "measurements.json").unlink(missing_ok=True)
    written: dict[str, Path] = {}
    if labels.shape[0] == 1:
        written["labels"] = out / "labels.png"
        save_labels_png(labels[0], written["labels"])
    else:
        written["labels"] = out / "labels.nii.gz"
        save_label_map(labels, affine, written["labels"])
    if confidence is not None:
        written["confidence"] = out / "confidence.nii.gz"
        save_label_map(confidence, affine, written["confidence"])
    else:
        (out / "confidence.nii.gz").unlink(missing_ok=True)
    if reader_drawn is not None and reader_drawn.any():
        written["reader_drawn"] = out / READER_DRAWN
        save_label_map(reader_drawn.astype(np.uint8), affine, written["reader_drawn"])
    else:
        (out / READER_DRAWN).unlink(missing_ok=True)
    if overlay_png:
        written["overlay"] = out / "overlay.png"
        write_bytes_atomic(written["overlay"], overlay_png)
    written["measurements"] = out / "measurements.json"
    write_bytes_atomic(written["measurements"], json.dumps(document, indent=2).encode("utf-8"))
    return written


def record_from_outputs(out_dir: str | Path) -> ResultRecord:
    """Rebuild a database record from a `segment` (or `db export`) output folder, to save it again."""
    out = Path(out_dir)
    try:
        document = json.loads((out / "measurements.json").read_text(encoding="utf-8"))
        study, model, measurements, timings = read_result_document(document)
        if (out / "labels.nii.gz").is_file():
            labels, affine = read_label_map(out / "labels.nii.gz")
            if study.affine is not None and not np.allclose(affine, study.affine, atol=1e-3):
                raise ValueError("labels.nii.gz is not on the grid measurements.json describes")
        else:
            labels = cv2.imread(str(out / "labels.png"), cv2.IMREAD_UNCHANGED)[np.newaxis]
        overlay = (out / "overlay.png").read_bytes() if (out / "overlay.png").is_file() else None
        confidence = read_label_map(out / "confidence.nii.gz")[0] if (out / "confidence.nii.gz").is_file() else None
        reader_drawn = read_label_map(out / READER_DRAWN)[0] > 0 if (out / READER_DRAWN).is_file() else None
        _check_labels_fit(out, labels, study, measurements)
        return ResultRecord(
            labels=np.ascontiguousarray(labels),
            model=model,
            measurements=measurements,
            timings=timings,
            source=study.source,
            spacing=study.spacing,
            content_sha256=study.content_sha256,
            affine=study.affine,
            overlay_png=overlay,
            confidence=confidence if confidence is not None and confidence.shape == labels.shape else None,
            revision=read_revision(document),
            reader_drawn=reader_drawn if reader_drawn is not None and reader_drawn.shape == labels.shape else None,
        )
    except _UNREADABLE as exc:
        raise _incomplete(out, exc) from exc


def reports_from_outputs(out_dir: str | Path) -> tuple[StoredReport, ...]:
    """The reports a folder holds (report.json + report.pdf, then report_2.*, ... from a db export),
    none when the run made none; a report kept without a PDF comes back without one, and one whose
    PDF is not the one its JSON names is refused."""
    out = Path(out_dir)
    reports = []
    for index in range(1, 1000):
        suffix = "" if index == 1 else f"_{index}"
        if not (out / f"report{suffix}.json").is_file():
            break
        try:
            document = json.loads((out / f"report{suffix}.json").read_text(encoding="utf-8"))
            report, pdf_sha256 = read_report_document(document)
            pdf = (out / f"report{suffix}.pdf").read_bytes() if pdf_sha256 else None
            if pdf is not None and hashlib.sha256(pdf).hexdigest() != pdf_sha256:
                raise ValueError(f"report{suffix}.pdf is not the PDF report{suffix}.json describes")
        except _UNREADABLE as exc:
            raise _incomplete(out, exc) from exc
        reports.append(StoredReport(report, pdf))
    return tuple(reports)


_UNREADABLE = (
    OSError,
    EOFError,
    zlib.error,
    nib.filebasedimages.ImageFileError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
)


def _incomplete(out: Path, exc: Exception) -> InputError:
    reason = one_line(exc, 200)
    return InputError(
        f"{out} is not a complete, readable `liverhealth segment` output folder ({reason}). Segment the CT again."
    )


def _check_labels_fit(out: Path, labels: np.ndarray, study: StudyRef, measured: Measurements) -> None:
    """Refuse an output folder whose label map is not the one its measurements.json describes."""
    liver = int(np.count_nonzero(labels > Label.BACKGROUND))
    tumour = int(np.count_nonzero(labels == Label.TUMOUR))
    if labels.shape != study.shape or liver != measured.liver_voxels or tumour != measured.tumour_voxels:
        raise InputError(
            f"{out}: the label map does not fit measurements.json (shape {labels.shape} against "
            f"{study.shape}, {liver} liver and {tumour} tumour voxels against {measured.liver_voxels} and "
            f"{measured.tumour_voxels}); it was changed after the run. Segment the CT again."
        )


def png_bytes(image: np.ndarray) -> bytes:
    array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buffer = cv2.imencode(".png", array)
    return buffer.tobytes() if ok else b""


KEY_IMAGE_PX = 360  # each key image's side in pixels (about 85 mm wide on the page)
KEY_IMAGE_MIN_VIEW_MM = 50.0  # the narrowest view around a lesion, so its surroundings show
OUTLINE_COLOUR = (255, 221, 0)  # yellow: not a label colour (liver green, tumour red)
LONG_AXIS_COLOUR = (0, 200, 255)
SHORT_AXIS_COLOUR = (255, 255, 255)


def _lesion_picture(result: SegmentResult, caliper: Caliper) -> tuple[np.ndarray, float]:
    """The overlay of the caliper's slice, cropped around the lesion and enlarged, with its outline
    and RECIST long (cyan) and short (white) axes drawn; and the view's width in pixels of the CT."""
    image = overlay_image(result, caliper.slice_index, alpha=0.25)
    (r0, c0), (r1, c1) = caliper.long_axis
    height, width = image.shape[:2]
    pixel_mm = result.volume.spacing[2] if result.volume.spacing else 1.0
    half = max(KEY_IMAGE_MIN_VIEW_MM / pixel_mm / 2, 1.6 * float(np.hypot(r1 - r0, c1 - c0)))
    half = min(half, max(height, width) / 2)
    top = int(np.clip(round((r0 + r1) / 2 - half), 0, max(height - 2 * half, 0)))
    left = int(np.clip(round((c0 + c1) / 2 - half), 0, max(width - 2 * half, 0)))
    size = round(2 * half)
    crop = image[top : top + size, left : left + size]
    scale = KEY_IMAGE_PX / max(crop.shape[:2])
    picture = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)), cv2.INTER_LINEAR)

    def at(point: tuple[float, float]) -> tuple[int, int]:  # (row, column) on the CT -> cv2 (x, y), 4 bits fraction
        return (round(((point[1] - left) + 0.5) * scale * 16 - 8), round(((point[0] - top) + 0.5) * scale * 16 - 8))

    for contour in caliper.outline:
        points = np.array([at(point) for point in contour], dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(picture, [points], True, OUTLINE_COLOUR, 1, cv2.LINE_AA, shift=4)
    for (start, end), colour in ((caliper.long_axis, LONG_AXIS_COLOUR), (caliper.short_axis, SHORT_AXIS_COLOUR)):
        cv2.line(picture, at(start), at(end), colour, 2, cv2.LINE_AA, shift=4)
        for point in (start, end):
            cv2.circle(picture, at(point), 3 * 16, colour, 1, cv2.LINE_AA, shift=4)
    cv2.putText(picture, str(caliper.lesion_id), (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, OUTLINE_COLOUR, 2, cv2.LINE_AA)
    return picture, float(crop.shape[1])


def key_images(result: SegmentResult, calipers: tuple[Caliper, ...]) -> list[KeyImage]:
    """The report's key images: each RECIST target lesion (else the two largest lesions) outlined
    with its long and short axes on the slice they were measured on."""
    lesions = result.measurements.lesions
    shown = target_lesions(lesions) or lesions[:2]
    by_id = {caliper.lesion_id: caliper for caliper in calipers}
    spacing = result.volume.spacing
    unit = "mm" if spacing else "px"
    images = []
    for lesion in shown:
        caliper = by_id.get(lesion.lesion_id)
        if caliper is None:
            continue
        picture, view_px = _lesion_picture(result, caliper)
        view = f"; view {view_px * spacing[2]:.0f} mm across" if spacing else ""
        caption = (
            f"Lesion {lesion.lesion_id}, {slice_text(caliper.slice_index)}: "
            f"{caliper.long_length:.1f} × {caliper.short_length:.1f} {unit}{view}"
            + ('; flagged "check first"' if lesion.unsure else "")
        )
        images.append(KeyImage(caption, png_bytes(picture)))
    return images


def study_line(result: SegmentResult) -> str:
    """The report's Technique line: the study as the source describes it, the phase, slice thickness
    and contrast (patient identifiers scrubbed, as it goes to the LLM)."""
    volume = result.volume
    technique = technique_text(
        volume.study.technique(), volume.spacing, f"{volume.source.description} ({volume.source.format})"
    )
    return scrub_identifiers(technique, volume.patient)


def result_places(result: SegmentResult, calipers: tuple[Caliper, ...] | None = None) -> dict[int, LesionPlace]:
    """Each lesion's measured slice and side of the liver, from the label map."""
    labels = result.segmentation.labels
    if calipers is None:
        calipers = lesion_calipers(labels, result.volume.spacing)
    return lesion_places(labels, result.volume.affine, result.measurements.lesions, calipers)


def findings_text(result: SegmentResult) -> str:
    """The measured findings of a result, as its report starts (no LLM)."""
    return build_findings(result.measurements, result.model, study_line(result), result_places(result))


def make_report(
    result: SegmentResult,
    settings: LlmSettings | None = None,
    use_llm: bool = True,
    on_text: Callable[[str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    include_patient: bool = False,
    comparison: str | None = None,
) -> ReportContent:
    """Findings + LLM draft for a result (and its comparison with a prior study, if any), with
    everything the PDF shows."""
    volume = result.volume
    slice_png = png_bytes(to_display(volume.voxels[result.key_slice], volume.is_hu, WINDOW_PRESETS["abdomen"]))
    measurements = result.measurements
    study = study_line(result)
    calipers = lesion_calipers(result.segmentation.labels, volume.spacing)
    places = result_places(result, calipers)
    report = build_report(
        measurements,
        result.model,
        study,
        slice_png,
        result.overlay_png,
        settings,
        use_llm,
        on_text,
        cancel,
        comparison,
        places,
    )
    return ReportContent(
        report=report,
        measurements=measurements,
        model=result.model,
        study=volume.source.description,
        slice_png=slice_png,
        overlay_png=result.overlay_png,
        key_images=key_images(result, calipers),
        places=places,
        key_slice=result.key_slice,
        slice_count=volume.shape[0],
        patient=volume.patient if include_patient else None,
        study_info=volume.study if include_patient else volume.study.technique(),
    )


def add_report(content: ReportContent, out_dir: str | Path) -> dict[str, Path]:
    """Write a report beside the ones a folder holds (report_N.*, N the next free number), leaving
    them as they are; refused when the folder holds a signed report (its result is locked)."""
    out = Path(out_dir)
    existing = reports_from_outputs(out)
    signed = next((r.report for r in existing if r.report.is_signed), None)
    if signed is not None:
        raise InputError(
            f"{out} holds a report signed by {signed.signed_by} on {signed.signed_at}: it is locked. Edit it "
            "(`liverhealth edit`) to make a new revision, and sign that."
        )
    suffix = f"_{len(existing) + 1}" if existing else ""
    return _write_report_files(
        out, content.report, content.model, content.pdf, suffix, content.patient, content.study_info
    )


def write_report(content: ReportContent, out_dir: str | Path) -> dict[str, Path]:
    """Write report.pdf, report.md and report.json (what `db save` reads back) into ``out_dir``."""
    return _write_report_files(
        Path(out_dir), content.report, content.model, content.pdf, "", content.patient, content.study_info
    )


def _write_report_files(
    out: Path,
    report: Report,
    model: ModelInfo,
    pdf: bytes | None,
    suffix: str = "",
    patient: PatientInfo | None = None,
    study: StudyInfo | None = None,
) -> dict[str, Path]:
    """report{suffix}.pdf, .md and, last, .json (the JSON names the PDF by its hash); the Markdown's
    header carries ``patient``/``study`` where given, else blanks for the reader."""
    paths = {"markdown": out / f"report{suffix}.md", "report": out / f"report{suffix}.json"}
    paths["report"].unlink(missing_ok=True)
    if pdf:
        paths["pdf"] = out / f"report{suffix}.pdf"
        write_bytes_atomic(paths["pdf"], pdf)
    write_bytes_atomic(paths["markdown"], report_markdown(report, model, patient, study).encode("utf-8"))
    document = report_document(report, model, hashlib.sha256(pdf).hexdigest() if pdf else None)
    write_bytes_atomic(paths["report"], json.dumps(document, indent=2).encode("utf-8"))
    return paths


def report_record(content: ReportContent) -> StoredReport:
    """What the database keeps of a report."""
    return StoredReport(content.report, content.pdf)


def write_dicom(
    result: SegmentResult,
    out_dir: str | Path,
    report: ReportContent | None = None,
    model_labels: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write seg.dcm (DICOM SEG on the source slices), sr.dcm (TID 1500 measurements referencing it)
    and, with a report, report.dcm (the PDF as an Encapsulated PDF instance), all in the CT's study.

    A reader's revision is its own SEG series (segments SEMIAUTOMATIC or MANUAL where the reader
    changed them) whose SR names the reader as observer (verified when the report is signed); with
    ``model_labels`` the model's own SEG is written beside it as model_seg.dcm and referenced."""
    from liverhealth.imaging.dicom_seg import SegEdit, build_seg, derived_object_errors, save_dataset
    from liverhealth.reporting.dicom_pdf import build_encapsulated_pdf
    from liverhealth.reporting.dicom_sr import build_sr

    out = make_output_folder(check_output_folder(Path(out_dir)))
    paths: dict[str, Path] = {}
    edit, reader = None, None
    if result.revision is not None:
        model_seg = None
        if model_labels is not None:
            model_seg = build_seg(result.volume, model_labels, result.model)
            paths["model_seg"] = out / "model_seg.dcm"
            save_dataset(model_seg, paths["model_seg"])
        drawn = result.reader_drawn if result.reader_drawn is not None else np.zeros(result.volume.shape, bool)
        reader = result.revision.author
        edit = SegEdit(result.revision.number, reader, drawn, model_seg)
    seg = build_seg(result.volume, result.segmentation.labels, result.model, edit)
    signed = report is not None and report.report.is_signed
    with derived_object_errors(result.volume, "SR"):
        sr = build_sr(
            seg, result.measurements, result.model.model_id, report.report.signed_by if signed else reader, signed
        )
    paths |= {"seg": out / "seg.dcm", "sr": out / "sr.dcm"}
    save_dataset(seg, paths["seg"])
    save_dataset(sr, paths["sr"])
    if report is not None:
        paths["report_dicom"] = out / "report.dcm"
        save_dataset(build_encapsulated_pdf(report.pdf, seg), paths["report_dicom"])
    return paths


def reference_dice(result: SegmentResult, reference_seg: str | Path) -> dict[str, float | None]:
    """Dice of the result against a reference DICOM SEG on the same CT (liver: labels > 0; tumour: 2);
    None for a class the reference does not hold."""
    from liverhealth.analysis.metrics import dice
    from liverhealth.imaging.dicom_seg import read_seg_labels

    reference = read_seg_labels(Path(reference_seg), result.volume)
    labels = result.segmentation.labels
    has_tumour = bool(np.any(reference == 2))
    return {
        "liver_dice": round(dice(labels > 0, reference > 0), 4),
        "tumour_dice": round(dice(labels == 2, reference == 2), 4) if has_tumour else None,
    }
