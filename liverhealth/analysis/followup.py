"""A follow-up study against its baseline: register, match lesions, measure each change, and
decide the RECIST 1.1 response.

Lesions are matched one to one as an assignment problem (scipy's ``linear_sum_assignment``,
with a slot per lesion for leaving it unmatched): pairs that overlap after registration cost
1 − Dice, pairs that do not overlap but whose centroids lie within ``MATCH_DISTANCE_MM`` cost
10 + distance / limit, leaving a lesion unmatched costs 8, other pairs cannot match; so an
overlapping pair is never traded for distance-only pairs. A follow-up lesion left over that
overlaps a matched baseline lesion is one of its fragments (split); a baseline lesion left over
that overlaps a matched follow-up lesion coalesced into it (merged); the rest are gone (baseline)
or new (follow-up). Volumes and diameters are each study's own measurements, on its own grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from liverhealth.analysis.measure import find_lesions
from liverhealth.analysis.recist import assess, choose_targets
from liverhealth.analysis.registration import Registration, register, resample_labels
from liverhealth.domain import Comparison, CtVolume, Label, Lesion, LesionChange, Measurements

MATCH_DISTANCE_MM = 20.0
POOR_LIVER_DICE = 0.80
_NO_MATCH = 1e6
_DISTANCE_TIER = 10.0  # a distance-only pair costs 10-11, an overlapping one under 1
_UNMATCHED = 8.0  # per lesion left unmatched: two of them cost more than any pair within reach


def lesion_map(labels: np.ndarray) -> np.ndarray:
    """Each voxel's lesion id (as ``measure`` numbers them: largest first, from 1), 0 elsewhere."""
    out = np.zeros(labels.shape, dtype=np.uint16)
    for number, (crop, offset) in enumerate(find_lesions(labels == Label.TUMOUR), start=1):
        box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
        out[box][crop] = number
    return out


def _overlaps(base: np.ndarray, follow: np.ndarray, n_base: int, n_follow: int) -> np.ndarray:
    """Voxels shared by baseline lesion i and follow-up lesion j (on the baseline grid), [i, j]."""
    both = (base > 0) & (follow > 0)
    pairs = base[both].astype(np.int64) * (n_follow + 1) + follow[both].astype(np.int64)
    counts = np.bincount(pairs, minlength=(n_base + 1) * (n_follow + 1))
    return counts.reshape(n_base + 1, n_follow + 1)[1:, 1:]


def _change(before: float | None, after: float | None) -> tuple[float | None, float | None]:
    if before is None or after is None:
        return None, None
    return round(after - before, 3), (round(100.0 * (after - before) / before, 1) if before else None)


