"""A simulated reader correcting held-out segmentations with ``liverhealth.editing`` (issue 31).

    python -m bench.bench_editing [--data ../shared/data] [--folds training/results] [--out bench/results/editing]

Every patient is segmented by the cross-validation fold cascade that held it out
(``training/results/cascade_cvN/models``, ``training.protocol.FOLDS``): 3Dircadb1.1 by cv2, 3Dircadb1.7
by cv0, each lits_jpg patient by its own fold. The reader then clicks, at most ``CLICKS`` times per
case, in order of size (volume): once at the deepest interior point (maximum of the distance
transform) of every reference lesion of at least 10 mm (longest axial diameter) that the model missed
or outlined with lesion Dice < 0.5 (add_lesion), and once on every false-positive lesion of at least
10 mm (remove_lesion). Edits go through ``EditHistory``; at the end every edit is undone and the labels
must equal the model's again.

Choices are made on data that is not reported: the add-lesion methods' settings and the default
method are chosen on the lits_jpg patients with a tumour label (their stored slices, HU rebuilt from
the [-40, 160] window), by the mean Dice of the clicked lesions after the reader's clicks; the two
IRCADb CTs are then reported with those settings and never used to choose. Reported per case and
method: clicks, tumour Dice and recall of lesions >= 10 mm before and after, false positives >= 10 mm,
time per edit (add-lesion and the others apart). The issue's targets: after <= 5 clicks per case tumour
Dice >= 0.75 and recall >= 0.95; an edit within 1 s, add-lesion within 2 s, on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import ndimage

from bench.paths import shown
from liverhealth import config
from liverhealth.analysis.measure import FULL_3D, feret_diameters
from liverhealth.analysis.metrics import dice
from liverhealth.domain import CtVolume, Label
from liverhealth.editing import (
    AddMethod,
    EditHistory,
    GrowOptions,
    ModelGrowOptions,
    add_lesion,
    erase,
    fill_between_slices,
    paint,
    relabel_lesion,
    remove_lesion,
)
from liverhealth.errors import LiverHealthError
from liverhealth.inference import Segmenter, load_manifest
from liverhealth.inference.manifest import Manifest
from training.evaluate_cv import lesion_scores, load_patient
from training.protocol import CV_PATIENTS, FOLDS

CLICKS = 5
LARGE_MM = 10.0
POOR_DICE = 0.5
REPORT_CASES = ("3Dircadb1.1", "3Dircadb1.7")
GROW_GRID = {
    "tolerance": (0.5, 0.7, 0.9),
    "leak_ratio": (2.0, 3.0, 5.0),
    "liver_margin_mm": (0.0, 3.0, 6.0),
    "smoothing_mm": (1.0, 2.0),
}
MODEL_THRESHOLDS = (0.4, 0.2, 0.1, 0.05)
MODEL_FIRST_MARGIN = 5.0  # every threshold is tried with this liver margin (mm) ...
MODEL_MARGINS = (0.0, 6.0)  # ... and these at the best threshold


@dataclass(frozen=True)
class Click:
    """One planned click of the simulated reader."""

    action: str  # "add" or "remove"
    seed: tuple[int, int, int]
    volume_voxels: int
    diameter_mm: float
    reference_id: int | None  # the reference lesion an add click is for
    missed: bool = False


@dataclass
class Case:
    """A patient, its reference, the fold model's labels on it and the model that made them."""

    name: str
    fold: str
    volume: CtVolume
    reference: np.ndarray
    prediction: np.ndarray
    manifest: Manifest
    model_id: str
    segment_s: float
    plans: dict[str, list[Click]] = field(default_factory=dict)  # the reader's clicks by order, made once
    scores: dict | None = None  # the model's scores, made once


@dataclass
class ClickOutcome:
    action: str
    seconds: float
    changed: int
    refused: str = ""
    lesion_dice_before: float | None = None
    lesion_dice_after: float | None = None


@dataclass
class ReaderRun:
    """One case read with one add-lesion setting."""

    case: str
    method: str
    outcomes: list[ClickOutcome] = field(default_factory=list)
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    undo_exact: bool = False
    history_bytes: int = 0


