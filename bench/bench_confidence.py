"""Is the model's confidence worth showing? Calibration on held-out patients, and its cost.

    python -m bench.bench_confidence [--data ../shared/data] [--folds training/results] [--out bench/results/confidence]

Calibration: every cross-validation fold's cascade (``training/results/cascade_cvN/models``)
segments its own held-out patients (never a patient it trained on) through
``liverhealth.inference``; each predicted lesion gets the confidence the app shows (mean
margin over the lesion and its rim) and is scored against the expert labels: a true lesion
(overlaps a reference tumour) or a false positive, and for a true lesion its Dice with the
reference tumour it overlaps ("poorly outlined": Dice < 0.5). Reported: the AUC of confidence
for telling true lesions from false positives (95 % interval by resampling patients), precision
and well-outlined share per confidence bin, and the "check first" threshold chosen
leave-one-fold-out (Youden's J on the other folds' lesions, applied to this fold's), so no
threshold is judged on the lesions it was chosen on. The liver's edge confidence is set against
its Dice per patient (Spearman). The shipped threshold is Youden's J over all folds' lesions,
written to calibration.json only when the AUC's lower bound is above 0.5.

Cost: the default model on 3Dircadb1.1 (129 slices) with and without the confidence map,
alternating, in this run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

from bench.paths import shown
from liverhealth import config
from liverhealth.analysis.measure import find_lesions, measure
from liverhealth.analysis.metrics import dice
from liverhealth.imaging.ircadb import load_ircadb_case
from liverhealth.inference import Segmenter, load_manifest
from training.evaluate_cv import load_patient
from training.protocol import CV_PROTOCOL, FOLDS

FULL_3D = ndimage.generate_binary_structure(3, 3)
POOR_DICE = 0.5
BINS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.01)


def lesion_rows(fold: str, name: str, measured, prediction: np.ndarray, reference: np.ndarray) -> list[dict]:
    """One row per predicted lesion: its confidence, whether it is true, its Dice when it is."""
    ref_components, _ = ndimage.label(reference == 2, structure=FULL_3D)
    rows = []
    for lesion, (crop, offset) in zip(measured.lesions, find_lesions(prediction == 2), strict=True):
        box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
        hit = np.unique(ref_components[box][crop])
        hit = hit[hit > 0]
        row = {
            "fold": fold,
            "case": name,
            "lesion": lesion.lesion_id,
            "diameter_mm": round(lesion.longest_diameter_mm or 0.0, 1),
            "confidence": lesion.confidence,
            "true": bool(hit.size),
            "dice": None,
        }
        if hit.size:
            mask = np.zeros(prediction.shape, dtype=bool)
            mask[box] = crop
            row["dice"] = round(dice(mask, np.isin(ref_components, hit)), 4)
        rows.append(row)
    return rows


def auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """P(a true lesion's confidence > a false positive's), ties counting half (Mann-Whitney)."""
    if not len(positive) or not len(negative):
        return None
    return float(stats.mannwhitneyu(positive, negative).statistic / (len(positive) * len(negative)))


def youden_threshold(confidence: np.ndarray, true: np.ndarray) -> float:
    """The threshold t maximising recall of true lesions (>= t) + share of false positives below t - 1."""
    best, best_j = 0.5, -1.0
    for t in np.unique(confidence):
        j = (confidence[true] >= t).mean() + (confidence[~true] < t).mean() - 1.0
        if j > best_j:
            best, best_j = float(t), j
    return best


def patient_bootstrap(rows: list[dict], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the AUC, resampling patients (lesions of one patient stay together)."""
    rng = np.random.default_rng(seed)
    cases = sorted({r["case"] for r in rows})
    by_case = {c: [r for r in rows if r["case"] == c] for c in cases}
    values = []
    for _ in range(draws):
        sample = [r for c in rng.choice(cases, len(cases)) for r in by_case[c]]
        conf = np.array([r["confidence"] for r in sample])
        true = np.array([r["true"] for r in sample])
        value = auc(conf[true], conf[~true])
        if value is not None:
            values.append(value)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def calibrate(data: Path, folds_dir: Path) -> tuple[list[dict], list[dict]]:
    lesions, livers = [], []
    for fold in ("cv0", "cv1", "cv2"):
        models = folds_dir / f"cascade_{fold}" / "models"
        manifest = load_manifest(models)
        segmenter = Segmenter(manifest)
        for name in FOLDS[fold]["test"]:
            volume, reference, facts = load_patient(data, name)
            result = segmenter.segment(volume, f"unet-{fold}")
            measured = measure(volume, result.labels, result.confidence)
            lesions += lesion_rows(fold, name, measured, result.labels, reference)
            livers.append(
                {
                    "fold": fold,
                    "case": name,
                    "source": facts["source"],
                    "liver_confidence": measured.liver_confidence,
                    "liver_dice": round(dice(result.labels > 0, reference > 0), 4),
                }
            )
            print(f"  {fold} {name}: {len(measured.lesions)} lesions, liver edge {measured.liver_confidence}")
    return lesions, livers


