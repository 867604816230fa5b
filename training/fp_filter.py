"""Fit and measure the lesion-level false-positive filter on cross-validation folds' held-out predictions.

    python -m training.fp_filter collect --models-dir DIR_cv0 --models-dir DIR_cv1 --models-dir DIR_cv2 \
        --model unet-cv0 --model unet-cv1 --model unet-cv2 --out training/results/fp_filter_unet
    python -m training.fp_filter fit --out training/results/fp_filter_unet
    python -m training.fp_filter install --out training/results/fp_filter_unet --manifest models/manifest.json \
        --model unet [--fold cv0]
    python -m training.fp_filter plot-models --evaluation training/results/fp_filter_unet/evaluation.json \
        --scored training/results/cascade_cv0/unet-cv0.json ... --plot training/results/froc_models.png

Runs in the application environment (it segments through ``liverhealth.inference``, as the app does,
and fits with scikit-learn). ``collect`` segments every fold's held-out patients with that fold's
model, the filter switched off, and writes each predicted tumour component's features
(``liverhealth.inference.lesion_filter.FEATURES``) with whether it overlaps a reference lesion.

``fit`` measures the filter honestly by cross-fitting: for fold k, a logistic regression is fitted on
the components of the other folds' held-out patients (which are fold k's training patients, predicted
by models that never saw them) and its threshold chosen there, by a rule fixed in advance: the
largest threshold that keeps at least 95 % of the reference lesions >= 10 mm those patients' models
found, on out-of-patient predictions (GroupKFold by patient); then it is applied to fold k's held-out
patients, which neither the filter nor its threshold saw. It writes per-fold and pooled recall and
false positives with and without the filter, the recall-versus-false-positives curve (FROC-style) of
the filter's threshold against the minimum-size rule, and the filter fitted on all folds' components
(with its threshold by the same rule) for ``install`` to put in a manifest entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import ndimage

from liverhealth.inference import Segmenter, load_manifest
from liverhealth.inference.lesion_filter import FEATURES, LesionFilter, lesion_features, parse_lesion_filter
from training.evaluate_cv import LARGE_MM, _longest_mm, load_patient
from training.manifest_edit import set_entry_block, with_spec
from training.protocol import FOLDS

FULL_3D = ndimage.generate_binary_structure(3, 3)
KEEP_FOUND = 0.95  # the threshold rule: keep >= 95 % of the found reference lesions >= 10 mm


def collect_case(segmenter: Segmenter, model_id: str, volume, reference: np.ndarray) -> dict:
    """One held-out patient: its reference lesions (diameters) and each predicted component's
    features, size and the reference lesions it overlaps."""
    segmentation = segmenter.segment(volume, model_id)
    labels = segmentation.labels
    pixel_yx = (volume.spacing[1], volume.spacing[2])
    ref, _ = ndimage.label(reference == 2, structure=FULL_3D)
    ref_sizes = [_longest_mm(ref[box] == i + 1, pixel_yx) for i, box in enumerate(ndimage.find_objects(ref))]
    components = []
    for crop, offset, values in lesion_features(volume.voxels, labels, segmentation.confidence, volume.spacing):
        box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
        hits = sorted(int(i) for i in np.unique(ref[box][crop]) if i > 0)
        components.append({"features": values, "diameter_mm": round(_longest_mm(crop, pixel_yx), 2), "overlaps": hits})
    return {"reference_diameters_mm": [round(s, 2) for s in ref_sizes], "components": components}


def collect(models_dirs: list[Path], model_ids: list[str], data: Path, out: Path) -> Path:
    """Segment each fold's held-out patients with its model (the filter off) and write rows.json."""
    cases = []
    for models_dir, model_id in zip(models_dirs, model_ids, strict=True):
        manifest = load_manifest(models_dir)
        spec = manifest.get(model_id)
        fold = spec.trained.get("fold")
        if fold not in FOLDS or not FOLDS[fold].get("test"):
            raise SystemExit(f"{model_id}: fold {fold!r} has no held-out patients")
        segmenter = Segmenter(with_spec(manifest, replace(spec, lesion_filter=None)))
        for name in FOLDS[fold]["test"]:
            volume, reference, _ = load_patient(data, name)
            case = {
                "case": name,
                "fold": fold,
                "model": model_id,
                **collect_case(segmenter, model_id, volume, reference),
            }
            cases.append(case)
            print(
                f"{model_id} {name}: {len(case['components'])} components, "
                f"{len(case['reference_diameters_mm'])} reference lesions",
                file=sys.stderr,
            )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "rows.json"
    path.write_text(json.dumps({"features": list(FEATURES), "cases": cases}, indent=1))
    return path


