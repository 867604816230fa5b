"""The false-positive filter's fitting: lesion counting after a filter, the threshold rule, the
cross-fitted evaluation and the installed block, on components of real expert lesions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liverhealth.imaging.ircadb import load_ircadb_case
from liverhealth.inference.lesion_filter import lesion_features, parse_lesion_filter
from training import fp_filter

pytest.importorskip("sklearn")


def _case(name: str, fold: str, components: list[tuple[float, list[int], float]], sizes: list[float]) -> dict:
    """A case whose components have the given (log volume, overlapped lesions, diameter)."""
    rows = []
    for log_volume, overlaps, diameter in components:
        values = {feature: 0.0 for feature in fp_filter.FEATURES}
        values["log_volume_ml"] = log_volume
        rows.append({"features": values, "diameter_mm": diameter, "overlaps": overlaps})
    return {"case": name, "fold": fold, "model": f"m-{fold}", "reference_diameters_mm": sizes, "components": rows}


def test_counts_after_a_filter():
    case = _case("p", "cv0", [(1.0, [1], 30.0), (-3.0, [], 12.0), (-3.0, [], 4.0), (0.5, [2], 8.0)], [30.0, 8.0, 15.0])
    everything = fp_filter.lesion_counts([case], [np.array([True, True, True, True])])
    assert everything["recall"] == pytest.approx(2 / 3) and everything["recall_10mm"] == pytest.approx(1 / 2)
    assert everything["fp_per_case"] == 2 and everything["fp_10mm_per_case"] == 1
    kept = fp_filter.lesion_counts([case], [np.array([True, False, False, False])])
    assert kept["fp_per_case"] == 0 and kept["recall"] == pytest.approx(1 / 3) and kept["found_10mm"] == 1


def test_threshold_keeps_the_stated_share_of_found_lesions():
    cases = [_case(f"p{i}", "cv0", [(1.0, [1], 20.0), (-1.0, [], 11.0)], [20.0]) for i in range(4)]
    probabilities = [np.array([0.9, 0.2]) for _ in cases]
    threshold = fp_filter.choose_threshold(cases, probabilities)
    assert 0.2 < threshold <= 0.9  # drops every false one, keeps every found lesion


def test_fit_and_install_on_real_lesion_components(data_root, tmp_path):
    """Components of 3Dircadb1.1's expert lesions (true) beside the same CT's liver specks cut as
    invented ones (false): the fitted filter separates them and installs into a manifest."""
    volume, labels = load_ircadb_case(data_root / "3Dircadb1.1")
    true_rows = lesion_features(volume.voxels, labels, None, volume.spacing)
    rng = np.random.default_rng(0)
    liver = np.argwhere(labels == 1)
    fake = labels.copy()
    fake[fake == 2] = 1
    for z, y, x in liver[rng.choice(len(liver), 36, replace=False)]:
        fake[z, y - 1 : y + 1, x - 1 : x + 1] = 2  # 2 x 2 pixel specks: what false positives look like
    false_rows = [v for _, _, v in lesion_features(volume.voxels, fake, None, volume.spacing)]
    true = [{"features": v, "diameter_mm": 20.0, "overlaps": [i + 1]} for i, (_, _, v) in enumerate(true_rows)]
    cases = []
    for k, fold in enumerate(["cv0", "cv0", "cv1", "cv1", "cv2", "cv2"]):
        false = [{"features": v, "diameter_mm": 1.0, "overlaps": []} for v in false_rows[k * 6 : k * 6 + 6]]
        case = {"case": f"p{k}", "fold": fold, "model": f"m-{fold}", "components": true + false}
        cases.append({**case, "reference_diameters_mm": [20.0] * len(true_rows)})
    out = tmp_path / "fp"
    out.mkdir()
    (out / "rows.json").write_text(json.dumps({"features": list(fp_filter.FEATURES), "cases": cases}))
    summary = fp_filter.fit(out)
    assert summary["pooled_after"]["fp_per_case"] < summary["pooled_before"]["fp_per_case"]
    assert summary["pooled_after"]["recall_10mm"] >= fp_filter.KEEP_FOUND * summary["pooled_before"]["recall_10mm"]
    assert (out / "froc.png").read_bytes()[:4] == b"\x89PNG"
    block = json.loads((out / "lesion_filter.json").read_text())
    assert parse_lesion_filter("unet", block).threshold == block["threshold"]
    assert "held-out predictions" in block["provenance"]["fitted_on"]


def test_every_models_operating_point_is_plotted_from_its_scores(tmp_path):
    from liverhealth import config

    results = config.REPO_ROOT / "training" / "results"
    scored = [results / "cascade_cv0" / "unet-cv0.json", results / "cascade_segformer_cv0" / "segformer-cv0.json"]
    plot = tmp_path / "froc.png"
    points = fp_filter.plot_models(results / "fp_filter_unet" / "evaluation.json", scored, plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for point, path in zip(points, scored, strict=True):
        summary = json.loads(path.read_text())["summary"]
        assert point["cases"] == summary["cases"] == 10
        assert point["fp_per_case"] == pytest.approx(summary["false_positives"]["mean"])
        assert 0 <= point["recall_10mm"] <= 1
