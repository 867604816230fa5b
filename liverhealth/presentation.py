"""One wording for every face: the disclaimer, how volumes are written, the summary line and
the report's sections as plain text and Markdown (the PDF sets the same sections).

The CLI, the window, the web page, report.md and the PDF all take their text from here, so
they cannot disagree on a number's precision or on what a section is called.
"""

from __future__ import annotations

from dataclasses import dataclass

from liverhealth.domain import Lesion, Measurements, ModelInfo, Report

DISCLAIMER = (
    "Draft for radiologist review. LiverHealth is not a medical device: for research and assistance "
    "only. Measurements come from an automatic segmentation, never from the language model, and "
    "must be checked by a radiologist."
)
NOT_A_DEVICE = (
    "LiverHealth is not a medical device: for research and assistance only. Measurements come from "
    "the segmentation as the signing reader corrected it, never from the language model."
)
TITLE = "LiverHealth liver CT report (draft)"
SIGNED_TITLE = "LiverHealth liver CT report"
FINDINGS_TITLE = "Measured findings"
IMPRESSION_TITLE = "Impression"
COMPARISON_TITLE = "Comparison with prior"
MODEL_TITLE = "Segmentation model"
LIVER_ML_DIGITS = 1
TUMOUR_ML_DIGITS = 2  # small lesions: 0.05 mL matters


def slice_number(index: int) -> int:
    """The slice number people see for array index ``index``: every face and file counts slices
    from 1 at the feet end of the axial stack (the array's z order, feet -> head), so slice
    ``index + 1`` of ``count``. The DICOM instance of that slice is named beside it where known
    (``slice_text``), since a series' InstanceNumber may run head -> feet or skip."""
    return int(index) + 1


def slice_text(index: int, count: int | None = None, instance: int | None = None) -> str:
    """'slice 66 of 129 (DICOM instance 64)', without the parts that are unknown."""
    text = f"slice {slice_number(index)}" + (f" of {count}" if count else "")
    return text + (f" (DICOM instance {instance})" if instance is not None else "")


def number(value: float | None, unit: str, digits: int = 1) -> str:
    """'12.3 mL', or 'not measurable' without a value."""
    return f"{value:.{digits}f} {unit}" if value is not None else "not measurable"


def liver_ml(value: float | None) -> str:
    return number(value, "mL", LIVER_ML_DIGITS)


def tumour_ml(value: float | None) -> str:
    return number(value, "mL", TUMOUR_ML_DIGITS)


def size_summary(m: Measurements) -> str:
    """Liver and tumour size in one phrase (volumes, else areas, else pixels)."""
    if m.liver_volume_ml is not None:
        return (
            f"liver {liver_ml(m.liver_volume_ml)}, tumour {tumour_ml(m.tumour_volume_ml)} ({m.tumour_burden_pct:.1f} %)"
        )
    if m.liver_area_mm2 is not None:
        return f"liver {m.liver_area_mm2:.0f} mm², tumour {m.tumour_area_mm2:.0f} mm²"
    return f"liver {m.liver_voxels} px, tumour {m.tumour_voxels} px"


def lesion_label(
    lesion_id: int,
    volume_ml: float | None,
    largest_area_px: int,
    diameter_mm: float | None,
    confidence: float | None = None,
    unsure: bool | None = None,
) -> str:
    """'Lesion 2: 1.25 mL, 14.2 mm · confidence 41 % · check first' (the lesion lists of the window
    and the web page)."""
    size = tumour_ml(volume_ml) if volume_ml is not None else f"{largest_area_px} px"
    diameter = f", {diameter_mm:.1f} mm" if diameter_mm is not None else ""
    return f"Lesion {lesion_id}: {size}{diameter}{confidence_suffix(confidence, unsure)}"


