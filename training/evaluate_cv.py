"""Score cross-validation fold models on their held-out patients, and summarise the folds.

    python -m training.evaluate_cv score MODEL_ID --models-dir training/work/models_cv/cv0 --out DIR
    python -m training.evaluate_cv summary DIR/cv*/MODEL-cv*.json --out training/results/cv_MODEL

Runs in the application environment: every held-out patient goes through
``liverhealth.inference.Segmenter`` (for a cascade: locator, crop, second stage, clean-up), so
what is measured is what ships. Per case (3D): liver Dice (labels 1+2), tumour Dice (patients
with a tumour label), lesion recall (all reference lesions, and those with a longest axial
diameter of at least 10 mm), false-positive lesions (all, and at least 10 mm) and the share of true
lesions outlined with lesion Dice >= 0.5 (each against the predicted components touching it). The lits_jpg
patients are scored on their stored slices (every 2nd original slice) with the [-40, 160] HU
that is all they hold; 3Dircadb1.7's extra-hepatic mass counts as background (a hard negative).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from liverhealth.analysis.measure import feret_diameters
from liverhealth.analysis.metrics import dice
from liverhealth.domain import CtVolume
from liverhealth.imaging.ircadb import load_ircadb_case
from liverhealth.inference import Segmenter, load_manifest
from training.error_atlas import error_atlas
from training.lits_jpg import read_lits_volume
from training.protocol import CV_K, CV_PATIENTS, FOLDS

FULL_3D = ndimage.generate_binary_structure(3, 3)
LARGE_MM = 10.0
CASE_KEYS = (
    "liver_dice",
    "tumour_dice",
    "lesion_recall",
    "lesion_recall_10mm",
    "false_positives",
    "false_positives_10mm",
    "well_outlined_share",
)
WELL_OUTLINED = 0.5  # a true lesion counts as well outlined at lesion Dice >= this


def load_patient(data: Path, name: str) -> tuple[CtVolume, np.ndarray, dict]:
    """CT, reference labels (0/1/2) and facts of one cross-validation patient."""
    if name.startswith("lits"):
        lits = read_lits_volume(data / "lits_jpg", int(name[4:]))
        return (
            lits.volume,
            lits.labels,
            {"source": "3D-IRCADb" if lits.is_ircadb else "LiTS", "spacing_estimated": lits.spacing_estimated},
        )
    volume, labels = load_ircadb_case(data / name)
    return volume, labels, {"source": "3D-IRCADb", "spacing_estimated": False}


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    return ndimage.label(mask, structure=FULL_3D)


def _longest_mm(component: np.ndarray, pixel_yx: tuple[float, float]) -> float:
    slices = np.flatnonzero(component.reshape(component.shape[0], -1).any(axis=1))
    return max((feret_diameters(component[z], pixel_yx)[0] for z in slices), default=0.0)


def lesion_scores(prediction: np.ndarray, reference: np.ndarray, pixel_yx: tuple[float, float]) -> dict:
    """Lesion-wise recall and false positives, all lesions and those ≥ 10 mm (longest axial diameter).

    A reference lesion is found when a predicted tumour component overlaps it; a predicted
    component overlapping no reference lesion is a false positive.
    """
    ref, ref_count = _components(reference == 2)
    pred, pred_count = _components(prediction == 2)
    overlap = (ref > 0) & (pred > 0)
    found = set(np.unique(ref[overlap]).tolist())
    matched = set(np.unique(pred[overlap]).tolist())
    ref_objects, pred_objects = ndimage.find_objects(ref), ndimage.find_objects(pred)
    ref_sizes = [_longest_mm(ref[box] == i + 1, pixel_yx) for i, box in enumerate(ref_objects)]
    fp_sizes = [_longest_mm(pred[box] == i + 1, pixel_yx) for i, box in enumerate(pred_objects) if i + 1 not in matched]
    large = [i + 1 for i, size in enumerate(ref_sizes) if size >= LARGE_MM]
    lesion_dice = []
    for i in range(1, ref_count + 1):  # each true lesion against the predicted components touching it
        lesion = ref == i
        touching = np.unique(pred[lesion & (pred > 0)])
        drawn = np.isin(pred, touching) if touching.size else np.zeros_like(lesion)
        lesion_dice.append(dice(drawn, lesion))
    well = sum(value >= WELL_OUTLINED for value in lesion_dice)
    return {
        "reference_lesions": ref_count,
        "reference_lesions_10mm": len(large),
        "found": len(found),
        "found_10mm": len([i for i in large if i in found]),
        "lesion_recall": len(found) / ref_count if ref_count else None,
        "lesion_recall_10mm": len([i for i in large if i in found]) / len(large) if large else None,
        "predicted_lesions": pred_count,
        "false_positives": len(fp_sizes),
        "false_positives_10mm": sum(size >= LARGE_MM for size in fp_sizes),
        "reference_diameters_mm": [round(size, 1) for size in ref_sizes],
        "lesion_dice": [round(value, 3) for value in lesion_dice],
        "well_outlined": well,
        "well_outlined_share": well / ref_count if ref_count else None,
    }


def score_case(prediction: np.ndarray, reference: np.ndarray, volume: CtVolume) -> dict:
    """3D per-case metrics of one held-out patient, plus the voxel counts pooled into global Dice."""
    pixel_yx = (volume.spacing[1], volume.spacing[2])
    has_tumour = bool((reference == 2).any())
    liver_p, liver_r = prediction > 0, reference > 0
    tumour_p, tumour_r = prediction == 2, reference == 2
    return {
        "liver_dice": dice(liver_p, liver_r),
        "tumour_dice": dice(tumour_p, tumour_r) if has_tumour else None,
        **lesion_scores(prediction, reference, pixel_yx),
        "liver_ml": float(liver_p.sum()) * float(np.prod(volume.spacing)) / 1000,
        "reference_liver_ml": float(liver_r.sum()) * float(np.prod(volume.spacing)) / 1000,
        "counts": {
            "liver": [int(np.count_nonzero(liver_p & liver_r)), int(liver_p.sum()), int(liver_r.sum())],
            "tumour": [int(np.count_nonzero(tumour_p & tumour_r)), int(tumour_p.sum()), int(tumour_r.sum())],
        },
    }


def summarise(cases: list[dict]) -> dict:
    """Mean and sd of each per-case metric (over the cases that have it), global Dice, and by source."""

    def stats(rows: list[dict]) -> dict:
        out: dict = {"cases": len(rows)}
        for key in CASE_KEYS:
            values = [row[key] for row in rows if row.get(key) is not None]
            out[key] = (
                {
                    "mean": float(np.mean(values)),
                    "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                    "n": len(values),
                }
                if values
                else None
            )
        lesions = sum(row.get("reference_lesions", 0) for row in rows)
        well = [row["well_outlined"] for row in rows if "well_outlined" in row]
        out["pooled_well_outlined_share"] = sum(well) / lesions if lesions and len(well) == len(rows) else None
        for structure in ("liver", "tumour"):
            inter = sum(row["counts"][structure][0] for row in rows)
            total = sum(row["counts"][structure][1] + row["counts"][structure][2] for row in rows)
            out[f"global_{structure}_dice"] = 2 * inter / total if total else None
        return out

    summary = stats(cases)
    summary["by_source"] = {
        source: stats([c for c in cases if c["source"] == source]) for source in sorted({c["source"] for c in cases})
    }
    return summary


def score_model(models_dir: Path, model_id: str, data: Path, out: Path, patients: list[str] | None = None) -> dict:
    """Score a fold model on its fold's held-out patients; writes ``MODEL.json`` and error atlases.

    With ``patients``, any model on those patients instead (e.g. an older model on patients it
    never saw), its result labelled with the patients and the model's own protocol."""
    manifest = load_manifest(models_dir)
    spec = manifest.get(model_id)
    fold = spec.trained.get("fold")
    if patients:
        tested, protocol = patients, f"{spec.metrics.get('protocol', '')}; scored on {', '.join(patients)}"
    elif fold in FOLDS and FOLDS[fold].get("test"):
        tested, protocol = FOLDS[fold]["test"], FOLDS[fold]["protocol"]
    else:
        raise SystemExit(f"{model_id}: fold {fold!r} has no held-out patients; nothing honest to measure")
    segmenter = Segmenter(manifest)
    out.mkdir(parents=True, exist_ok=True)
    cases = []
    for name in tested:
        volume, reference, facts = load_patient(data, name)
        result = segmenter.segment(volume, model_id)
        case = {
            "case": name,
            **facts,
            **score_case(result.labels, reference, volume),
            "inference_s": result.timings["inference_s"],
        }
        cases.append(case)
        tumour = f"{case['tumour_dice']:.3f}" if case["tumour_dice"] is not None else "n/a"
        title = f"{model_id} on held-out {name}: liver Dice {case['liver_dice']:.3f}, tumour Dice {tumour}"
        case["atlas_slices"] = error_atlas(
            volume.voxels, result.labels, reference, out / f"{model_id}.{name}.errors.png", title
        )
        print(
            f"{model_id} {name}: liver {case['liver_dice']:.3f}, tumour {tumour}, "
            f"lesions {case['found']}/{case['reference_lesions']}, FP {case['false_positives']}",
            file=sys.stderr,
        )
    result = {
        "model": model_id,
        "fold": fold,
        "protocol": protocol,
        "trained": spec.trained,
        "cases": cases,
        "summary": summarise(cases),
    }
    (out / f"{model_id}.json").write_text(json.dumps(result, indent=2))
    return result


