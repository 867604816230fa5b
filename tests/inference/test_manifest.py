"""The manifest refuses missing, altered or unsupported models with a message naming them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liverhealth.errors import ModelError
from liverhealth.inference import get_session, load_manifest
from tests.helpers.onnx_models import make_conv_model, make_threshold_model, manifest_entry


def _write(folder: Path, *entries: dict, default: str = "m") -> Path:
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "default": default, "models": list(entries)}))
    return folder


def test_valid_manifest(models_dir):
    manifest = load_manifest(models_dir)
    spec = manifest.get()
    assert spec.model_id == "threshold" and spec.input.channels == 1
    assert get_session(spec) is get_session(spec)  # cached


def test_missing_manifest(tmp_path):
    with pytest.raises(ModelError, match="No model manifest"):
        load_manifest(tmp_path)


def test_unknown_model_id(models_dir):
    with pytest.raises(ModelError, match=r"No model 'unet'.*threshold"):
        load_manifest(models_dir).get("unet")


def test_missing_file_and_wrong_sha(tmp_path):
    make_threshold_model(tmp_path / "m.onnx", (64, 64))
    entry = manifest_entry("m", tmp_path / "m.onnx", size=(64, 64))
    _write(tmp_path, {**entry, "file": "gone.onnx"})
    with pytest.raises(ModelError, match=r"'m'.*missing"):
        get_session(load_manifest(tmp_path).get("m"))
    _write(tmp_path, {**entry, "sha256": "0" * 64})
    with pytest.raises(ModelError, match=r"'m'.*does not match the manifest"):
        get_session(load_manifest(tmp_path).get("m"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"classes": ["background", "liver"]}, "classes"),
        ({"output": "softmax"}, "output"),
        ({"input": {"context_slices": 9, "size": [64, 64], "hu_window": [-200, 200]}}, "context_slices"),
        ({"input": {"size": [64], "hu_window": [-200, 200]}}, "list of two numbers"),
        ({"input": {"size": [4, 4], "hu_window": [-200, 200]}}, "not supported"),
        ({"input": {"size": ["64", 64], "hu_window": [-200, 200]}}, "not a finite number"),
        ({"input": {"size": [64, 64], "hu_window": [-200, 200], "mean": float("nan")}}, "'mean' is nan"),
        ({"input": {"size": [64, 64], "hu_window": [-200, 200], "pixel_mm": True}}, "'pixel_mm' is True"),
        ({"input": {"size": [64, 64], "hu_window": [-200, 200], "roi": {"margin_mm": 5}}}, "first stage"),
        ({"input": {"size": [64, 64], "hu_window": [-200, 200], "roi": {"stage": "nowhere"}}}, "'nowhere' is missing"),
        ({"input": "64x64"}, "incomplete"),
        ({"input": {"size": [64, 64], "hu_window": [200, -200]}}, "invalid"),
        ({"input": {"size": [64, 64]}}, "incomplete"),
        ({"confidence": {"lesion_flag_below": 1.5}}, "between 0 and 1"),
        ({"confidence": {"liver_flag_below": "low"}}, "between 0 and 1"),
        ({"confidence": "calibrated"}, "must be an object"),
    ],
)
def test_unsupported_specs(tmp_path, change, message):
    make_threshold_model(tmp_path / "m.onnx", (64, 64))
    _write(tmp_path, {**manifest_entry("m", tmp_path / "m.onnx", size=(64, 64)), **change})
    with pytest.raises(ModelError, match=message):
        load_manifest(tmp_path)


def test_graph_disagreeing_with_manifest(tmp_path):
    make_conv_model(tmp_path / "m.onnx", np.ones((3, 3), np.float32), np.zeros(3, np.float32), (64, 64))
    _write(tmp_path, manifest_entry("m", tmp_path / "m.onnx", size=(64, 64), context=0))
    with pytest.raises(ModelError, match="takes 3 channels"):
        get_session(load_manifest(tmp_path).get("m"))
    _write(tmp_path, manifest_entry("m", tmp_path / "m.onnx", size=(96, 96), context=1))
    with pytest.raises(ModelError, match="height 64"):
        get_session(load_manifest(tmp_path).get("m"))


def test_not_an_onnx_file(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"this is not a model")
    _write(tmp_path, manifest_entry("m", tmp_path / "m.onnx"))
    with pytest.raises(ModelError, match="not a loadable ONNX"):
        get_session(load_manifest(tmp_path).get("m"))


def test_a_model_with_over_twice_the_defaults_false_positives_is_not_recommended(tmp_path):
    make_threshold_model(tmp_path / "m.onnx", (64, 64))
    entry = manifest_entry("m", tmp_path / "m.onnx", size=(64, 64))

    def metrics(fp: float, folds: int, patients: int) -> dict:
        return {"false_positives": fp, "cv_folds": folds, "cv_patients": patients}

    _write(
        tmp_path,
        {**entry, "metrics": metrics(1.4, 3, 28)},
        {**entry, "id": "noisy", "metrics": metrics(2.9, 1, 10)},
        {**entry, "id": "close", "metrics": metrics(2.8, 1, 10)},
        {**entry, "id": "unmeasured"},
    )
    manifest = load_manifest(tmp_path)
    assert manifest.caution("m") == ""  # the default is never measured against itself
    assert manifest.caution("close") == ""  # 2.8 is exactly 2x, not over
    assert manifest.caution("unmeasured") == ""
    text = manifest.caution("noisy")
    assert text.startswith("not recommended: 2.9 false-positive lesions per case")
    assert "1 fold, 10 patients" in text and "m's 1.4" in text and "3 folds, 28 patients" in text