def report(lesions: list[dict], livers: list[dict]) -> tuple[list[str], dict]:
    conf = np.array([r["confidence"] for r in lesions])
    true = np.array([r["true"] for r in lesions])
    lines = [
        f"{len(lesions)} predicted lesions on {len(livers)} held-out patients: {int(true.sum())} true, "
        f"{int((~true).sum())} false positives",
    ]
    overall = auc(conf[true], conf[~true])
    low, high = patient_bootstrap(lesions)
    lines.append(
        f"AUC of confidence, true lesion vs false positive: {overall:.3f} (95 % interval {low:.3f}-{high:.3f})"
    )
    large = np.array([r["diameter_mm"] >= 10 for r in lesions])
    large_auc = auc(conf[true & large], conf[~true & large])
    lines.append(
        f"  lesions >= 10 mm only: {int((true & large).sum())} true, {int((~true & large).sum())} FP, "
        f"AUC {large_auc:.3f}"
        if large_auc is not None
        else "  lesions >= 10 mm only: too few to tell"
    )
    lines += [
        "",
        "| confidence | lesions | true | precision | well outlined (Dice >= 0.5) of the true |",
        "|---|---|---|---|---|",
    ]
    for lo, hi in itertools.pairwise(BINS):
        inside = (conf >= lo) & (conf < hi)
        if not inside.any():
            continue
        good = [r["dice"] >= POOR_DICE for r, i in zip(lesions, inside, strict=True) if i and r["true"]]
        share = f"{np.mean(good):.2f} ({sum(good)}/{len(good)})" if good else "-"
        lines.append(
            f"| {lo:.1f}-{min(hi, 1.0):.1f} | {int(inside.sum())} | {int(true[inside].sum())} | "
            f"{true[inside].mean():.2f} | {share} |"
        )
    lines += ["", "Check-first flag, threshold chosen on the other two folds (leave one fold out):"]
    flagged_true = flagged = unflagged_true = unflagged = 0
    for fold in ("cv0", "cv1", "cv2"):
        here = np.array([r["fold"] == fold for r in lesions])
        threshold = youden_threshold(conf[~here], true[~here])
        flag = here & (conf < threshold)
        keep = here & (conf >= threshold)
        flagged, flagged_true = flagged + int(flag.sum()), flagged_true + int(true[flag].sum())
        unflagged, unflagged_true = unflagged + int(keep.sum()), unflagged_true + int(true[keep].sum())
        lines.append(
            f"  {fold}: threshold {threshold:.3f}; flagged {int(flag.sum())} (true {int(true[flag].sum())}, FP "
            f"{int((~true[flag]).sum())}), not flagged {int(keep.sum())} (true {int(true[keep].sum())}, FP "
            f"{int((~true[keep]).sum())})"
        )
    lines.append(
        f"  all folds: precision of flagged lesions {flagged_true / max(flagged, 1):.2f} ({flagged_true}/{flagged}), "
        f"of the others {unflagged_true / max(unflagged, 1):.2f} ({unflagged_true}/{unflagged}); "
        f"false positives caught by the flag {flagged - flagged_true} of {int((~true).sum())}"
    )
    true_dice = [(r["confidence"], r["dice"]) for r in lesions if r["true"]]
    rho = stats.spearmanr([c for c, _ in true_dice], [d for _, d in true_dice])
    lines.append(
        f"True lesions: Spearman rho(confidence, lesion Dice) {rho.statistic:.3f} "
        f"(p {rho.pvalue:.2g}, n {len(true_dice)})"
    )
    liver = [(r["liver_confidence"], r["liver_dice"]) for r in livers if r["liver_confidence"] is not None]
    rho_liver = stats.spearmanr([c for c, _ in liver], [d for _, d in liver])
    lines.append(
        f"Liver: Spearman rho(edge confidence, liver Dice) {rho_liver.statistic:.3f} (p {rho_liver.pvalue:.2g}, "
        f"n {len(liver)}); edge confidence {min(c for c, _ in liver):.3f}-{max(c for c, _ in liver):.3f}"
    )
    calibration: dict = {
        "lesion_auc": round(overall, 3),
        "lesion_auc_95": [round(low, 3), round(high, 3)],
        "lesions": len(lesions),
        "false_positives": int((~true).sum()),
        "protocol": "per-lesion confidence (mean margin over lesion and 2 mm rim) of the 3 cross-validation fold "
        "cascades on their own held-out patients; " + CV_PROTOCOL.format(k=3, what="is the fold's cascade"),
    }
    if low > 0.5:
        calibration["lesion_flag_below"] = round(youden_threshold(conf, true), 3)
        lines.append(f"Shipped threshold (Youden's J over all folds' lesions): {calibration['lesion_flag_below']}")
    else:
        lines.append("The AUC's interval reaches 0.5: confidence does not separate them; no flag is shipped.")
    if rho_liver.pvalue < 0.05 and rho_liver.statistic > 0:
        lines.append("Liver edge confidence tracks liver Dice; no liver threshold is shipped (28 patients are few).")
    return lines, calibration


