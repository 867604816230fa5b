"""One wording for every face: the disclaimer, how volumes are written, the summary line and
the report's sections as plain text and Markdown (the PDF sets the same sections).

The CLI, the window, the web page, report.md and the PDF all take their text from here, so
they cannot disagree on a number's precision or on what a section is called.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from liverhealth.domain import Lesion, Measurements, ModelInfo, PatientInfo, Report, StudyInfo, WorklistResult

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
HEADER_TITLE = "Patient and study"
TECHNIQUE_TITLE = "Technique"
SIGNATURE_TITLE = "Signature"
KEY_IMAGES_TITLE = "Key images"
NOTES_TITLE = "Notes"
TECHNIQUE_PREFIX = "Technique: "  # the findings' first line, the report's Technique section
BLANK = "______________"  # a field the reader fills in
SIGNATURE_BLANK = f"Reviewed and signed by: {BLANK}{BLANK}   Date: {BLANK}"
IMPRESSION_BLANK = f"{BLANK} (the reading radiologist's impression)"
SIDE_RULE = (
    "Side of the liver (approximate): whether the lesion's centre lies to the patient's right or left of "
    "the middle of the liver's right-to-left extent on the slice its diameters were measured on; this is "
    "not the anatomical lobe or segment boundary (Cantlie's line)."
)
NUMBERING_RULE = (
    "Slice numbers count from 1 at the feet end of the axial stack (slice 1 is the lowest); a viewer that "
    "numbers slices by DICOM instance may count from the head end."
)
POSITION_RULE = "Positions are the lesion's centre in scanner coordinates (RAS: +x right, +y anterior, +z head), mm."
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


MOSTLY_UNSURE_FROM = 3  # with fewer lesions, a list of the flagged ones is short enough


def unsure_lesions(m: Measurements) -> tuple[Lesion, ...]:
    """The lesions the model's calibrated flag marks "check first", least confident first."""
    return tuple(lesion for lesion in m.check_first() if lesion.unsure)


def mostly_unsure(m: Measurements) -> bool:
    """Whether the flag marks most of the lesions (then one sentence says so, instead of a tag on each)."""
    flagged = len(unsure_lesions(m))
    return len(m.lesions) >= MOSTLY_UNSURE_FROM and 2 * flagged > len(m.lesions)


def mostly_unsure_text(m: Measurements) -> str:
    """'the model is unsure of 10 of 11 lesions: check all of them'."""
    return f"the model is unsure of {len(unsure_lesions(m))} of {len(m.lesions)} lesions: check all of them"


def check_first_note(m: Measurements) -> str:
    """'; check first (low model confidence): lesion(s) 3, 7' when the model's flag flagged a few, one
    sentence when it flagged most of them, else ''."""
    if mostly_unsure(m):
        return f"; {mostly_unsure_text(m)}"
    flagged = [str(lesion.lesion_id) for lesion in unsure_lesions(m)]
    return f"; check first (low model confidence): lesion(s) {', '.join(flagged)}" if flagged else ""


def confidence_suffix(confidence: float | None, unsure: bool | None) -> str:
    text = confidence_text(confidence, unsure)
    return f" · confidence {text.replace(', ', ' · ')}" if text else ""


def model_text(model: ModelInfo) -> str:
    """The model line every report carries, in words: 'UNet (unet), cross-validated liver Dice 0.93,
    tumour 0.25; see the model card.' (no file hash, no protocol: ``model_footnote`` has it short)."""
    name = model.model_id if model.name in ("", model.model_id) else f"{model.name} ({model.model_id})"
    metrics = model.metrics
    figures = [
        f"{label} {metrics[key]:.2f}"
        for key, label in (("liver_dice", "liver Dice"), ("tumour_dice", "tumour"))
        if isinstance(metrics.get(key), int | float) and not isinstance(metrics.get(key), bool)
    ]
    if not figures:
        return f"{name}, no validation figures; see the model card."
    how = "cross-validated" if "cv_folds" in metrics else "validated"
    return f"{name}, {how} {', '.join(figures)}; see the model card."


def model_footnote(model: ModelInfo, limit: int = 160) -> str:
    """'Validation protocol: patient-level 3-fold cross-validation over ...' in one short line: the
    protocol's first clause, without file paths (the model card gives it whole)."""
    protocol = str(model.metrics.get("protocol") or "").strip()
    if not protocol:
        return ""
    first = re.split(r"[;(]", protocol, maxsplit=1)[0]
    first = re.sub(r"\s+(?:in|from|at)\s+\S*[/\\]\S*", "", first)  # "in ../shared/data": a path, not a fact
    first = " ".join(word for word in first.split() if "/" not in word and "\\" not in word).strip(" ,.")
    if len(first) > limit:
        first = first[: limit - 1].rsplit(" ", 1)[0] + "…"
    return f"Validation protocol: {first}; the model card gives it in full."


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


def _iso(date: str) -> str:
    """A DICOM date (YYYYMMDD) as YYYY-MM-DD; anything else as it is."""
    digits = date.strip()
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}" if len(digits) == 8 and digits.isdigit() else digits


