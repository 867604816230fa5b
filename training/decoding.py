"""Choose a recipe's decoding (tumour threshold, minimum lesion volume) on inner-validation patients.

    python -m training.decoding sweep --models-dir DIR --model ID [--models-dir DIR --model ID ...] \
        [--filters training/results/fp_filter_unet] --out training/results/decoding_unet
    python -m training.decoding install --out training/results/decoding_unet --manifest M --model ID

``sweep`` runs each fold model (application environment, through ``liverhealth.inference``) on its
fold's two **inner-validation** patients only, never on a held-out one: once per tumour threshold
(``Decoding.tumour_threshold``, a logit shift) with the clean-up off, then the engine's own clean-up
(``Segmenter.clean``) once per minimum lesion volume, with the fold's cross-fitted lesion filter when
``--filters`` names them (``lesion_filter_FOLD.json`` of ``training.fp_filter fit``, fitted on other
folds' held-out patients, none of this fold's). Every combination is scored with
``training.evaluate_cv.score_case``, pooled over all folds' inner-validation patients.

The rule, fixed before the first sweep: the combination with the highest mean per-case tumour Dice;
combinations within 0.01 of it count as equal, and among them the fewest false-positive lesions per
case wins, then the one nearest the plain decoding (threshold 0.5, 20 mm³). ``install`` writes the
chosen values (and what they were chosen on) as the ``decoding`` block of a manifest entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from liverhealth.inference import Segmenter, load_manifest
from liverhealth.inference.lesion_filter import parse_lesion_filter
from liverhealth.inference.manifest import Decoding
from training.evaluate_cv import CASE_KEYS, load_patient, score_case
from training.manifest_edit import set_entry_block, with_spec
from training.protocol import FOLDS

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
MIN_LESION_MM3 = (20.0, 50.0, 100.0, 250.0)
PLAIN = (0.5, 20.0)
TIE = 0.01


def sweep_model(models_dir: Path, model_id: str, data: Path, filters: Path | None) -> list[dict]:
    """Every (threshold, minimum volume) on the model's fold's inner-validation patients: one row each."""
    manifest = load_manifest(models_dir)
    spec = manifest.get(model_id)
    fold = spec.trained.get("fold")
    if fold not in FOLDS or not FOLDS[fold].get("test"):
        raise SystemExit(f"{model_id}: fold {fold!r} is not a cross-validation fold")
    if filters is not None:
        block = json.loads((filters / f"lesion_filter_{fold}.json").read_text())
        spec = replace(spec, lesion_filter=parse_lesion_filter(model_id, block))
    rows = []
    for name in FOLDS[fold]["val"]:
        volume, reference, facts = load_patient(data, name)
        for threshold in THRESHOLDS:
            variant = replace(spec, decoding=Decoding(tumour_threshold=threshold))
            segmenter = Segmenter(with_spec(manifest, variant))
            raw = segmenter.segment(volume, model_id, clean=False)
            for minimum in MIN_LESION_MM3:
                sized = replace(variant, decoding=Decoding(tumour_threshold=threshold, min_lesion_mm3=minimum))
                labels, _ = segmenter.clean(volume, raw.labels, raw.confidence, sized)
                score = score_case(labels, reference, volume)
                rows.append(
                    {"fold": fold, "case": name, **facts, "threshold": threshold, "min_lesion_mm3": minimum, **score}
                )
            print(f"{model_id} {name} threshold {threshold}: done", file=sys.stderr)
    return rows


def pooled(rows: list[dict]) -> list[dict]:
    """Mean per-case figures of each combination over all inner-validation patients."""
    table = []
    for threshold in THRESHOLDS:
        for minimum in MIN_LESION_MM3:
            cases = [r for r in rows if r["threshold"] == threshold and r["min_lesion_mm3"] == minimum]
            if not cases:
                continue

            def mean(key: str, cases: list[dict] = cases) -> float | None:
                values = [c[key] for c in cases if c.get(key) is not None]
                return float(np.mean(values)) if values else None

            table.append(
                {
                    "threshold": threshold,
                    "min_lesion_mm3": minimum,
                    "cases": len(cases),
                    **{key: mean(key) for key in CASE_KEYS},
                }
            )
    return table


def choose(table: list[dict]) -> dict:
    """The module docstring's rule, applied to ``pooled``'s table."""
    best = max(row["tumour_dice"] or 0.0 for row in table)
    near = [row for row in table if (row["tumour_dice"] or 0.0) >= best - TIE]
    return min(
        near,
        key=lambda row: (
            row["false_positives"],
            abs(row["threshold"] - PLAIN[0]) + abs(np.log(row["min_lesion_mm3"] / PLAIN[1])),
        ),
    )


def sweep(models_dirs: list[Path], model_ids: list[str], data: Path, filters: Path | None, out: Path) -> dict:
    """Sweep every fold model, choose by the rule, write rows.json, choice.json and report.md."""
    rows = []
    for models_dir, model_id in zip(models_dirs, model_ids, strict=True):
        rows += sweep_model(models_dir, model_id, data, filters)
    table = pooled(rows)
    chosen = choose(table)
    patients = sorted({(r["fold"], r["case"]) for r in rows})
    block = {
        "tumour_threshold": chosen["threshold"],
        "min_lesion_mm3": chosen["min_lesion_mm3"],
        "chosen_on": (
            f"inner-validation patients only ({', '.join(f'{case} ({fold})' for fold, case in patients)}), each "
            f"segmented by its fold's model of {', '.join(model_ids)}"
            f"{' with its cross-fitted lesion filter' if filters else ''}; highest mean tumour Dice, "
            f"ties within {TIE} to fewer false positives"
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    (out / "choice.json").write_text(json.dumps({"decoding": block, "chosen": chosen, "table": table}, indent=2))
    (out / "report.md").write_text(report(table, chosen, block))
    return block


def report(table: list[dict], chosen: dict, block: dict) -> str:
    """The pooled table as Markdown, the chosen row marked."""

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        "# Decoding chosen on inner validation",
        "",
        block["chosen_on"],
        "",
        "| threshold | min lesion mm³ | liver Dice | tumour Dice | recall | recall ≥ 10 mm | FP / case | FP ≥ 10 mm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        mark = " **(chosen)**" if row is chosen else ""
        lines.append(
            f"| {row['threshold']}{mark} | {row['min_lesion_mm3']:g} | {fmt(row['liver_dice'])} | "
            f"{fmt(row['tumour_dice'])} | {fmt(row['lesion_recall'])} | {fmt(row['lesion_recall_10mm'])} | "
            f"{fmt(row['false_positives'])} | {fmt(row['false_positives_10mm'])} |"
        )
    return "\n".join(lines) + "\n"


def install(out: Path, manifest_path: Path, model_id: str) -> None:
    """Write the chosen ``decoding`` block into ``model_id``'s manifest entry (parser-checked)."""
    block = json.loads((out / "choice.json").read_text())["decoding"]
    set_entry_block(manifest_path, model_id, "decoding", block)
    print(f"{model_id} in {manifest_path}: decoding {block['tumour_threshold']} / {block['min_lesion_mm3']} mm³")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.decoding", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sweep")
    s.add_argument("--models-dir", type=Path, action="append", required=True)
    s.add_argument("--model", action="append", required=True)
    s.add_argument("--filters", type=Path, default=None, help="folder of lesion_filter_FOLD.json (fp_filter fit)")
    s.add_argument("--data", type=Path, default=Path("../shared/data"))
    s.add_argument("--out", type=Path, required=True)
    i = sub.add_parser("install")
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--manifest", type=Path, required=True)
    i.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    if args.command == "sweep":
        if len(args.models_dir) != len(args.model):
            parser.error("give one --model per --models-dir")
        block = sweep(args.models_dir, args.model, args.data, args.filters, args.out)
        print(json.dumps(block, indent=2))
    else:
        install(args.out, args.manifest, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
