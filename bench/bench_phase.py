"""Are phases other than portal-venous catastrophic? A stress test of the liver's enhancement.

    python -m bench.bench_phase [--data ../shared/data] [--folds training/results] [--out bench/results/phase]

Our labelled CTs are all portal-venous (liver parenchyma about 100-130 HU). In the arterial
phase and without contrast the parenchyma is darker (about 60-80 and 50-60 HU) and the spleen
and vessels may be brighter than the liver. No labelled CT of another phase is at hand, so this
bench simulates the liver's part of it: inside each held-out patient's reference liver, HU above
water are scaled down so that the parenchyma's median is the target (tumours keep their sign of
contrast, with less of it), the factor fading over 3 mm outside the edge so the reference outline
leaves no step; everything else is as stored. That is a stress test of how much the model relies
on the liver's brightness, not a real phase: other organs' enhancement, the aorta and lesion
enhancement patterns are not modelled.

Models: the default recipe's three cross-validation fold cascades (``training/results/
cascade_cvN/models``), each on its own held-out patients only (all 28, each once), through
``liverhealth.inference``. "Catastrophic": liver Dice below 0.5, or a liver volume off the
reference by more than half.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import ndimage

from bench.paths import shown
from liverhealth import config
from liverhealth.domain import CtVolume
from liverhealth.inference import Segmenter, load_manifest
from training.evaluate_cv import format_stat, load_patient, score_case, summarise
from training.protocol import FOLDS

# Simulated conditions: name -> target median HU of the liver parenchyma (None: as stored).
CONDITIONS: dict[str, float | None] = {
    "portal-venous (as stored)": None,
    "arterial-like (parenchyma 75 HU)": 75.0,
    "unenhanced-like (parenchyma 55 HU)": 55.0,
}
BLEND_MM = 3.0
FOLD_IDS = ("cv0", "cv1", "cv2")


def enhancement_factor(volume: CtVolume, reference: np.ndarray, target_hu: float) -> float:
    """target / the parenchyma's median HU, at most 1 (a liver already that dark is left as it is)."""
    return min(1.0, target_hu / float(np.median(volume.voxels[reference == 1])))


def darken_liver(volume: CtVolume, reference: np.ndarray, target_hu: float) -> CtVolume:
    """The CT with the liver's enhancement scaled down so the parenchyma's median is ``target_hu``.

    Inside the reference liver (parenchyma and tumours alike) HU above water are multiplied by
    target / median, so lesions keep their sign of contrast with less of it, as with less contrast
    agent; outside, the factor fades over ``BLEND_MM`` so the reference outline leaves no step."""
    liver = reference > 0
    factor = enhancement_factor(volume, reference, target_hu)
    if factor >= 1:
        return volume
    sigma = [0.0] + [BLEND_MM / s for s in volume.spacing[1:]]  # in-plane only: slices may be 5 mm apart
    weight = np.clip(2.0 * ndimage.gaussian_filter(liver.astype(np.float32), sigma), 0.0, 1.0)  # 1 at the edge
    weight[liver] = 1.0
    hu = volume.voxels.astype(np.float32)
    voxels = hu - (1.0 - factor) * weight * np.maximum(hu, 0.0)
    return replace(volume, voxels=np.round(voxels).astype(volume.voxels.dtype))


def catastrophic(case: dict) -> bool:
    """Liver Dice below 0.5, or the liver volume off the reference by more than half."""
    ratio = case["liver_ml"] / max(case["reference_liver_ml"], 1e-6)
    return case["liver_dice"] < 0.5 or not 0.5 <= ratio <= 1.5


def run(data: Path, folds_dir: Path) -> dict[str, list[dict]]:
    cases: dict[str, list[dict]] = {name: [] for name in CONDITIONS}
    for fold in FOLD_IDS:
        manifest = load_manifest(folds_dir / f"cascade_{fold}" / "models")
        segmenter = Segmenter(manifest, confidence=False)
        for patient in FOLDS[fold]["test"]:
            volume, reference, facts = load_patient(data, patient)
            for condition, target in CONDITIONS.items():
                ct = volume if target is None else darken_liver(volume, reference, target)
                result = segmenter.segment(ct, f"unet-{fold}")
                case = {"case": patient, "fold": fold, **facts, **score_case(result.labels, reference, ct)}
                case["catastrophic"] = catastrophic(case)
                case["factor"] = 1.0 if target is None else round(enhancement_factor(volume, reference, target), 3)
                cases[condition].append(case)
                print(
                    f"  {fold} {patient} {condition}: liver {case['liver_dice']:.3f} "
                    f"({case['liver_ml']:.0f} / {case['reference_liver_ml']:.0f} mL), FP {case['false_positives']}",
                    flush=True,
                )
    return cases


def report(cases: dict[str, list[dict]]) -> list[str]:
    lines = [
        "| condition | patients darkened | liver Dice | tumour Dice | recall >= 10 mm | FP lesions / case "
        "| catastrophic (of 28) |",
        "|---|---|---|---|---|---|---|",
    ]
    for condition, rows in cases.items():
        s = summarise(rows)
        fp = s["false_positives"]
        bad = [r["case"] for r in rows if r["catastrophic"]]
        darkened = sum(r["factor"] < 1 for r in rows)
        named = f"{len(bad)} ({', '.join(bad)})" if bad else "0"
        lines.append(
            f"| {condition} | {darkened} | {format_stat(s['liver_dice'])} | {format_stat(s['tumour_dice'])} "
            f"| {format_stat(s['lesion_recall_10mm'])} | {fp['mean']:.1f} ± {fp['sd']:.1f} | {named} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=config.data_dir())
    parser.add_argument("--folds", type=Path, default=Path("training/results"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/phase"))
    args = parser.parse_args()
    cases = run(args.data, args.folds)
    lines = [
        f"bench_phase {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; data {shown(args.data)}; the default recipe's 3 fold "
        "cascades, each on its own held-out patients (28); parenchyma darkened, all else as stored (a simulation)",
        "",
        *report(cases),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_phase.txt").write_text("\n".join(lines) + "\n")
    (args.out / "cases.json").write_text(json.dumps(cases, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
