"""Follow-up reading for the faces: compare two segmented studies, write comparison.json and a
side-by-side picture of each lesion, and say the result in words (report, LLM request: numbers
only, no identifiers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from liverhealth.analysis.followup import compare_studies, nadir_sums
from liverhealth.analysis.registration import Registration, resample_ct, resample_labels
from liverhealth.domain import Comparison, LesionChange
from liverhealth.errors import InputError
from liverhealth.imaging.display import WINDOW_PRESETS, overlay_labels, to_display
from liverhealth.imaging.geometry import index_to_ras
from liverhealth.imaging.writers import atomic_target, write_bytes_atomic
from liverhealth.results import SegmentResult, png_bytes

COMPARISON_DOCUMENT = 1
TILE_PX = 160
FIELD_MM = 70.0
MAX_ROWS = 8


@dataclass(frozen=True)
class ComparisonResult:
    comparison: Comparison
    registration: Registration
    baseline: SegmentResult
    followup: SegmentResult


def check_not_same_scan(baseline: SegmentResult, followup: SegmentResult) -> None:
    """Refuse reading a scan against itself (the same series UID, or the same pixels): that is no
    follow-up, and RECIST would call it stable disease."""
    base_uid, follow_uid = baseline.volume.source.series_uid, followup.volume.source.series_uid
    if base_uid and base_uid == follow_uid:
        why = "the same DICOM series"
    elif baseline.content_sha256 == followup.content_sha256:
        why = "the same pixels"
    else:
        return
    raise InputError(f"The prior is the same scan as this study ({why}): choose an earlier study of the patient.")


def compare_results(
    baseline: SegmentResult,
    followup: SegmentResult,
    earlier: Sequence[tuple[str, float]] = (),
    followup_date: str = "",
) -> ComparisonResult:
    """Register ``followup`` onto ``baseline``, match the lesions, decide the RECIST response.
    ``earlier`` are (study date, target sum) of the follow-ups read against this baseline before;
    those dated before ``followup_date`` (both as the database keeps them) set the nadir."""
    check_not_same_scan(baseline, followup)
    prior_sums_mm, notes = nadir_sums(earlier, followup_date)
    comparison, registration = compare_studies(
        baseline.volume,
        baseline.segmentation.labels,
        baseline.measurements,
        followup.volume,
        followup.segmentation.labels,
        followup.measurements,
        prior_sums_mm,
    )
    warnings = list(comparison.warnings)
    if prior_sums_mm:
        sums = ", ".join(f"{total:.1f}" for total in prior_sums_mm)
        warnings.append(
            f"The nadir counts {len(prior_sums_mm)} follow-up(s) read earlier against this baseline (target sums "
            f"{sums} mm)."
        )
    warnings.extend(notes)
    before, after = baseline.volume.study.study_date, followup.volume.study.study_date
    if before and after and before > after:
        warnings.append("The baseline was taken after this scan (by study date): the response reads back in time.")
    comparison = replace(comparison, warnings=tuple(warnings))
    return ComparisonResult(comparison, registration, baseline, followup)


def comparison_document(result: ComparisonResult) -> dict:
    """comparison.json: the comparison, both studies (no patient identifiers) and their models."""
    sides = {}
    for name, side in (("baseline", result.baseline), ("followup", result.followup)):
        sides[name] = {
            "source": {k: v for k, v in side.volume.source.to_dict().items() if k != "path"},
            "model": side.model.to_dict(),
        }
    return {
        "liverhealth_comparison": COMPARISON_DOCUMENT,
        "draft": "A draft for radiologist review; not a medical device.",
        **sides,
        "comparison": result.comparison.to_dict(),
    }


def write_comparison(result: ComparisonResult, out_dir: str | Path) -> dict[str, Path]:
    """comparison.json and comparison.png in ``out_dir`` (each written whole or not at all)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_target(out / "comparison.json") as temporary:
        temporary.write_text(json.dumps(comparison_document(result), indent=2), encoding="utf-8")
    write_bytes_atomic(out / "comparison.png", png_bytes(comparison_image(result)))
    return {"comparison.json": out / "comparison.json", "comparison.png": out / "comparison.png"}


def lesion_caption(change: LesionChange) -> str:
    """One lesion's change in a few words (the picture's captions, the window's list)."""
    target = " target" if change.target else ""
    after = change.followup_diameter_mm
    if change.baseline_id is None:
        return f"F{change.followup_ids[0]} new: {after or 0:.1f} mm"
    before = change.baseline_diameter_mm
    sizes = f"{before or 0:.1f} -> {after or 0:.1f} mm" if before is not None and after is not None else ""
    pct = f" ({change.diameter_change_pct:+.0f}%)" if change.diameter_change_pct is not None else ""
    return f"L{change.baseline_id}{target} {change.status}: {sizes}{pct}"


def _tile(grey: np.ndarray, labels: np.ndarray, centre_yx: tuple[float, float], pixel_mm: tuple[float, float]):
    half = [max(4, int(FIELD_MM / 2 / p)) for p in pixel_mm]
    y, x = (round(c) for c in centre_yx)
    pad = ((half[0], half[0]), (half[1], half[1]))
    grey, labels = np.pad(grey, pad), np.pad(labels, pad)
    crop = (slice(y, y + 2 * half[0]), slice(x, x + 2 * half[1]))
    picture = overlay_labels(grey[crop], labels[crop], alpha=0.25)
    return cv2.resize(picture, (TILE_PX, TILE_PX), interpolation=cv2.INTER_NEAREST)