def _matrix(cases: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels (overlaps a reference lesion) and patient group of every component."""
    rows = [(c["features"], bool(c["overlaps"]), case["case"]) for case in cases for c in case["components"]]
    x = np.array([[values[name] for name in FEATURES] for values, _, _ in rows], dtype=float).reshape(-1, len(FEATURES))
    y = np.array([truth for _, truth, _ in rows], dtype=bool)
    groups = np.array([group for _, _, group in rows])
    return x, y, groups


def lesion_counts(cases: list[dict], keep: list[np.ndarray]) -> dict:
    """Recall (all and >= 10 mm) and false positives per case (all and >= 10 mm) when only the
    components marked in ``keep`` (one bool array per case) stay."""
    ref_all = ref_large = found_all = found_large = fp = fp_large = 0
    for case, kept in zip(cases, keep, strict=True):
        sizes = case["reference_diameters_mm"]
        found = {i for c, k in zip(case["components"], kept, strict=True) if k for i in c["overlaps"]}
        ref_all += len(sizes)
        ref_large += sum(s >= LARGE_MM for s in sizes)
        found_all += len(found)
        found_large += sum(1 for i in found if sizes[i - 1] >= LARGE_MM)
        false = [c for c, k in zip(case["components"], kept, strict=True) if k and not c["overlaps"]]
        fp += len(false)
        fp_large += sum(c["diameter_mm"] >= LARGE_MM for c in false)
    n = max(len(cases), 1)
    return {
        "cases": len(cases),
        "recall": found_all / ref_all if ref_all else None,
        "recall_10mm": found_large / ref_large if ref_large else None,
        "found_10mm": found_large,
        "reference_10mm": ref_large,
        "fp_per_case": fp / n,
        "fp_10mm_per_case": fp_large / n,
    }


def _probabilities(model: LesionFilter, cases: list[dict]) -> list[np.ndarray]:
    return [np.array([model.probability(c["features"]) for c in case["components"]]) for case in cases]


def fit_filter(cases: list[dict], provenance: dict) -> LesionFilter:
    """A logistic regression on the components of ``cases``, its threshold by the stated rule on
    out-of-patient predictions within them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    x, y, groups = _matrix(cases)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    classifier = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(z, y)
    # out-of-patient probabilities for the threshold
    oof = np.zeros(len(y))
    splits = min(5, len(set(groups)))
    for train, test in GroupKFold(n_splits=splits).split(z, y, groups):
        if len(set(y[train])) < 2:
            oof[test] = 0.5
            continue
        inner = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(z[train], y[train])
        oof[test] = inner.predict_proba(z[test])[:, 1]
    per_case, start = [], 0
    for case in cases:
        per_case.append(oof[start : start + len(case["components"])])
        start += len(case["components"])
    threshold = choose_threshold(cases, per_case)
    return LesionFilter(
        features=FEATURES,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in classifier.coef_[0]),
        intercept=float(classifier.intercept_[0]),
        threshold=threshold,
        provenance={**provenance, "threshold_rule": f"largest keeping >= {KEEP_FOUND:.0%} of found lesions >= 10 mm"},
    )


def choose_threshold(cases: list[dict], probabilities: list[np.ndarray]) -> float:
    """The largest threshold that keeps at least KEEP_FOUND of the reference lesions >= 10 mm found
    without the filter."""
    everything = [np.ones(len(p), dtype=bool) for p in probabilities]
    found = lesion_counts(cases, everything)["found_10mm"]
    best = 0.0
    for threshold in np.round(np.arange(0.0, 0.96, 0.01), 2):
        kept = [p >= threshold for p in probabilities]
        if lesion_counts(cases, kept)["found_10mm"] >= KEEP_FOUND * found:
            best = float(threshold)
    return best


