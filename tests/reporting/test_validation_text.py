"""The validation line every report carries: the shipped manifest's figures read as words with their sd."""

from __future__ import annotations

from liverhealth import config
from liverhealth.domain import ModelInfo
from liverhealth.inference import load_manifest


def test_shipped_default_reads_as_figures_with_sd_and_protocol():
    spec = load_manifest(config.REPO_ROOT / "models").get()
    text = ModelInfo(spec.model_id, spec.name, metrics=dict(spec.metrics)).validation_text()
    metrics = spec.metrics
    assert text.startswith(f"liver Dice {metrics['liver_dice']:.3f} ± {metrics['liver_dice_sd']:.3f}, tumour Dice")
    assert f"recall of lesions ≥ 10 mm {metrics['lesion_recall_10mm']:.3f}" in text
    assert f"false-positive lesions per case {metrics['false_positives']:.1f} ±" in text
    assert (
        f"(cross-validation: {metrics['cv_folds']} fold(s) scored, {metrics['cv_patients']} held-out patients)" in text
    )
    assert "_sd" not in text.split("; protocol:")[0] and text.endswith(metrics["protocol"])


def test_unknown_figures_keep_their_key_and_empty_metrics_say_so():
    assert ModelInfo("m", "m", metrics={"liver_dice": 0.9, "kappa": 0.5, "cases": 3}).validation_text() == (
        "liver Dice 0.900, kappa 0.500, cases 3"
    )
    assert ModelInfo("m", "m", metrics={"protocol": "p"}).validation_text() == "no figures; protocol: p"
    assert ModelInfo("m", "m").validation_text() == "not available"
