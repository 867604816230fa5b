"""Measured findings: deterministic text built only from the segmentation's measurements.

This part of a report never comes from a language model and is always present.
"""

from __future__ import annotations

from liverhealth.analysis.recist import MAX_TARGETS, MEASURABLE_MM, target_lesions
from liverhealth.domain import Lesion, Measurements, ModelInfo
from liverhealth.presentation import confidence_text, liver_ml, number, tumour_ml

LIMITS = (
    "Method limits: automatic 2D (2.5D) slice-by-slice segmentation of a single contrast phase. "
    "No LI-RADS category or lesion characterisation can be given from it; lesions smaller than a few "
    "millimetres and lesions of similar density to the liver may be missed; cysts and vessels may be "
    "taken for lesions. All measurements must be checked by a radiologist."
)


def lesion_line(lesion: Lesion) -> str:
    first, last = lesion.slice_range
    size = (
        f"{tumour_ml(lesion.volume_ml)}, longest axial diameter "
        f"{number(lesion.longest_diameter_mm, 'mm')} × {number(lesion.perpendicular_diameter_mm, 'mm')}"
    )
    if lesion.longest_diameter_mm is None:
        size = f"{lesion.largest_area_px} px, longest diameter {lesion.longest_diameter_px:.0f} px"
    hu = f", mean {lesion.mean_hu:.0f} HU" if lesion.mean_hu is not None else ""
    sure = confidence_text(lesion.confidence, lesion.unsure)
    sure = f"; model confidence {sure}" if sure else ""
    return f"Lesion {lesion.lesion_id}: {size}; slices {first}–{last}{hu}{sure}."


def confidence_line(measurements: Measurements) -> str | None:
    """What the model's confidence says, or None when the result has none: the liver edge's figure,
    the lesions flagged "check first", or that this model's confidence is not calibrated."""
    liver = measurements.liver_confidence
    rated = [lesion for lesion in measurements.lesions if lesion.confidence is not None]
    if liver is None and not rated:
        return None
    parts = [f"Model confidence along the liver edge {100 * liver:.0f} %"] if liver is not None else []
    if any(lesion.unsure is not None for lesion in rated):
        flagged = [str(lesion.lesion_id) for lesion in rated if lesion.unsure]
        parts.append(f"lesions to check first (low confidence): {', '.join(flagged)}" if flagged else "none flagged")
    elif rated:
        parts.append("this model's lesion confidence is not calibrated, so no lesion is flagged")
    return "; ".join(parts) + "."


def build_findings(measurements: Measurements, model: ModelInfo | None = None, source_description: str = "") -> str:
    """The measured-findings text of a report (plain text, one statement per line)."""
    m = measurements
    lines = []
    if source_description:
        lines.append(f"Study: {source_description}.")
    if model:
        lines.append(f"Segmentation model: {model.name} ({model.model_id}).")
    if m.liver_volume_ml is not None:
        lines.append(f"Liver volume: {liver_ml(m.liver_volume_ml)} (tumour included).")
    elif m.liver_area_mm2 is not None:
        lines.append(f"Liver area on this slice: {number(m.liver_area_mm2, 'mm²', 0)}.")
    else:
        lines.append(f"Liver area on this image: {m.liver_voxels} pixels (no pixel size given).")
    if not m.liver_voxels:
        lines.append("No liver was found by the segmentation.")
    if m.lesions:
        volume = f", total {tumour_ml(m.tumour_volume_ml)}" if m.tumour_volume_ml is not None else ""
        burden = f"{m.tumour_burden_pct:.1f} % of the liver"
        lines.append(f"Focal lesions segmented: {len(m.lesions)}{volume}; tumour burden {burden}.")
        lines.extend(lesion_line(lesion) for lesion in m.lesions)
        targets = target_lesions(m.lesions)
        if targets:
            total = sum(t.longest_diameter_mm for t in targets)
            names = ", ".join(f"lesion {t.lesion_id} ({t.longest_diameter_mm:.1f} mm)" for t in targets)
            lines.append(
                f"RECIST 1.1 target lesions (≥ {MEASURABLE_MM:g} mm, at most {_TARGETS_WORD} in the liver): {names}; "
                f"sum of longest diameters {total:.1f} mm."
            )
        else:
            lines.append(f"No lesion reaches the RECIST 1.1 measurable size of {MEASURABLE_MM:g} mm.")
    else:
        lines.append("No focal liver lesion was segmented.")
    sure = confidence_line(m)
    if sure:
        lines.append(sure)
    lines.append(LIMITS)
    return "\n".join(lines)


_TARGETS_WORD = {1: "one", 2: "two"}.get(MAX_TARGETS, str(MAX_TARGETS))