def lesion_text(lesion: Lesion) -> str:
    """``lesion_label`` of a measured lesion."""
    return lesion_label(
        lesion.lesion_id,
        lesion.volume_ml,
        lesion.largest_area_px,
        lesion.longest_diameter_mm,
        lesion.confidence,
        lesion.unsure,
    )


def confidence_text(confidence: float | None, unsure: bool | None) -> str:
    """'41 %, check first', '83 %' or '' (no confidence known). "check first" only where the model's
    confidence was calibrated on held-out patients (``unsure`` is None otherwise)."""
    if confidence is None:
        return ""
    return f"{100 * confidence:.0f} %" + (", check first" if unsure else "")


def check_first_note(m: Measurements) -> str:
    """'; check first (low model confidence): lesions 3, 7' when the model's flag flagged any, else ''."""
    flagged = [str(lesion.lesion_id) for lesion in m.check_first() if lesion.unsure]
    return f"; check first (low model confidence): lesion(s) {', '.join(flagged)}" if flagged else ""


def confidence_suffix(confidence: float | None, unsure: bool | None) -> str:
    text = confidence_text(confidence, unsure)
    return f" · confidence {text.replace(', ', ' · ')}" if text else ""


def model_text(model: ModelInfo) -> str:
    """The model line every report carries: name, id, file hash, validation and its protocol."""
    sha = f", sha256 {model.sha256[:12]}…" if model.sha256 else ""
    return f"{model.name} ({model.model_id}{sha}). Validation: {model.validation_text()}."


def draft_title(report: Report) -> str:
    if report.author:
        return f"Draft text ({report.draft_model or 'no model'}), as edited by {report.author}"
    return f"Machine-written draft ({report.draft_model or 'no model'}), not reviewed by a radiologist"


def report_title(report: Report) -> str:
    return SIGNED_TITLE if report.is_signed else TITLE


def report_banner(report: Report) -> str:
    """What a report is, at its top: the draft disclaimer, or who signed it on which revision (the
    "not a medical device" sentence stays on every report)."""
    if not report.is_signed:
        return DISCLAIMER
    return f"{signature_line(report)} {NOT_A_DEVICE}"


def signature_line(report: Report) -> str:
    """'Reviewed and signed by dr.smith on 2026-12-07 10:40 UTC (result revision 1, reader-edited).'"""
    revision = (
        f"result revision {report.revision}, reader-edited" if report.revision else "the model's segmentation, unedited"
    )
    return f"Reviewed and signed by {report.signed_by} on {report.signed_at} UTC ({revision})."


@dataclass(frozen=True)
class Section:
    title: str
    body: str


def sections(report: Report, model: ModelInfo) -> list[Section]:
    """The report's text sections, in order (the PDF adds images and tables around them)."""
    draft = report.draft or report.draft_notice or "No draft."
    if report.draft and report.draft_notice:
        draft = f"{draft}\n\n{report.draft_notice}"
    comparison = [Section(COMPARISON_TITLE, report.comparison)] if report.comparison else []
    impression = [Section(IMPRESSION_TITLE, report.impression)] if report.impression else []
    return [
        Section(FINDINGS_TITLE, report.findings),
        *comparison,
        *impression,
        Section(draft_title(report), draft),
        Section(MODEL_TITLE, model_text(model)),
    ]


def report_text(report: Report, model: ModelInfo) -> str:
    """The report as plain text (the window's and the web page's report panel)."""
    parts = [f"{report_title(report)}\nCreated {report.created_at}.\n{report_banner(report)}"]
    parts += [f"{section.title.upper()}\n{section.body}" for section in sections(report, model)]
    return "\n\n".join(parts) + "\n"


def report_markdown(report: Report, model: ModelInfo) -> str:
    """The report as Markdown (report.md, database exports)."""
    parts = [f"# {report_title(report)}\n\nCreated {report.created_at}.\n\n> {report_banner(report)}"]
    parts += [f"## {section.title}\n\n{section.body}" for section in sections(report, model)]
    return "\n\n".join(parts) + "\n"