def froc(cases: list[dict], probabilities: list[np.ndarray]) -> dict[str, list[dict]]:
    """Recall >= 10 mm against false positives per case: the filter's threshold swept, and the
    minimum-diameter rule swept (the simple baseline)."""
    curves: dict[str, list[dict]] = {"filter": [], "min_diameter": []}
    for threshold in np.round(np.arange(0.0, 1.0, 0.05), 2):
        kept = [p >= threshold for p in probabilities]
        curves["filter"].append({"threshold": float(threshold), **lesion_counts(cases, kept)})
    for diameter in (0, 3, 5, 7.5, 10, 12.5, 15, 20, 25, 30):
        kept = [np.array([c["diameter_mm"] >= diameter for c in case["components"]], dtype=bool) for case in cases]
        curves["min_diameter"].append({"min_diameter_mm": diameter, **lesion_counts(cases, kept)})
    return curves


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def fit(out: Path) -> dict:
    """Cross-fitted evaluation, the FROC plot, and the filter fitted on every fold."""
    rows = json.loads((out / "rows.json").read_text())
    cases = rows["cases"]
    folds = sorted({case["fold"] for case in cases})
    per_fold: list[dict] = []
    all_probabilities: list[np.ndarray] = []
    kept_after: list[np.ndarray] = []
    ordered: list[dict] = []
    for fold in folds:
        train = [case for case in cases if case["fold"] != fold]
        test = [case for case in cases if case["fold"] == fold]
        model = fit_filter(train, {"fitted_on": f"held-out predictions of the folds other than {fold}"})
        (out / f"lesion_filter_{fold}.json").write_text(json.dumps(model.to_dict(), indent=1))
        probabilities = _probabilities(model, test)
        before = lesion_counts(test, [np.ones(len(p), dtype=bool) for p in probabilities])
        after = lesion_counts(test, [p >= model.threshold for p in probabilities])
        per_fold.append({"fold": fold, "threshold": model.threshold, "before": before, "after": after})
        ordered += test
        all_probabilities += probabilities
        kept_after += [p >= model.threshold for p in probabilities]
    pooled_before = lesion_counts(ordered, [np.ones(len(p), dtype=bool) for p in all_probabilities])
    pooled_after = lesion_counts(ordered, kept_after)
    curves = froc(ordered, all_probabilities)
    models = sorted({case["model"] for case in cases})
    final = fit_filter(
        cases,
        {
            "fitted_on": f"held-out predictions of {', '.join(models)} on their folds' held-out patients "
            f"({len(cases)} patients, {sum(len(c['components']) for c in cases)} predicted components)",
            "fitted": datetime.now(UTC).strftime("%Y-%m-%d"),
            "cross_fitted": {
                "pooled_before": pooled_before,
                "pooled_after": pooled_after,
                "protocol": "per fold: fitted and thresholded on the other folds' held-out patients, scored "
                "on this fold's held-out patients",
            },
        },
    )
    summary = {"per_fold": per_fold, "pooled_before": pooled_before, "pooled_after": pooled_after, "froc": curves}
    (out / "evaluation.json").write_text(json.dumps(summary, indent=1))
    (out / "lesion_filter.json").write_text(json.dumps(final.to_dict(), indent=1))
    _plot(curves, pooled_before, pooled_after, out / "froc.png", models)
    lines = [
        f"fp_filter fit {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {out / 'rows.json'} ({', '.join(models)})",
        "| fold | threshold | recall >= 10 mm before -> after | FP / case before -> after | FP >= 10 mm / case |",
        "|---|---|---|---|---|",
    ]
    for row in per_fold:
        b, a = row["before"], row["after"]
        lines.append(
            f"| {row['fold']} | {row['threshold']:.2f} | {_fmt(b['recall_10mm'])} -> {_fmt(a['recall_10mm'])} "
            f"| {b['fp_per_case']:.2f} -> {a['fp_per_case']:.2f} | {b['fp_10mm_per_case']:.2f} -> "
            f"{a['fp_10mm_per_case']:.2f} |"
        )
    lines.append(
        f"| pooled ({pooled_before['cases']} patients) | - | {_fmt(pooled_before['recall_10mm'])} -> "
        f"{_fmt(pooled_after['recall_10mm'])} | {pooled_before['fp_per_case']:.2f} -> "
        f"{pooled_after['fp_per_case']:.2f} | {pooled_before['fp_10mm_per_case']:.2f} -> "
        f"{pooled_after['fp_10mm_per_case']:.2f} |"
    )
    lines.append(
        f"final filter (all folds): threshold {final.threshold:.2f}, coefficients "
        + ", ".join(f"{n} {c:+.2f}" for n, c in zip(final.features, final.coef, strict=True))
    )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


