"""Measured findings: deterministic text built only from the segmentation's measurements.

This part of a report never comes from a language model and is always present.
"""

from __future__ import annotations

from typing import Any

from liverhealth.domain import ModelInfo
from liverhealth.presentation import confidence_text, liver_ml, number, tumour_ml

RECIST_MIN_DIAMETER_MM = 10.0
RECIST_MAX_TARGETS_PER_ORGAN = 2

LIMITS = (
    "Method limits: automatic 2D (2.5D) slice-by-slice segmentation of a single contrast phase. "
    "No LI-RADS category or lesion characterisation can be given from it; lesions smaller than a few "
    "millimetres and lesions of similar density to the liver may be missed; cysts and vessels may be "
    "taken for lesions. All measurements must be checked by a radiologist."
)


def target_lesions(lesions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RECIST 1.1 target lesions: measurable (longest axial diameter ≥ 10 mm), at most two in the liver,
    the largest first."""
    measurable = [lesion for lesion in lesions if (lesion.get("longest_diameter_mm") or 0.0) >= RECIST_MIN_DIAMETER_MM]
    measurable.sort(key=lambda lesion: -lesion["longest_diameter_mm"])
    return measurable[:RECIST_MAX_TARGETS_PER_ORGAN]


def lesion_line(lesion: dict[str, Any]) -> str:
    first, last = lesion["slice_range"]
    size = (
        f"{tumour_ml(lesion.get('volume_ml'))}, longest axial diameter "
        f"{number(lesion.get('longest_diameter_mm'), 'mm')} × "
        f"{number(lesion.get('perpendicular_diameter_mm'), 'mm')}"
    )
    if lesion.get("longest_diameter_mm") is None:
        size = f"{lesion['largest_area_px']} px, longest diameter {lesion['longest_diameter_px']:.0f} px"
    hu = f", mean {lesion['mean_hu']:.0f} HU" if lesion.get("mean_hu") is not None else ""
    sure = confidence_text(lesion.get("confidence"), lesion.get("unsure"))
    sure = f"; model confidence {sure}" if sure else ""
    return f"Lesion {lesion['lesion_id']}: {size}; slices {first}–{last}{hu}{sure}."


def confidence_line(measurements: dict[str, Any]) -> str | None:
    """What the model's confidence says, or None when the result has none: the liver edge's figure,
    the lesions flagged "check first", or that this model's confidence is not calibrated."""
    lesions = measurements.get("lesions", [])
    liver = measurements.get("liver_confidence")
    rated = [lesion for lesion in lesions if lesion.get("confidence") is not None]
    if liver is None and not rated:
        return None
    parts = [f"Model confidence along the liver edge {100 * liver:.0f} %"] if liver is not None else []
    if any(lesion.get("unsure") is not None for lesion in rated):
        flagged = [str(lesion["lesion_id"]) for lesion in rated if lesion.get("unsure")]
        parts.append(f"lesions to check first (low confidence): {', '.join(flagged)}" if flagged else "none flagged")
    elif rated:
        parts.append("this model's lesion confidence is not calibrated, so no lesion is flagged")
    return "; ".join(parts) + "."


def build_findings(measurements: dict[str, Any], model: ModelInfo | None = None, source_description: str = "") -> str:
    """The measured-findings text of a report (plain text, one statement per line)."""
    m = measurements
    lines = []
    if source_description:
        lines.append(f"Study: {source_description}.")
    if model:
        lines.append(f"Segmentation model: {model.name} ({model.model_id}).")
    if m.get("liver_volume_ml") is not None:
        lines.append(f"Liver volume: {liver_ml(m['liver_volume_ml'])} (tumour included).")
    elif m.get("liver_area_mm2") is not None:
        lines.append(f"Liver area on this slice: {number(m['liver_area_mm2'], 'mm²', 0)}.")
    else:
        lines.append(f"Liver area on this image: {m['liver_voxels']} pixels (no pixel size given).")
    lesions = m.get("lesions", [])
    if not m.get("liver_voxels"):
        lines.append("No liver was found by the segmentation.")
    if lesions:
        burden = f"{m.get('tumour_burden_pct', 0.0):.1f} % of the liver"
        volume = f", total {tumour_ml(m['tumour_volume_ml'])}" if m.get("tumour_volume_ml") is not None else ""
        lines.append(f"Focal lesions segmented: {len(lesions)}{volume}; tumour burden {burden}.")
        lines.extend(lesion_line(lesion) for lesion in lesions)
        targets = target_lesions(lesions)
        if targets:
            total = sum(t["longest_diameter_mm"] for t in targets)
            names = ", ".join(f"lesion {t['lesion_id']} ({t['longest_diameter_mm']:.1f} mm)" for t in targets)
            lines.append(
                f"RECIST 1.1 target lesions (≥ 10 mm, at most two in the liver): {names}; "
                f"sum of longest diameters {total:.1f} mm."
            )
        else:
            lines.append("No lesion reaches the RECIST 1.1 measurable size of 10 mm.")
    else:
        lines.append("No focal liver lesion was segmented.")
    sure = confidence_line(m)
    if sure:
        lines.append(sure)
    lines.append(LIMITS)
    return "\n".join(lines)