def _sum(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known and len(known) == len(values) else None


def match(
    baseline: Measurements,
    followup: Measurements,
    overlap: np.ndarray,
    base_voxels: np.ndarray,
    follow_voxels: np.ndarray,
    distance: np.ndarray,
) -> dict[str, list]:
    """The assignment and its leftovers: ``pairs`` [(i, j)], ``split`` {i: [j]}, ``merged`` [(i, j)],
    ``gone`` [i], ``new`` [j] (0-based indices into the two lesion lists)."""
    n_base, n_follow = len(baseline.lesions), len(followup.lesions)
    # one square problem: real pairs, and a "left unmatched" slot for every lesion; tiers make any
    # overlapping pair beat any distance-only pair, and any pair within reach beat leaving both unmatched
    size = n_base + n_follow
    cost = np.full((size, size), _NO_MATCH)
    if n_base and n_follow:
        dice = 2.0 * overlap / (base_voxels[:, None] + follow_voxels[None, :]).clip(min=1)
        real = np.where(distance <= MATCH_DISTANCE_MM, _DISTANCE_TIER + distance / MATCH_DISTANCE_MM, _NO_MATCH)
        cost[:n_base, :n_follow] = np.where(overlap > 0, 1.0 - dice, real)
    for i in range(n_base):
        cost[i, n_follow + i] = _UNMATCHED
    for j in range(n_follow):
        cost[n_base + j, j] = _UNMATCHED
    cost[n_base:, n_follow:] = 0.0
    rows, cols = linear_sum_assignment(cost) if size else (np.array([], int), np.array([], int))
    pairs = [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if i < n_base and j < n_follow]
    matched_base, matched_follow = {i for i, _ in pairs}, {j for _, j in pairs}
    split: dict[int, list[int]] = {}
    merged, gone, new = [], [], []
    for j in range(n_follow):
        if j in matched_follow:
            continue
        owners = [i for i in matched_base if overlap[i, j] > 0]
        if owners:
            split.setdefault(max(owners, key=lambda i: overlap[i, j]), []).append(j)
        else:
            new.append(j)
    for i in range(n_base):
        if i in matched_base:
            continue
        hosts = [j for j in matched_follow if overlap[i, j] > 0]
        if hosts:
            merged.append((i, max(hosts, key=lambda j: overlap[i, j])))
        else:
            gone.append(i)
    return {"pairs": pairs, "split": split, "merged": merged, "gone": gone, "new": new}


def nadir_sums(earlier: Sequence[tuple[str, float]], study_date: str) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """The target sums that set this follow-up's nadir, and what to say about them (no dates).

    ``earlier`` holds (study date YYYYMMDD or "", target sum) of the follow-ups already read
    against the same baseline, in any order (the order they were saved in says nothing). Those
    dated on or after ``study_date`` are later scans and left out; when a date is missing the
    order is unknown and the reading is counted, with a note saying so.
    """
    sums = tuple(total for _, total in earlier)
    if not study_date:
        note = (
            f"This scan has no study date: all {len(earlier)} follow-up(s) read earlier against this baseline "
            "count for the nadir, as if taken before it."
        )
        return sums, (note,) if earlier else ()
    kept = [(day, total) for day, total in earlier if not day or day < study_date]
    undated = sum(1 for day, _ in kept if not day)
    later = len(earlier) - len(kept)
    notes = []
    if later:
        notes.append(
            f"{later} follow-up(s) read against this baseline were taken after this scan (by study date) "
            "and do not count for the nadir."
        )
    if undated:
        notes.append(
            f"{undated} follow-up(s) counted for the nadir have no study date: check they were taken before this scan."
        )
    return tuple(total for _, total in kept), tuple(notes)


def compare_studies(
    baseline: CtVolume,
    baseline_labels: np.ndarray,
    baseline_m: Measurements,
    followup: CtVolume,
    followup_labels: np.ndarray,
    followup_m: Measurements,
    prior_sums_mm: Sequence[float] = (),
    names: tuple[str, str] = ("baseline", "follow-up"),
    registration: Registration | None = None,
) -> tuple[Comparison, Registration]:
    """The comparison of ``followup`` against ``baseline`` (and the registration it used);
    ``prior_sums_mm`` are the target sums of the studies between them (for the nadir)."""
    reg = registration or register(baseline, baseline_labels, followup, followup_labels)
    base_map = lesion_map(baseline_labels)
    follow_map = resample_labels(lesion_map(followup_labels), followup, baseline, reg.matrix)
    n_base, n_follow = len(baseline_m.lesions), len(followup_m.lesions)
    overlap = _overlaps(base_map, follow_map, n_base, n_follow)
    base_voxels = np.bincount(base_map.ravel(), minlength=n_base + 1)[1:].astype(np.float64)
    follow_voxels = np.bincount(follow_map.ravel(), minlength=n_follow + 1)[1:].astype(np.float64)
    base_centres = np.array([_centre(baseline, lesion) for lesion in baseline_m.lesions]).reshape(-1, 3)
    follow_centres = np.array([_centre(followup, lesion) for lesion in followup_m.lesions]).reshape(-1, 3)
    follow_on_base = reg.to_baseline(follow_centres) if n_follow else follow_centres
    distance = np.linalg.norm(base_centres[:, None, :] - follow_on_base[None, :, :], axis=2)
    found = match(baseline_m, followup_m, overlap, base_voxels, follow_voxels, distance)

    targets = choose_targets({lesion.lesion_id: lesion.longest_diameter_mm for lesion in baseline_m.lesions})
    changes: list[LesionChange] = []

    def add(status: str, i: int | None, js: Sequence[int]) -> None:
        before = baseline_m.lesions[i] if i is not None else None
        after = [followup_m.lesions[j] for j in js]
        gone = status in ("gone", "merged")
        volume_after = 0.0 if status == "gone" else _sum([lesion.volume_ml for lesion in after])
        diameter_after = 0.0 if gone else _sum([lesion.longest_diameter_mm for lesion in after])
        if status == "merged":
            volume_after = None  # its volume is counted in the lesion it merged into
        volume_before = 0.0 if before is None else before.volume_ml
        diameter_before = 0.0 if before is None else before.longest_diameter_mm
        pair_overlap = [overlap[i, j] for j in js] if i is not None else []
        dice = (
            round(2.0 * sum(pair_overlap) / (base_voxels[i] + sum(follow_voxels[j] for j in js)), 3)
            if i is not None and js
            else None
        )
        gap = round(float(min(distance[i, j] for j in js)), 2) if i is not None and js else None
        volume_change = _change(volume_before, volume_after)
        diameter_change = _change(diameter_before, diameter_after)
        changes.append(
            LesionChange(
                status=status,
                baseline_id=before.lesion_id if before else None,
                followup_ids=tuple(followup_m.lesions[j].lesion_id for j in js),
                baseline_volume_ml=None if volume_before is None else round(volume_before, 3),
                followup_volume_ml=None if volume_after is None else round(volume_after, 3),
                baseline_diameter_mm=None if diameter_before is None else round(diameter_before, 3),
                followup_diameter_mm=None if diameter_after is None else round(diameter_after, 3),
                volume_change_ml=volume_change[0],
                volume_change_pct=volume_change[1],
                diameter_change_mm=diameter_change[0],
                diameter_change_pct=diameter_change[1],
                distance_mm=gap,
                overlap_dice=dice,
                target=before is not None and before.lesion_id in targets,
            )
        )

    for i, j in found["pairs"]:
        add("split" if i in found["split"] else "matched", i, [j, *found["split"].get(i, [])])
    for i, j in found["merged"]:
        add("merged", i, [j])
    for i in found["gone"]:
        add("gone", i, [])
    for j in found["new"]:
        add("new", None, [j])
    changes.sort(key=lambda c: (c.baseline_id is None, c.baseline_id or 0, c.followup_ids))

    by_id = {c.baseline_id: c for c in changes if c.baseline_id is not None}
    recist = assess(
        [by_id[t].baseline_diameter_mm or 0.0 for t in targets],
        [by_id[t].followup_diameter_mm or 0.0 for t in targets],
        prior_sums_mm,
        new_lesions=len(found["new"]),
        non_targets_remaining=sum(
            1 for c in changes if c.baseline_id not in targets and c.status in ("matched", "split")
        ),
    )
    recist = replace(recist, targets=targets)
    warnings = []
    if reg.liver_dice < POOR_LIVER_DICE:
        warnings.append(
            f"The livers overlap poorly after registration (Dice {reg.liver_dice:.2f}): check the lesion "
            "matching by eye before using the response."
        )
    comparison = Comparison(
        baseline_label=names[0],
        followup_label=names[1],
        registration={
            "method": "SimpleITK: rigid then affine on the liver masks, affine refined on the CT in the liver",
            "matrix_baseline_ras_to_followup_ras": [[round(v, 6) for v in row] for row in reg.matrix.tolist()],
            "liver_dice_after": reg.liver_dice,
            "liver_dice_before": reg.liver_dice_before,
            "seconds": reg.seconds,
            "match_distance_mm": MATCH_DISTANCE_MM,
        },
        lesions=tuple(changes),
        liver_ml=(_round(baseline_m.liver_volume_ml, 1), _round(followup_m.liver_volume_ml, 1)),
        tumour_ml=(_round(baseline_m.tumour_volume_ml, 2), _round(followup_m.tumour_volume_ml, 2)),
        burden_pct=(round(baseline_m.tumour_burden_pct, 2), round(followup_m.tumour_burden_pct, 2)),
        recist=recist,
        warnings=tuple(warnings),
    )
    return comparison, reg


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _centre(volume: CtVolume, lesion: Lesion) -> tuple[float, float, float]:
    if lesion.centroid_mm is not None:
        return lesion.centroid_mm
    from liverhealth.imaging.geometry import index_to_ras

    return index_to_ras(volume.affine, lesion.centroid_index)
