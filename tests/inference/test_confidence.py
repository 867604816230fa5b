"""The engine's per-voxel confidence: the softmax margin of the model's own scores, on real CT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liverhealth.imaging import load
from liverhealth.inference import Segmenter, load_manifest
from liverhealth.inference.preprocess import Placement, scores_to_confidence
from tests.helpers.onnx_models import make_conv_model, manifest_entry


@pytest.fixture(scope="module")
def ts_volume(data_root):
    return load(data_root / "totalsegmentator" / "example_ct_dicom")


def _conv_manifest(folder, size=None):
    rng = np.random.default_rng(7)
    weights = rng.normal(0, 2, (3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.5, 3).astype(np.float32)
    make_conv_model(folder / "c.onnx", weights, bias, size=size)
    entry = manifest_entry("c", folder / "c.onnx", size=size or (512, 512), context=1)
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "default": "c", "models": [entry]}))
    return load_manifest(folder), weights, bias


def _reference_margin(voxels, weights, bias):
    x = np.clip(voxels.astype(np.float64), -200, 200) / 200.0
    padded = np.concatenate([x[:1], x, x[-1:]])
    channels = np.stack([padded[k : k + x.shape[0]] for k in range(3)], axis=1)
    logits = np.einsum("kc,zcyx->zkyx", weights, channels) + bias[None, :, None, None]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    ordered = np.sort(probs, axis=1)
    return 100 * (ordered[:, -1] - ordered[:, -2])


def test_margins_of_known_scores():
    scores = np.zeros((2, 3, 4, 4), np.float32)
    scores[1, 1] = 50.0  # slice 1: class 1 certain; slice 0: a three-way tie
    confidence = scores_to_confidence(scores, (4, 4))
    assert confidence.dtype == np.uint8 and (confidence[0] == 0).all() and (confidence[1] == 100).all()
    probabilities = np.zeros((1, 3, 2, 2), np.float32)
    probabilities[0, :, 0, 0] = (0.1, 0.6, 0.3)
    probabilities[0, :, 1, 1] = (0.45, 0.10, 0.45)
    out = scores_to_confidence(probabilities, (2, 2), logits=False)
    assert out[0, 0, 0] == 30 and out[0, 1, 1] == 0
    # what the model never saw (outside a cropped field of view) is background by construction: 100
    where = Placement(scaled=(6, 6), offset=(-1, -1), size=(4, 4))
    placed = scores_to_confidence(np.zeros((1, 3, 4, 4), np.float32), (6, 6), where)
    assert placed[0, 0, 0] == 100 and placed[0, 3, 3] == 0


def test_engine_confidence_is_the_softmax_margin(tmp_path, ts_volume):
    manifest, weights, bias = _conv_manifest(tmp_path)
    result = Segmenter(manifest).segment(ts_volume, clean=False)
    assert result.confidence.shape == ts_volume.shape and result.confidence.dtype == np.uint8
    expected = _reference_margin(ts_volume.voxels, weights, bias)
    difference = np.abs(result.confidence.astype(float) - expected)
    assert difference.max() <= 1.0, difference.max()
    assert result.confidence.min() < 50 < result.confidence.max()  # the test model is unsure somewhere
    assert result.timings["confidence_s"] >= 0


def test_confidence_off_changes_nothing_else(tmp_path, ts_volume):
    manifest, _, _ = _conv_manifest(tmp_path, size=(128, 128))
    with_map = Segmenter(manifest).segment(ts_volume)
    without = Segmenter(manifest, confidence=False).segment(ts_volume)
    assert without.confidence is None and without.timings["confidence_s"] == 0
    assert (with_map.labels == without.labels).all()
    assert with_map.confidence.shape == ts_volume.shape  # resized back from 128² to the slice grid