def format_stat(stat: dict | None) -> str:
    """'mean ± sd' of one summarised metric, or 'n/a' when no case has it."""
    return "n/a" if not stat else f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def fold_table(results: list[dict]) -> str:
    """Markdown: one row per fold, then the mean over all held-out cases."""
    lines = [
        "| fold | cases | liver Dice | tumour Dice | global liver | global tumour | recall | recall ≥10 mm "
        "| FP / case | FP ≥10 mm / case | lesions Dice ≥ 0.5 per case | pooled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(r["fold"], r["summary"]) for r in results]
    rows.append(("all held-out cases", summarise([c for r in results for c in r["cases"]])))
    for name, s in rows:
        g_l = f"{s['global_liver_dice']:.3f}" if s["global_liver_dice"] is not None else "n/a"
        g_t = f"{s['global_tumour_dice']:.3f}" if s["global_tumour_dice"] is not None else "n/a"
        liver, tumour, *lesions = (format_stat(s.get(key)) for key in CASE_KEYS)
        pooled = _share(s.get("pooled_well_outlined_share"))
        cells = [name, str(s["cases"]), liver, tumour, g_l, g_t, *lesions, pooled]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def summary_report(paths: list[Path], out: Path) -> dict:
    """Collect fold results into ``summary.json`` and ``summary.md`` (per fold, all cases, by source)."""
    results = [json.loads(Path(p).read_text()) for p in paths]
    cases = [c for r in results for c in r["cases"]]
    summary = {
        "folds": [r["fold"] for r in results],
        "models": [r["model"] for r in results],
        "protocol": results[0]["protocol"].split("; this model")[0] if results else "",
        "per_fold": {r["fold"]: r["summary"] for r in results},
        "all": summarise(cases),
        "missing_patients": sorted(set(CV_PATIENTS) - {c["case"] for c in cases}),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    by_source = summary["all"]["by_source"]
    text = [
        f"Protocol: {summary['protocol']}.",
        "",
        fold_table(results),
        "",
        "By source (all held-out cases):",
        "",
        "| source | cases | liver Dice | tumour Dice | recall ≥10 mm | FP / case | FP ≥10 mm "
        "| lesions Dice ≥ 0.5 (pooled) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for source, s in by_source.items():
        text.append(
            f"| {source} | {s['cases']} | {format_stat(s['liver_dice'])} | {format_stat(s['tumour_dice'])} "
            f"| {format_stat(s['lesion_recall_10mm'])} | {format_stat(s['false_positives'])} "
            f"| {format_stat(s['false_positives_10mm'])} | {_share(s.get('pooled_well_outlined_share'))} |"
        )
    if summary["missing_patients"]:
        text += ["", f"Not yet scored (their folds have not run): {', '.join(summary['missing_patients'])}."]
    (out / "summary.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return summary


def manifest_metrics(summary: dict, weights_fold: str | None = None) -> dict:
    """The shipped model's manifest ``metrics``: the cross-validation means of its recipe (``summary.json``
    of ``summary_report``), with the protocol they came from, for a model trained on all patients.

    With ``weights_fold`` the shipped weights are that fold's own model (not retrained on all
    patients): the summary must hold that fold alone, and the protocol says so."""
    overall = summary["all"]
    protocol = FOLDS["cvall"]["protocol"]
    if weights_fold is not None:
        if summary["folds"] != [weights_fold]:
            raise SystemExit(
                f"the summary holds folds {', '.join(summary['folds'])}; the weights of fold {weights_fold} "
                "can carry only that fold's own scores"
            )
        protocol = (
            f"{FOLDS[weights_fold]['protocol']}; the shipped stage-2 weights are this fold's own (not "
            f"retrained on all patients), scored on the {overall['cases']} patients they never saw behind "
            "the fold's liver locator (shipped behind the locator trained on all 28)"
        )
    elif len(summary["folds"]) < CV_K:
        protocol += (
            f"; only fold(s) {', '.join(summary['folds'])} of {CV_K} scored for this recipe "
            f"({overall['cases']} held-out patients)"
        )
    metrics: dict = {"protocol": protocol, "cv_folds": len(summary["folds"])}
    for key in CASE_KEYS:
        if overall.get(key):
            metrics[key] = round(overall[key]["mean"], 6)  # 6: the app rounds to 3, no double rounding
            metrics[f"{key}_sd"] = round(overall[key]["sd"], 6)
    for key in ("global_liver_dice", "global_tumour_dice", "pooled_well_outlined_share"):
        if overall.get(key) is not None:
            metrics[key] = round(overall[key], 6)
    metrics["cv_patients"] = overall["cases"]
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score cross-validation fold models on held-out patients.")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score one fold model")
    score.add_argument("model")
    score.add_argument("--models-dir", type=Path, required=True)
    score.add_argument("--data", type=Path, default=Path("../shared/data"))
    score.add_argument("--out", type=Path, required=True)
    score.add_argument("--patients", nargs="+", default=None, help="score on these patients, not the fold's")
    summary = sub.add_parser("summary", help="collect fold results")
    summary.add_argument("results", nargs="+", type=Path)
    summary.add_argument("--out", type=Path, required=True)
    metrics = sub.add_parser("metrics", help="the manifest metrics of a model trained on all patients")
    metrics.add_argument("summary", type=Path, help="summary.json of the recipe's folds")
    metrics.add_argument("--out", type=Path, required=True)
    metrics.add_argument(
        "--weights-fold", default=None, help="the shipped weights are this fold's model, not retrained on all"
    )
    args = parser.parse_args(argv)
    if args.command == "score":
        score_model(args.models_dir, args.model, args.data, args.out, args.patients)
    elif args.command == "metrics":
        args.out.write_text(
            json.dumps(manifest_metrics(json.loads(args.summary.read_text()), args.weights_fold), indent=2)
        )
    else:
        summary_report(args.results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
