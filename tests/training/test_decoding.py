"""Choosing a recipe's decoding on inner validation: the rule, and the block it installs."""

from __future__ import annotations

import json

import pytest

from liverhealth.errors import ModelError
from liverhealth.inference import load_manifest
from tests.helpers.onnx_models import make_threshold_model, manifest_entry
from training import decoding


def _row(threshold: float, minimum: float, tumour: float, fp: float) -> dict:
    return {"threshold": threshold, "min_lesion_mm3": minimum, "tumour_dice": tumour, "false_positives": fp}


def test_the_rule_takes_the_best_tumour_dice_and_breaks_ties_by_false_positives():
    table = [_row(0.5, 20, 0.40, 3.0), _row(0.4, 20, 0.45, 4.0), _row(0.4, 100, 0.445, 2.0), _row(0.3, 20, 0.30, 0)]
    assert decoding.choose(table) == table[2]  # within 0.01 of the best, fewer false positives
    table = [_row(0.5, 20, 0.40, 2.0), _row(0.6, 250, 0.405, 2.0), _row(0.3, 20, 0.2, 1.0)]
    assert decoding.choose(table) == table[0]  # an exact tie: the plain decoding
    assert decoding.choose([_row(0.7, 50, None, 1.0), _row(0.5, 20, 0.1, 5.0)])["tumour_dice"] == 0.1


def test_pooled_means_over_the_inner_validation_patients():
    rows = [
        {"threshold": 0.5, "min_lesion_mm3": 20.0, "tumour_dice": 0.2, "false_positives": 1, "liver_dice": 0.9},
        {"threshold": 0.5, "min_lesion_mm3": 20.0, "tumour_dice": 0.4, "false_positives": 3, "liver_dice": 0.95},
    ]
    (row,) = decoding.pooled(rows)
    assert row["cases"] == 2 and row["tumour_dice"] == pytest.approx(0.3) and row["false_positives"] == 2
    assert row["lesion_recall"] is None  # no case has it: not made up


def test_install_writes_a_block_the_app_parses(tmp_path):
    make_threshold_model(tmp_path / "t.onnx", size=None)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema": 1, "default": "t", "models": [manifest_entry("t", tmp_path / "t.onnx")]}))
    out = tmp_path / "choice"
    out.mkdir()
    block = {"tumour_threshold": 0.4, "min_lesion_mm3": 100.0, "chosen_on": "inner validation"}
    (out / "choice.json").write_text(json.dumps({"decoding": block}))
    decoding.install(out, manifest, "t")
    spec = load_manifest(tmp_path).get("t")
    assert (spec.decoding.tumour_threshold, spec.decoding.min_lesion_mm3) == (0.4, 100.0)
    assert spec.decoding.chosen_on == "inner validation"
    (out / "choice.json").write_text(json.dumps({"decoding": {**block, "tumour_threshold": 2}}))
    with pytest.raises(ModelError, match="tumour_threshold must be a number"):
        decoding.install(out, manifest, "t")
    assert load_manifest(tmp_path).get("t").decoding.tumour_threshold == 0.4  # the good manifest is kept
