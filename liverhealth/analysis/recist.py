"""RECIST 1.1 response from target-lesion diameters (Eisenhauer et al., Eur J Cancer 2009).

Targets: at most two measurable liver lesions (longest axial diameter ≥ 10 mm), the largest at
baseline. The sum of their longest diameters is compared with the baseline sum (PR: a decrease of
at least 30 %) and with the smallest sum so far, the nadir (PD: an increase of at least 20 % and
of at least 5 mm, or any new lesion); CR: every target gone. Non-target lesions still present
turn a target CR into an overall PR (RECIST 1.1, table 1); a target that reappears after the sum
reached 0 is PD. Unequivocal progression of non-target
lesions is a reader's call and is not assessed here. Sums are taken on diameters rounded to
0.1 mm, as they are shown, so the arithmetic printed is the arithmetic decided on.
"""

from __future__ import annotations

from collections.abc import Sequence

from liverhealth.domain import Lesion, RecistAssessment

MEASURABLE_MM = 10.0
MAX_TARGETS = 2  # per organ
PR_DECREASE_PCT = 30.0
PD_INCREASE_PCT = 20.0
PD_INCREASE_MM = 5.0
_EPS = 1e-9

NAMES = {
    "CR": "complete response",
    "PR": "partial response",
    "SD": "stable disease",
    "PD": "progressive disease",
    "NE": "not evaluable",
}


def choose_targets(diameters_mm: dict[int, float | None]) -> tuple[int, ...]:
    """The baseline target lesions: the (at most two) largest measurable ones, by diameter."""
    measurable = [(d, i) for i, d in diameters_mm.items() if d is not None and d >= MEASURABLE_MM - _EPS]
    return tuple(i for _, i in sorted(measurable, key=lambda item: (-item[0], item[1]))[:MAX_TARGETS])


def target_lesions(lesions: Sequence[Lesion]) -> tuple[Lesion, ...]:
    """The target lesions among one study's lesions, largest first (the rule of ``choose_targets``)."""
    by_id = {lesion.lesion_id: lesion for lesion in lesions}
    return tuple(by_id[i] for i in choose_targets({i: lesion.longest_diameter_mm for i, lesion in by_id.items()}))


def _mm(value: float) -> float:
    return round(float(value) + 0.0, 1)


def assess(
    baseline_mm: Sequence[float],
    followup_mm: Sequence[float],
    prior_sums_mm: Sequence[float] = (),
    new_lesions: int = 0,
    non_targets_remaining: int = 0,
) -> RecistAssessment:
    """The response of one follow-up: ``baseline_mm``/``followup_mm`` are the targets' diameters at
    each time (0 for a target gone), ``prior_sums_mm`` the target sums of studies between them."""
    base = _mm(sum(_mm(d) for d in baseline_mm))
    now = _mm(sum(_mm(d) for d in followup_mm))
    nadir = _mm(min([base, *(_mm(s) for s in prior_sums_mm)]))
    lines = [
        f"Target lesions: {len(baseline_mm)} (measurable ≥ {MEASURABLE_MM:g} mm, at most {MAX_TARGETS} in the liver).",
        f"Sum of longest diameters: baseline {base:.1f} mm, nadir {nadir:.1f} mm, now {now:.1f} mm.",
    ]
    from_base = 100.0 * (now - base) / base if base else None
    from_nadir_mm = _mm(now - nadir)
    from_nadir = 100.0 * (now - nadir) / nadir if nadir else None
    if from_base is not None:
        lines.append(f"Change from baseline: {now:.1f} − {base:.1f} = {now - base:+.1f} mm ({from_base:+.1f} %).")
    if from_nadir is not None:
        lines.append(f"Change from nadir: {now:.1f} − {nadir:.1f} = {from_nadir_mm:+.1f} mm ({from_nadir:+.1f} %).")
    grows = from_nadir is not None and from_nadir >= PD_INCREASE_PCT - _EPS and from_nadir_mm >= PD_INCREASE_MM - _EPS
    reappeared = bool(baseline_mm) and nadir == 0 and now > 0  # after a complete response
    if new_lesions:
        response = "PD"
        lines.append(f"{new_lesions} new lesion(s): PD (confirm that each is an unequivocal new lesion).")
    elif not baseline_mm:
        response = "NE"
        lines.append(f"No measurable lesion (≥ {MEASURABLE_MM:g} mm) at baseline: no target response.")
    elif grows:
        response = "PD"
        lines.append(f"PD: the sum grew by ≥ {PD_INCREASE_PCT:g} % and ≥ {PD_INCREASE_MM:g} mm over the nadir.")
    elif reappeared:
        response = "PD"
        lines.append("PD: a target lesion reappeared after every target had gone (nadir 0 mm).")
    elif now == 0:
        response = "CR" if not non_targets_remaining else "PR"
        lines.append(
            "CR: every target lesion is gone."
            if response == "CR"
            else f"Every target lesion is gone but {non_targets_remaining} non-target lesion(s) remain: PR "
            "(RECIST 1.1, table 1)."
        )
    elif from_base is not None and from_base <= -PR_DECREASE_PCT + _EPS:
        response = "PR"
        lines.append(f"PR: the sum fell by ≥ {PR_DECREASE_PCT:g} % from baseline.")
    else:
        response = "SD"
        lines.append(
            f"SD: neither a {PR_DECREASE_PCT:g} % decrease from baseline nor a {PD_INCREASE_PCT:g} % and "
            f"{PD_INCREASE_MM:g} mm increase over the nadir."
        )
    return RecistAssessment(
        response=response,
        response_name=NAMES[response],
        baseline_sum_mm=base,
        nadir_sum_mm=nadir,
        followup_sum_mm=now,
        change_from_baseline_pct=None if from_base is None else round(from_base, 1),
        change_from_nadir_mm=from_nadir_mm,
        change_from_nadir_pct=None if from_nadir is None else round(from_nadir, 1),
        new_lesions=new_lesions,
        arithmetic=tuple(lines),
    )
