"""Evaluate exported models on their held-out case, through the app's own engine.

    python -m training.evaluate --models-dir training/work/models_eval --data ../shared/data \
        --out training/work/eval [MODEL_ID ...]

Runs in the application environment. Each model in the manifest names the protocol fold it
was trained on (``trained.fold``); it is scored only on that fold's held-out case (see
``training.protocol``), with the ONNX file through ``liverhealth.inference.Segmenter``
(pre-processing, resizing and post-processing included), so what is measured is what ships.
Writes per-model JSON (3D per-case and per-slice metrics), an error atlas PNG (where on the case
the model goes wrong, ``training.error_atlas``), a comparison table (Markdown) and a bar chart.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from liverhealth.analysis.detection import lesion_detection
from liverhealth.analysis.metrics import dice, segmentation_report
from liverhealth.imaging.ircadb import load_ircadb_case
from liverhealth.inference import Segmenter, load_manifest
from training.error_atlas import error_atlas
from training.protocol import FOLDS

TABLE_KEYS = ("liver_dice", "tumour_dice", "miou", "kappa", "accuracy")


def per_slice(prediction: np.ndarray, reference: np.ndarray, label_test) -> float | None:
    """Mean 2D Dice over the slices where the reference or the prediction has the structure."""
    scores = [
        dice(label_test(p), label_test(r))
        for p, r in zip(prediction, reference, strict=True)
        if label_test(p).any() or label_test(r).any()
    ]
    return float(np.mean(scores)) if scores else None


def evaluate_model(models_dir: Path, model_id: str, data: Path, atlas: Path | None = None) -> dict:
    """Metrics of one exported fold model on its held-out case (and its error atlas PNG if asked)."""
    manifest = load_manifest(models_dir)
    spec = manifest.get(model_id)
    fold = spec.trained.get("fold")
    if fold not in FOLDS or FOLDS[fold]["test_case"] is None:
        raise SystemExit(f"{model_id}: fold {fold!r} has no held-out case; nothing honest to measure")
    case = FOLDS[fold]["test_case"]
    volume, reference = load_ircadb_case(data / case)
    result = Segmenter(manifest).segment(volume, model_id)
    report = segmentation_report(result.labels, reference)
    report["lesions"] = lesion_detection(result.labels, reference).to_dict()
    report.update(
        {
            "liver_dice_per_slice": per_slice(result.labels, reference, lambda a: a > 0),
            "tumour_dice_per_slice": per_slice(result.labels, reference, lambda a: a == 2),
            "model": model_id,
            "fold": fold,
            "test_case": case,
            "protocol": spec.trained.get("data") or FOLDS[fold]["protocol"],
            "inference_s": result.timings["inference_s"],
        }
    )
    if atlas is not None:
        title = (
            f"{model_id} on held-out {case}: liver Dice {report['liver_dice']:.3f}, "
            f"tumour Dice {report['tumour_dice']:.3f}"
        )
        report["atlas_slices"] = error_atlas(volume.voxels, result.labels, reference, atlas, title)
    return report


def manifest_metrics(result: dict) -> dict:
    """The metrics block of a manifest entry, with the protocol that produced it."""
    lesions = result["lesions"]
    return {
        "protocol": f"{result['protocol']}; evaluated with training.evaluate on the exported ONNX model",
        "test_case": result["test_case"],
        **{key: round(result[key], 4) for key in TABLE_KEYS},
        "liver_dice_per_slice": round(result["liver_dice_per_slice"], 4) if result["liver_dice_per_slice"] else None,
        "lesion_recall": round(lesions["recall"], 4),
        "lesions_found": f"{lesions['found']} of {lesions['reference_lesions']}",
        "false_positive_lesions": lesions["false_positives"],
    }


def comparison_table(results: list[dict]) -> str:
    """A Markdown table of the key metrics, one row per model."""
    lines = [
        "| model | fold | test case | " + " | ".join(TABLE_KEYS) + " | liver Dice / slice |",
        "|---|---|---|" + "---|" * (len(TABLE_KEYS) + 1),
    ]
    for r in results:
        per_slice_liver = r["liver_dice_per_slice"]
        lines.append(
            f"| {r['model']} | {r['fold']} | {r['test_case']} | "
            + " | ".join(f"{r[k]:.3f}" for k in TABLE_KEYS)
            + f" | {per_slice_liver:.3f} |"
            if per_slice_liver is not None
            else " | n/a |"
        )
    return "\n".join(lines)


def bar_chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(results)), 3.5))
    width = 0.8 / len(TABLE_KEYS)
    for k, key in enumerate(TABLE_KEYS):
        ax.bar(np.arange(len(results)) + k * width, [r[key] for r in results], width, label=key)
    ax.set_xticks(np.arange(len(results)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{r['model']}\n(test {r['test_case']})" for r in results], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("held-out case, 3D per-case metrics (ONNX through liverhealth.inference)", fontsize=9)
    ax.legend(fontsize=7, ncol=len(TABLE_KEYS))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate exported fold models on their held-out cases.")
    parser.add_argument("models", nargs="*", help="model ids (default: every model with a held-out fold)")
    parser.add_argument("--models-dir", type=Path, default=Path("training/work/models_eval"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("training/work/eval"))
    args = parser.parse_args(argv)
    manifest = load_manifest(args.models_dir)
    ids = args.models or [m.model_id for m in manifest.models if FOLDS.get(m.trained.get("fold"), {}).get("test_case")]
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for model_id in ids:
        result = evaluate_model(args.models_dir, model_id, args.data, args.out / f"{model_id}.errors.png")
        (args.out / f"{model_id}.json").write_text(json.dumps(result, indent=2))
        (args.out / f"{model_id}.manifest_metrics.json").write_text(json.dumps(manifest_metrics(result), indent=2))
        print(
            f"{model_id}: liver {result['liver_dice']:.3f}, tumour {result['tumour_dice']:.3f} "
            f"on {result['test_case']}",
            file=sys.stderr,
        )
        results.append(result)
    table = comparison_table(results)
    (args.out / "comparison.md").write_text(table + "\n")
    bar_chart(results, args.out / "comparison.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