def cost(data: Path, models: Path, repeats: int = 5) -> list[str]:
    """Segmentation time with and without the confidence map (alternating runs), and the engine's own
    account of the confidence step (``confidence_s``), which other load on the machine hardly moves."""
    volume, _ = load_ircadb_case(data / "3Dircadb1.1")
    manifest = load_manifest(models)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    shares = []
    Segmenter(manifest).segment(volume)  # warm the session
    for _ in range(repeats):
        for with_confidence in (False, True):
            started = time.perf_counter()
            result = Segmenter(manifest, confidence=with_confidence).segment(volume)
            seconds[with_confidence].append(time.perf_counter() - started)
            if with_confidence:
                shares.append(
                    result.timings["confidence_s"] / (result.timings["inference_s"] - result.timings["confidence_s"])
                )
    off, on = np.median(seconds[False]), np.median(seconds[True])
    return [
        f"Cost, default model '{manifest.default}' ({shown(models)}) on 3Dircadb1.1 (129 slices), median of {repeats} "
        "alternating runs:",
        f"  without confidence {off:.2f} s, with {on:.2f} s: {on / off:.3f}x ({100 * (on / off - 1):+.1f} %)",
        f"  the confidence step itself (engine timings): +{100 * np.median(shares):.1f} % of the segmentation "
        f"(range {100 * min(shares):.1f}-{100 * max(shares):.1f} %)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=config.data_dir())
    parser.add_argument("--folds", type=Path, default=Path("training/results"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/confidence"))
    parser.add_argument("--models", type=Path, default=config.models_dir(), help="the models whose cost is measured")
    parser.add_argument("--skip-calibration", action="store_true")
    args = parser.parse_args()
    lines = [f"bench_confidence {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; data {shown(args.data)}"]
    lines += cost(args.data, args.models)
    if not args.skip_calibration:
        lesions, livers = calibrate(args.data, args.folds)
        table, calibration = report(lesions, livers)
        lines += ["", *table]
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "lesions.json").write_text(json.dumps({"lesions": lesions, "livers": livers}, indent=1))
        (args.out / "calibration.json").write_text(json.dumps(calibration, indent=2))
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_confidence.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