def registered_followup(result: ComparisonResult) -> tuple[np.ndarray, np.ndarray]:
    """The follow-up's CT and labels on the baseline grid, through the registration (what the
    side-by-side views show, slice for slice with the baseline)."""
    base, follow, matrix = result.baseline.volume, result.followup, result.registration.matrix
    return (
        resample_ct(follow.volume, base, matrix),
        resample_labels(follow.segmentation.labels, follow.volume, base, matrix),
    )


def lesion_centres(result: ComparisonResult) -> list[tuple[LesionChange, tuple[float, float, float]]]:
    """Each lesion change (targets first, then new, then the others) with where it is on the
    baseline grid (z, y, x): the baseline lesion's centroid, or a new lesion's, mapped back."""
    base = result.baseline.volume
    inverse = np.linalg.inv(base.affine)
    lesions_b = {lesion.lesion_id: lesion for lesion in result.baseline.measurements.lesions}
    lesions_f = {lesion.lesion_id: lesion for lesion in result.followup.measurements.lesions}
    order = sorted(result.comparison.lesions, key=lambda c: (not c.target, c.status != "new", c.baseline_id or 0))
    placed = []
    for change in order:
        if change.baseline_id is not None:
            centre = lesions_b[change.baseline_id].centroid_index
        else:
            lesion = lesions_f[change.followup_ids[0]]
            point = result.registration.to_baseline(index_to_ras(result.followup.volume.affine, lesion.centroid_index))
            x, y, z = (inverse @ np.array([*point[0], 1.0]))[:3]
            centre = (z, y, x)
        limits = np.array(base.shape) - 1  # a new lesion outside the baseline's field of view: its edge
        placed.append((change, tuple(float(v) for v in np.clip(centre, 0, limits))))
    return placed


def comparison_image(result: ComparisonResult) -> np.ndarray:
    """One row per lesion (targets first, then new, then the others; at most ``MAX_ROWS``): the
    baseline and the registered follow-up on the same baseline slice, outlines on both."""
    base = result.baseline.volume
    follow_ct, follow_labels = registered_followup(result)
    rows = []
    pixel_mm = (base.spacing[1], base.spacing[2]) if base.spacing else (1.0, 1.0)
    window = WINDOW_PRESETS["liver"]
    text = {"fontFace": cv2.FONT_HERSHEY_SIMPLEX, "color": (0, 0, 0), "thickness": 1, "lineType": cv2.LINE_AA}
    width = 2 * TILE_PX + 4
    for change, centre in lesion_centres(result)[:MAX_ROWS]:
        z = int(np.clip(round(centre[0]), 0, base.shape[0] - 1))
        labels = result.baseline.segmentation.labels[z]
        left = _tile(to_display(base.voxels[z], base.is_hu, window), labels, centre[1:], pixel_mm)
        right = _tile(to_display(follow_ct[z], base.is_hu, window), follow_labels[z], centre[1:], pixel_mm)
        caption = np.full((22, width, 3), 255, np.uint8)
        cv2.putText(caption, lesion_caption(change)[:48], (4, 16), fontScale=0.42, **text)
        gap = np.full((TILE_PX, 4, 3), 255, np.uint8)
        rows.append(np.vstack([caption, np.hstack([left, gap, right])]))
    header = np.full((26, width, 3), 255, np.uint8)
    cv2.putText(header, "baseline | follow-up (registered)", (4, 18), fontScale=0.5, **text)
    if not rows:
        note = np.full((40, width, 3), 255, np.uint8)
        cv2.putText(note, "No lesion at either time.", (4, 24), fontScale=0.5, **text)
        rows.append(note)
    return np.vstack([header, *rows])


def comparison_lines(comparison: Comparison) -> list[str]:
    """The comparison in words: what the report's "Comparison with prior" section and the LLM
    request say (numbers only)."""
    counts = {
        status: sum(1 for c in comparison.lesions if c.status == status)
        for status in ("matched", "split", "merged", "gone", "new")
    }
    lines = []
    (liver_b, liver_f), (tumour_b, tumour_f), (burden_b, burden_f) = (
        comparison.liver_ml,
        comparison.tumour_ml,
        comparison.burden_pct,
    )
    if liver_b is not None and liver_f is not None:
        lines.append(f"Liver volume {liver_b:.1f} mL at baseline, {liver_f:.1f} mL now ({liver_f - liver_b:+.1f} mL).")
    if tumour_b is not None and tumour_f is not None:
        lines.append(
            f"Tumour volume {tumour_b:.2f} mL at baseline, {tumour_f:.2f} mL now ({tumour_f - tumour_b:+.2f} mL); "
            f"tumour burden {burden_b:.2f} % -> {burden_f:.2f} % of the liver."
        )
    lines.append(
        "Lesions: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        if any(counts.values())
        else "Lesions: none at either time."
    )
    for change in comparison.lesions:
        if change.target or change.status == "new":
            lines.append(lesion_caption(change).replace(" -> ", " → ") + ".")
    recist = comparison.recist
    lines.append(f"RECIST 1.1: {recist.response} ({recist.response_name}).")
    lines.extend(recist.arithmetic)
    lines.extend(comparison.warnings)
    return lines
