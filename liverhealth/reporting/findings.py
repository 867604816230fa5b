"""Measured findings: deterministic text built only from the segmentation's measurements.

This part of a report never comes from a language model and is always present. Slices are
numbered as people read them (``presentation.slice_number``: 1-based, feet end first).
"""

from __future__ import annotations

from collections.abc import Mapping

from liverhealth.analysis.recist import MAX_TARGETS, MEASURABLE_MM, target_lesions
from liverhealth.domain import Lesion, Measurements, ModelInfo
from liverhealth.presentation import (
    TECHNIQUE_PREFIX,
    confidence_text,
    liver_ml,
    mostly_unsure,
    mostly_unsure_text,
    number,
    slice_number,
    slice_text,
    tumour_ml,
    unsure_lesions,
)
from liverhealth.reporting.location import LesionPlace

LIMITS = (
    "Method limits: automatic 2D (2.5D) slice-by-slice segmentation of a single contrast phase. "
    "No LI-RADS category or lesion characterisation can be given from it; lesions smaller than a few "
    "millimetres and lesions of similar density to the liver may be missed; cysts and vessels may be "
    "taken for lesions. All measurements must be checked by a radiologist."
)


def slice_span(first: int, last: int) -> str:
    """'slices 52–101' (or 'slice 98'), 1-based, from 0-based array indices."""
    if first == last:
        return f"slice {slice_number(first)}"
    return f"slices {slice_number(first)}–{slice_number(last)}"


def _position(lesion: Lesion, place: LesionPlace | None) -> str:
    parts = [place.side_text] if place is not None and place.side_text else []
    if lesion.centroid_mm is not None:
        x, y, z = lesion.centroid_mm
        parts.append(f"centre (RAS) {x:.0f}, {y:.0f}, {z:.0f} mm")
    return "; ".join(parts)


def lesion_line(lesion: Lesion, place: LesionPlace | None = None, tag_unsure: bool = True) -> str:
    """'Lesion 1: 32.1 × 20.4 mm (RECIST long × short axis, on slice 66 of 129), 5.21 mL, mean 85 HU;
    slices 60–72; right side of the liver (approximate); centre (RAS) 12, -45, 100 mm; ...'."""
    on_slice = f", on {slice_text(place.measured_slice, place.slice_count)}" if place is not None else ""
    if lesion.longest_diameter_mm is None:
        size = f"{lesion.largest_area_px} px, longest diameter {lesion.longest_diameter_px:.0f} px{on_slice}"
    else:
        size = (
            f"{lesion.longest_diameter_mm:.1f} × {number(lesion.perpendicular_diameter_mm, 'mm')} "
            f"(RECIST long × short axis{on_slice}), {tumour_ml(lesion.volume_ml)}"
        )
    hu = f", mean {lesion.mean_hu:.0f} HU" if lesion.mean_hu is not None else ""
    where = _position(lesion, place)
    where = f"; {where}" if where else ""
    sure = confidence_text(lesion.confidence, lesion.unsure if tag_unsure else False)
    sure = f"; model confidence {sure}" if sure else ""
    return f"Lesion {lesion.lesion_id}: {size}{hu}; {slice_span(*lesion.slice_range)}{where}{sure}."


def confidence_line(measurements: Measurements) -> str | None:
    """What the model's confidence says, or None when the result has none: the liver edge's figure,
    the lesions flagged "check first" (one sentence when that is most of them), or that this model's
    confidence is not calibrated."""
    liver = measurements.liver_confidence
    rated = [lesion for lesion in measurements.lesions if lesion.confidence is not None]
    if liver is None and not rated:
        return None
    parts = [f"Model confidence along the liver edge {100 * liver:.0f} %"] if liver is not None else []
    if any(lesion.unsure is not None for lesion in rated):
        flagged = [str(lesion.lesion_id) for lesion in rated if lesion.unsure]
        if mostly_unsure(measurements):
            parts.append(mostly_unsure_text(measurements))
        elif flagged:
            parts.append(f"lesions to check first (low confidence): {', '.join(flagged)}")
        else:
            parts.append("none flagged")
    elif rated:
        parts.append("this model's lesion confidence is not calibrated, so no lesion is flagged")
    return "; ".join(parts) + "."


def recist_line(measurements: Measurements) -> str:
    """The target lesions and their sum; a target the model is unsure of says so."""
    targets = target_lesions(measurements.lesions)
    if not targets:
        return f"No lesion reaches the RECIST 1.1 measurable size of {MEASURABLE_MM:g} mm."
    total = sum(t.longest_diameter_mm for t in targets)
    names = ", ".join(f"lesion {t.lesion_id} ({t.longest_diameter_mm:.1f} mm)" for t in targets)
    line = (
        f"RECIST 1.1 target lesions (≥ {MEASURABLE_MM:g} mm, at most {_TARGETS_WORD} in the liver): {names}; "
        f"sum of longest diameters {total:.1f} mm."
    )
    unsure = [t for t in targets if t in unsure_lesions(measurements)]
    if unsure:
        which = " and ".join(f"lesion {t.lesion_id}" for t in unsure)
        verb = "is" if len(unsure) == 1 else "are"
        line += (
            f' Target {which} {verb} flagged "check first" (low model confidence): confirm '
            f"{'it' if len(unsure) == 1 else 'them'} on the images before using the sum."
        )
    return line


def build_findings(
    measurements: Measurements,
    model: ModelInfo | None = None,
    source_description: str = "",
    places: Mapping[int, LesionPlace] | None = None,
) -> str:
    """The measured-findings text of a report (plain text, one statement per line). Its first line,
    "Technique: ...", is the report's Technique section; ``places`` (lesion id -> where it was
    measured and which side of the liver it lies on) come from the label map."""
    m = measurements
    places = places or {}
    lines = []
    if source_description:
        lines.append(f"{TECHNIQUE_PREFIX}{source_description}.")
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
        tag = not mostly_unsure(m)
        lines.extend(lesion_line(lesion, places.get(lesion.lesion_id), tag) for lesion in m.lesions)
        lines.append(recist_line(m))
    else:
        lines.append("No focal liver lesion was segmented.")
    sure = confidence_line(m)
    if sure:
        lines.append(sure)
    lines.append(LIMITS)
    return "\n".join(lines)


_TARGETS_WORD = {1: "one", 2: "two"}.get(MAX_TARGETS, str(MAX_TARGETS))