def deepest_point(component: np.ndarray, offset: tuple[int, ...], spacing: tuple[float, float, float]) -> tuple:
    """The voxel of a (cropped) component farthest from its outside, in mm."""
    distance = ndimage.distance_transform_edt(np.pad(component, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return tuple(int(i) + int(o) for i, o in zip(local, offset, strict=True))


def longest_mm(component: np.ndarray, pixel_yx: tuple[float, float]) -> float:
    slices = np.flatnonzero(component.reshape(component.shape[0], -1).any(axis=1))
    return max((feret_diameters(component[z], pixel_yx)[0] for z in slices), default=0.0)


def lesion_dice(labels: np.ndarray, lesion: np.ndarray) -> float:
    """A reference lesion against the union of the predicted lesions overlapping it (0 when none)."""
    predicted, _ = ndimage.label(labels == Label.TUMOUR, structure=FULL_3D)
    hit = np.unique(predicted[lesion])
    hit = hit[hit > 0]
    return dice(np.isin(predicted, hit), lesion) if hit.size else 0.0


def plan_clicks(case: Case, order: str = "size") -> list[Click]:
    """The reader's clicks: adds for missed or poorly outlined reference lesions >= 10 mm, removes for
    false positives >= 10 mm, at most CLICKS, largest first (``order`` "missed-first": missed lesions
    first, then by size)."""
    if order not in case.plans:
        case.plans[order] = _plan(case, order)
    return case.plans[order]


def _plan(case: Case, order: str) -> list[Click]:
    spacing = case.volume.spacing
    pixel_yx = (spacing[1], spacing[2])
    reference, _ = ndimage.label(case.reference == Label.TUMOUR, structure=FULL_3D)
    predicted, _ = ndimage.label(case.prediction == Label.TUMOUR, structure=FULL_3D)
    clicks = []
    for index, box in enumerate(ndimage.find_objects(reference), start=1):
        crop = reference[box] == index
        diameter = longest_mm(crop, pixel_yx)
        if diameter < LARGE_MM:
            continue
        lesion = reference == index
        score = lesion_dice(case.prediction, lesion)
        if score >= POOR_DICE:
            continue
        seed = deepest_point(crop, tuple(s.start for s in box), spacing)
        clicks.append(Click("add", seed, int(crop.sum()), diameter, index, missed=score == 0.0))
    truth = case.reference == Label.TUMOUR
    for index, box in enumerate(ndimage.find_objects(predicted), start=1):
        crop = predicted[box] == index
        if truth[box][crop].any():
            continue
        diameter = longest_mm(crop, pixel_yx)
        if diameter >= LARGE_MM:
            seed = deepest_point(crop, tuple(s.start for s in box), spacing)
            clicks.append(Click("remove", seed, int(crop.sum()), diameter, None))
    key = (lambda c: (not c.missed, -c.volume_voxels)) if order == "missed-first" else (lambda c: -c.volume_voxels)
    return sorted(clicks, key=key)[:CLICKS]


def case_scores(labels: np.ndarray, case: Case) -> dict:
    spacing = case.volume.spacing
    scores = lesion_scores(labels, case.reference, (spacing[1], spacing[2]))
    has_tumour = bool((case.reference == Label.TUMOUR).any())
    return {
        "tumour_dice": dice(labels == Label.TUMOUR, case.reference == Label.TUMOUR) if has_tumour else None,
        "recall_10mm": scores["lesion_recall_10mm"],
        "found_10mm": scores["found_10mm"],
        "reference_10mm": scores["reference_lesions_10mm"],
        "false_positives_10mm": scores["false_positives_10mm"],
        "liver_dice": dice(labels > 0, case.reference > 0),
    }


def read_case(
    case: Case, method: AddMethod, grow: GrowOptions, model: ModelGrowOptions, order: str = "size"
) -> ReaderRun:
    """The simulated reader on one case: its clicks through an EditHistory, timed, then all undone."""
    if case.scores is None:
        case.scores = case_scores(case.prediction, case)
    run = ReaderRun(case.name, str(method), before=dict(case.scores))
    history = EditHistory(case.prediction)
    labels = case.prediction
    reference, _ = ndimage.label(case.reference == Label.TUMOUR, structure=FULL_3D)
    for click in plan_clicks(case, order):
        lesion = reference == click.reference_id if click.reference_id else None
        outcome = ClickOutcome(click.action, 0.0, 0)
        if lesion is not None:
            outcome.lesion_dice_before = lesion_dice(labels, lesion)
        started = time.perf_counter()
        try:
            if click.action == "add":
                result = add_lesion(case.volume, labels, click.seed, method, grow, model, case.manifest, case.model_id)
            else:
                result = remove_lesion(labels, click.seed, case.volume.spacing)
            labels = history.apply(result)
            outcome.changed = result.voxels_changed
        except LiverHealthError as error:
            outcome.refused = str(error)
        outcome.seconds = time.perf_counter() - started
        if lesion is not None:
            outcome.lesion_dice_after = lesion_dice(labels, lesion)
        run.outcomes.append(outcome)
    run.after = case_scores(labels, case)
    run.history_bytes = history.nbytes
    while history.can_undo:
        labels = history.undo()
    run.undo_exact = bool(np.array_equal(labels, case.prediction))
    return run


def load_case(data: Path, name: str, folds_dir: Path, cache: Path) -> Case:
    """A patient segmented by the fold that held it out (the labels cached by model and case)."""
    fold = next(f for f in ("cv0", "cv1", "cv2") if name in FOLDS[f]["test"])
    volume, reference, _ = load_patient(data, name)
    manifest = load_manifest(folds_dir / f"cascade_{fold}" / "models")
    model_id = f"unet-{fold}"
    spec = manifest.get(model_id)
    stored = cache / f"{name}-{spec.sha256[:12]}.npz"
    started = time.perf_counter()
    if stored.is_file():
        prediction = np.load(stored)["labels"]
        segment_s = float(np.load(stored)["seconds"])
    else:
        prediction = Segmenter(manifest, confidence=False).segment(volume, model_id).labels
        segment_s = time.perf_counter() - started
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(stored, labels=prediction, seconds=segment_s)
    return Case(name, fold, volume, reference, prediction, manifest, model_id, segment_s)


def clicked_dice(runs: list[ReaderRun]) -> float:
    """Mean Dice, after the reader, of the lesions an add click was for (the tuning objective)."""
    values = [o.lesion_dice_after for r in runs for o in r.outcomes if o.action == "add"]
    return float(np.mean(values)) if values else 0.0


def tune(cases: list[Case], log) -> tuple[GrowOptions, ModelGrowOptions, AddMethod, list[str]]:
    """Both methods' settings and the default method, chosen on the tuning cases only."""
    lines = [f"Tuning on {len(cases)} lits_jpg patients: {', '.join(c.name for c in cases)}"]
    clicks = sum(1 for c in cases for k in plan_clicks(c) if k.action == "add")
    lines.append(f"  {clicks} add clicks (objective: mean Dice of the clicked lesions after the reader)")
    grow_scores = []
    for values in itertools.product(*GROW_GRID.values()):
        options = GrowOptions(**dict(zip(GROW_GRID, values, strict=True)))
        runs = [read_case(c, AddMethod.GROW, options, ModelGrowOptions()) for c in cases]
        grow_scores.append((clicked_dice(runs), options, _seconds(runs, "add")))
        log(f"  grow {dict(zip(GROW_GRID, values, strict=True))}: {grow_scores[-1][0]:.3f}")
    best_grow = max(grow_scores, key=lambda item: item[0])
    lines.append("  grow: " + "; ".join(f"{_grow_key(o)} {s:.3f}" for s, o, _ in grow_scores))
    model_scores = []
    for threshold in MODEL_THRESHOLDS:
        options = ModelGrowOptions(threshold=threshold, liver_margin_mm=MODEL_FIRST_MARGIN)
        runs = [read_case(c, AddMethod.MODEL, GrowOptions(), options) for c in cases]
        model_scores.append((clicked_dice(runs), options, _seconds(runs, "add")))
        log(f"  model threshold {threshold}: {model_scores[-1][0]:.3f}")
    best_threshold = max(model_scores, key=lambda item: item[0])[1].threshold
    for margin in MODEL_MARGINS:
        options = ModelGrowOptions(threshold=best_threshold, liver_margin_mm=margin)
        runs = [read_case(c, AddMethod.MODEL, GrowOptions(), options) for c in cases]
        model_scores.append((clicked_dice(runs), options, _seconds(runs, "add")))
        log(f"  model threshold {best_threshold} margin {margin}: {model_scores[-1][0]:.3f}")
    best_model = max(model_scores, key=lambda item: item[0])
    lines.append(
        "  model: "
        + "; ".join(f"threshold {o.threshold:g} margin {o.liver_margin_mm:g} mm {s:.3f}" for s, o, _ in model_scores)
    )
    method = AddMethod.GROW if best_grow[0] >= best_model[0] else AddMethod.MODEL
    lines += [
        f"  best grow: {_grow_key(best_grow[1])}: clicked-lesion Dice {best_grow[0]:.3f}, "
        f"median add {np.median(best_grow[2]):.2f} s",
        f"  best model: threshold {best_model[1].threshold:g}, margin {best_model[1].liver_margin_mm:g} mm: "
        f"clicked-lesion Dice {best_model[0]:.3f}, median add {np.median(best_model[2]):.2f} s",
        f"  default add-lesion method chosen on these patients: {method}",
    ]
    return best_grow[1], best_model[1], method, lines


def _grow_key(options: GrowOptions) -> str:
    return (
        f"tol {options.tolerance:g} leak {options.leak_ratio:g} margin {options.liver_margin_mm:g} "
        f"smooth {options.smoothing_mm:g}"
    )


def _seconds(runs: list[ReaderRun], action: str) -> list[float]:
    return [o.seconds for r in runs for o in r.outcomes if o.action == action and not o.refused] or [0.0]


def other_edit_times(case: Case) -> dict[str, float]:
    """Seconds of one of each other edit on the case's model labels (brush 5 mm, fill over 10 slices,
    relabel, undo, redo), the way a face calls them."""
    labels, spacing = case.prediction, case.volume.spacing
    liver = np.argwhere(labels == Label.LIVER)
    z, y, x = (int(v) for v in liver[len(liver) // 2])
    times = {}

    def timed(name: str, call) -> object:
        started = time.perf_counter()
        result = call()
        times[name] = time.perf_counter() - started
        return result

    painted = timed("paint tumour 5 mm", lambda: paint(labels, spacing, z, (y, x), 5.0, Label.TUMOUR))
    timed("erase tumour 5 mm", lambda: erase(painted.labels, spacing, z, (y, x), 5.0, Label.TUMOUR))
    timed("remove_lesion", lambda: remove_lesion(painted.labels, (z, y, x), spacing))
    timed("relabel_lesion to liver", lambda: relabel_lesion(painted.labels, (z, y, x), Label.LIVER))
    other = paint(painted.labels, spacing, min(z + 10, labels.shape[0] - 1), (y, x), 5.0, Label.TUMOUR).labels
    timed("fill_between_slices 10 slices", lambda: fill_between_slices(other, Label.TUMOUR, z, z + 10, spacing))
    history = EditHistory(labels)
    timed("history apply", lambda: history.apply(painted))
    timed("undo", history.undo)
    timed("redo", history.redo)
    return times


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_runs(runs: list[ReaderRun]) -> list[str]:
    lines = [
        "| case | method | clicks (add/remove, refused) | tumour Dice before -> after "
        "| recall >= 10 mm before -> after | FP >= 10 mm before -> after | add-lesion s (median, max) "
        "| other edits s (max) | undo exact |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        adds = [o for o in run.outcomes if o.action == "add"]
        removes = [o for o in run.outcomes if o.action == "remove"]
        refused = sum(bool(o.refused) for o in run.outcomes)
        add_s = [o.seconds for o in adds]
        other_s = [o.seconds for o in removes]
        b, a = run.before, run.after
        recall = f"{_fmt(b['recall_10mm'], 2)} ({b['found_10mm']}/{b['reference_10mm']}) -> "
        recall += f"{_fmt(a['recall_10mm'], 2)} ({a['found_10mm']}/{a['reference_10mm']})"
        add_text = f"{np.median(add_s):.2f}, {max(add_s):.2f}" if add_s else "-"
        other_text = f"{max(other_s):.2f}" if other_s else "-"
        lines.append(
            f"| {run.case} | {run.method} | {len(run.outcomes)} ({len(adds)}/{len(removes)}, {refused}) | "
            f"{_fmt(b['tumour_dice'])} -> {_fmt(a['tumour_dice'])} | {recall} | "
            f"{b['false_positives_10mm']} -> {a['false_positives_10mm']} | {add_text} | {other_text} | "
            f"{'yes' if run.undo_exact else 'NO'} |"
        )
    return lines


def click_lines(run: ReaderRun) -> list[str]:
    lines = []
    for number, o in enumerate(run.outcomes, start=1):
        text = f"    {run.case} {run.method} click {number}: {o.action}, {o.seconds:.2f} s, {o.changed} voxels changed"
        if o.lesion_dice_before is not None:
            text += f", lesion Dice {o.lesion_dice_before:.3f} -> {o.lesion_dice_after:.3f}"
        if o.refused:
            text += f", refused: {o.refused}"
        lines.append(text)
    return lines


def targets(runs: list[ReaderRun], times: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for run in runs:
        dice_after, recall_after = run.after["tumour_dice"], run.after["recall_10mm"]
        if dice_after is None:
            lines.append(f"  {run.case} {run.method}: no reference tumour; tumour Dice and recall are not defined")
            continue
        lines.append(
            f"  {run.case} {run.method}: tumour Dice {dice_after:.3f} {'met' if dice_after >= 0.75 else 'NOT met'} "
            f"(>= 0.75); recall >= 10 mm {_fmt(recall_after, 2)} "
            f"{'met' if recall_after is not None and recall_after >= 0.95 else 'NOT met'} (>= 0.95)"
        )
    others = [o.seconds for r in runs for o in r.outcomes if o.action != "add"]
    others += [s for case_times in times.values() for s in case_times.values()]
    for method in {r.method for r in runs}:
        mine = [o.seconds for r in runs if r.method == method for o in r.outcomes if o.action == "add"]
        if mine:
            lines.append(
                f"  add-lesion ({method}) within 2 s: max {max(mine):.2f} s, "
                f"{'met' if max(mine) <= 2.0 else 'NOT met'} ({sum(s <= 2.0 for s in mine)}/{len(mine)} within)"
            )
    if others:
        lines.append(f"  other edits within 1 s: max {max(others):.2f} s, {'met' if max(others) <= 1.0 else 'NOT met'}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=config.data_dir())
    parser.add_argument("--folds", type=Path, default=Path("training/results"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/editing"))
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "liverhealth-bench-editing", help="model labels"
    )
    parser.add_argument("--tune-cases", type=int, default=None, help="use only the first N lits tuning patients")
    args = parser.parse_args()
    started = datetime.now(UTC)
    load_start = os.getloadavg()

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    tuning_names = sorted(
        name
        for name, (_, has_tumour) in CV_PATIENTS.items()
        if name.startswith("lits") and has_tumour and any(name in FOLDS[f]["test"] for f in ("cv0", "cv1", "cv2"))
    )[: args.tune_cases]
    tuning = []
    for name in tuning_names:
        case = load_case(args.data, name, args.folds, args.cache)
        if any(click.action == "add" for click in plan_clicks(case)):
            tuning.append(case)
        log(f"tuning case {name} ({case.fold}): {len(plan_clicks(case))} clicks")
    grow, model, default, tune_lines = tune(tuning, log)

    runs, times, planned = [], {}, []
    for name in REPORT_CASES:
        case = load_case(args.data, name, args.folds, args.cache)
        planned.append(
            f"  {name} (held out by {case.fold}, model {case.model_id}): "
            + ", ".join(
                f"{c.action} {c.diameter_mm:.0f} mm{' (missed)' if c.missed else ''}" for c in plan_clicks(case)
            )
        )
        for method in (AddMethod.GROW, AddMethod.MODEL):
            runs.append(read_case(case, method, grow, model))
            log(f"reported {name} {method}")
        times[name] = other_edit_times(case)
    variant = []
    for name in REPORT_CASES:
        case = load_case(args.data, name, args.folds, args.cache)
        if [c.seed for c in plan_clicks(case, "missed-first")] != [c.seed for c in plan_clicks(case)]:
            variant += [read_case(case, m, grow, model, "missed-first") for m in (AddMethod.GROW, AddMethod.MODEL)]

    lines = [
        f"bench_editing {started:%Y-%m-%d %H:%M} UTC",
        f"command: python -m bench.bench_editing {' '.join(sys.argv[1:])}".rstrip(),
        f"machine: {platform.machine()}, {os.cpu_count()} cores, no GPU, Python {platform.python_version()}; "
        f"load average at start {load_start[0]:.2f} (a niced training job shares these cores; times include it)",
        f"data: {shown(args.data)}; fold models: {shown(args.folds)}/cascade_cv{{0,1,2}}/models",
        "",
        *tune_lines,
        "",
        "Settings used for the report below (chosen on the lits_jpg patients above, never on these two CTs):",
        f"  grow: {asdict(grow)}",
        f"  model: {asdict(model)}",
        f"  default add-lesion method: {default}",
        "",
        f"Reader: at most {CLICKS} clicks per case, in order of size; planned clicks:",
        *planned,
        "",
        *report_runs(runs),
        "",
        "Each click:",
        *[line for run in runs for line in click_lines(run)],
        "",
        "Other edits, one each on the model's labels (seconds):",
        *[f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in t.items()) for name, t in times.items()],
        "",
        "History memory after the reader's edits: "
        + ", ".join(f"{r.case} {r.method} {r.history_bytes / 1e6:.2f} MB" for r in runs),
        "",
        "Targets (issue 31):",
        *targets(runs, times),
    ]
    if variant:
        lines += [
            "",
            "Not the protocol, for comparison only: the same reader clicking missed lesions first, then by size:",
            *report_runs(variant),
        ]
    lines += ["", f"load average at end {os.getloadavg()[0]:.2f}; finished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_editing.txt").write_text(text, encoding="utf-8")
    results = {
        "grow": asdict(grow),
        "model": asdict(model),
        "default": str(default),
        "runs": [asdict(r) for r in runs],
        "variant_missed_first": [asdict(r) for r in variant],
        "other_edit_seconds": times,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