def _plot(curves: dict, before: dict, after: dict, path: Path, models: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.2))
    for name, key, style in (
        ("false-positive filter threshold", "filter", "o-"),
        ("minimum diameter", "min_diameter", "s--"),
    ):
        points = [(p["fp_per_case"], p["recall_10mm"]) for p in curves[key] if p["recall_10mm"] is not None]
        axes.plot(*zip(*points, strict=True), style, label=f"sweeping the {name}", markersize=4)
    axes.plot([before["fp_per_case"]], [before["recall_10mm"]], "k^", label="model as it is")
    axes.plot(
        [after["fp_per_case"]], [after["recall_10mm"]], "r*", markersize=12, label="filter, cross-fitted thresholds"
    )
    axes.set_xlabel("false-positive lesions per case")
    axes.set_ylabel("recall of lesions >= 10 mm")
    axes.set_title(f"{', '.join(models)}: held-out patients (cross-validation)", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def operating_point(scored: dict) -> dict:
    """One model's point on the curve from its `evaluate_cv score` file: pooled recall of lesions
    >= 10 mm (found / reference, as the curves count it) and false-positive lesions per case."""
    cases = scored["cases"]
    reference = sum(c["reference_lesions_10mm"] for c in cases)
    return {
        "model": scored["model"],
        "cases": len(cases),
        "recall_10mm": sum(c["found_10mm"] for c in cases) / reference if reference else None,
        "fp_per_case": sum(c["false_positives"] for c in cases) / len(cases),
    }


def plot_models(evaluation: Path, scored: list[Path], path: Path) -> list[dict]:
    """The default's curves (filter threshold and minimum diameter swept, all folds' held-out
    patients) with every model's operating point on the folds they were scored on: a model's fold
    weights are kept only for the default, so the others are points, not curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = json.loads(evaluation.read_text())
    points = [operating_point(json.loads(p.read_text())) for p in scored]
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for name, key, style in (("filter threshold", "filter", "o-"), ("minimum diameter", "min_diameter", "s--")):
        xy = [(q["fp_per_case"], q["recall_10mm"]) for q in curves["froc"][key] if q["recall_10mm"] is not None]
        axes.plot(*zip(*xy, strict=True), style, markersize=4, label=f"unet, 28 patients: sweeping the {name}")
    after = curves["pooled_after"]
    axes.plot(
        [after["fp_per_case"]],
        [after["recall_10mm"]],
        "r*",
        markersize=12,
        label="unet + filter, cross-fitted (shipped)",
    )
    for point, marker in zip(points, "^vDP<>", strict=False):
        axes.plot(
            [point["fp_per_case"]],
            [point["recall_10mm"]],
            marker,
            markersize=7,
            label=f"{point['model']}, no filter ({point['cases']} patients)",
        )
    axes.set_xlabel("false-positive lesions per case")
    axes.set_ylabel("recall of lesions >= 10 mm (pooled)")
    axes.set_title("Held-out patients (cross-validation)", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return points


def install(out: Path, manifest_path: Path, model_id: str, fold: str | None = None) -> None:
    """Put the fitted filter (with ``fold``, that fold's cross-fitted one, to score the fold model with
    it) into ``model_id``'s manifest entry, validated by the app's parser."""
    block = json.loads((out / (f"lesion_filter_{fold}.json" if fold else "lesion_filter.json")).read_text())
    parse_lesion_filter(model_id, block)
    set_entry_block(manifest_path, model_id, "lesion_filter", block)
    print(f"{model_id} in {manifest_path}: lesion_filter installed (threshold {block['threshold']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fp_filter", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--models-dir", type=Path, action="append", required=True)
    c.add_argument("--model", action="append", required=True)
    c.add_argument("--data", type=Path, default=Path("../shared/data"))
    c.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("fit")
    f.add_argument("--out", type=Path, required=True)
    i = sub.add_parser("install")
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--manifest", type=Path, required=True)
    i.add_argument("--model", required=True)
    i.add_argument("--fold", default=None, help="install this fold's cross-fitted filter instead")
    m = sub.add_parser("plot-models", help="the default's curves with every model's operating point")
    m.add_argument("--evaluation", type=Path, required=True, help="evaluation.json of `fit`")
    m.add_argument("--scored", type=Path, action="append", required=True, help="an `evaluate_cv score` file")
    m.add_argument("--plot", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "plot-models":
        for point in plot_models(args.evaluation, args.scored, args.plot):
            print(json.dumps(point))
    elif args.command == "collect":
        print(collect(args.models_dir, args.model, args.data, args.out))
    elif args.command == "fit":
        fit(args.out)
    else:
        install(args.out, args.manifest, args.model, args.fold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