def header_fields(patient: PatientInfo | None = None, study: StudyInfo | None = None) -> list[tuple[str, str]]:
    """The report's header as (label, value) pairs: the study's identity where the report may carry it
    (``patient``/``study`` are given only with include_patient), else a blank for the reader to fill."""
    patient = patient or PatientInfo()
    study = study or StudyInfo()
    values = [
        ("Institution", study.institution),
        ("Patient", patient.name.replace("^", " ").strip()),
        ("Patient ID", patient.patient_id),
        ("Birth date", _iso(patient.birth_date)),
        ("Sex", patient.sex),
        ("Study date", study.date_iso or study.study_date),
        ("Accession", study.accession),
        ("Referring physician", study.referring_physician.replace("^", " ").strip()),
    ]
    return [(label, value or BLANK) for label, value in values]


def header_text(patient: PatientInfo | None = None, study: StudyInfo | None = None) -> str:
    return "\n".join(f"{label}: {value}" for label, value in header_fields(patient, study))


def technique_text(study: StudyInfo, spacing: tuple[float, float, float] | None, description: str) -> str:
    """'CT series, 129 slices of 512×512 (DICOM); phase portal venous; slice thickness 1.6 mm (DICOM
    header); contrast not stated': the phase and contrast as the source states them, the thickness
    from the header, else the grid's slice spacing (said which)."""
    if study.slice_thickness_mm:
        thickness = f"slice thickness {study.slice_thickness_mm:g} mm (DICOM header)"
    elif spacing is not None:
        thickness = f"slice thickness not stated; slice spacing {spacing[0]:.2f} mm (image grid)"
    else:
        thickness = "slice thickness not stated"
    contrast = {"yes": "contrast given", "no": "no contrast"}.get(study.contrast, "contrast not stated")
    return f"{description}; phase {study.phase or 'not stated'}; {thickness}; {contrast}"


def split_findings(findings: str) -> tuple[str, str]:
    """The findings' technique line (the report's Technique section) and the rest."""
    lines = findings.splitlines()
    technique = [line[len(TECHNIQUE_PREFIX) :] for line in lines if line.startswith(TECHNIQUE_PREFIX)]
    rest = [line for line in lines if not line.startswith(TECHNIQUE_PREFIX)]
    return "\n".join(technique), "\n".join(rest)


def impression_text(report: Report) -> str:
    return report.impression or IMPRESSION_BLANK


def signature_text(report: Report) -> str:
    """The signature block: who signed, when, on which revision; else the blank for the reader."""
    return signature_line(report) if report.is_signed else SIGNATURE_BLANK


def draft_section_title(report: Report) -> str:
    """The LLM draft's section: offered as a suggestion for the impression, never as the impression."""
    return f"Suggested impression: {draft_title(report)}"


def notes_text(model: ModelInfo) -> str:
    """The small print: how slices are numbered, the side rule, positions, the model's protocol."""
    footnote = model_footnote(model)
    return "\n".join(part for part in (NUMBERING_RULE, SIDE_RULE, POSITION_RULE, footnote) if part)


@dataclass(frozen=True)
class Section:
    title: str
    body: str


def sections(
    report: Report, model: ModelInfo, patient: PatientInfo | None = None, study: StudyInfo | None = None
) -> list[Section]:
    """The report's text sections, in order (the PDF sets the same, with its tables and key images)."""
    draft = report.draft or report.draft_notice or "No draft."
    if report.draft and report.draft_notice:
        draft = f"{draft}\n\n{report.draft_notice}"
    technique, findings = split_findings(report.findings)
    comparison = [Section(COMPARISON_TITLE, report.comparison)] if report.comparison else []
    return [
        Section(HEADER_TITLE, header_text(patient, study)),
        *([Section(TECHNIQUE_TITLE, technique)] if technique else []),
        Section(FINDINGS_TITLE, findings),
        *comparison,
        Section(IMPRESSION_TITLE, impression_text(report)),
        Section(draft_section_title(report), draft),
        Section(SIGNATURE_TITLE, signature_text(report)),
        Section(MODEL_TITLE, model_text(model)),
        Section(NOTES_TITLE, notes_text(model)),
    ]


def report_text(
    report: Report, model: ModelInfo, patient: PatientInfo | None = None, study: StudyInfo | None = None
) -> str:
    """The report as plain text (the window's and the web page's report panel)."""
    parts = [f"{report_title(report)}\nCreated {report.created_at}.\n{report_banner(report)}"]
    parts += [f"{section.title.upper()}\n{section.body}" for section in sections(report, model, patient, study)]
    return "\n\n".join(parts) + "\n"


def report_markdown(
    report: Report, model: ModelInfo, patient: PatientInfo | None = None, study: StudyInfo | None = None
) -> str:
    """The report as Markdown (report.md, database exports)."""
    parts = [f"# {report_title(report)}\n\nCreated {report.created_at}.\n\n> {report_banner(report)}"]
    for section in sections(report, model, patient, study):
        body = "  \n".join(section.body.splitlines()) if section.title in (HEADER_TITLE, NOTES_TITLE) else section.body
        parts.append(f"## {section.title}\n\n{body}")
    return "\n\n".join(parts) + "\n"


def worklist_state(result: WorklistResult) -> str:
    """A saved result's state in a listing: 'model draft', 'revision 2 (dr.x)' or 'signed by dr.x'."""
    if result.signed_by:
        return f"signed by {result.signed_by}"
    return f"revision {result.revision} ({result.author})" if result.revision else "model draft"
